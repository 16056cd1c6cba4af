// The op-mix probe for the baseline instruction set (SSE2 on x86-64; runs on every CPU).
#define GRADI_VECTOR_BYTES 16
#define GRADI_VECTOR_REGISTERS 16
#define GRADI_OPMIX opmix_baseline
#include "opmix_kernel.hpp"
