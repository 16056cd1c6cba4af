// The op-mix probe for the avx512 instruction set (AVX-512F/VL/DQ, compiled with the AVX-512 kernel's flags).
#define GRADI_VECTOR_BYTES 64
#define GRADI_VECTOR_REGISTERS 32
#define GRADI_OPMIX opmix_avx512
#include "opmix_kernel.hpp"
