// The op-mix probe for the avx2 instruction set (AVX2 + FMA, compiled with -mavx2 -mfma).
#define GRADI_VECTOR_BYTES 32
#define GRADI_VECTOR_REGISTERS 16
#define GRADI_OPMIX opmix_avx2
#include "opmix_kernel.hpp"
