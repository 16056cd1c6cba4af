// The tuned kernel for AVX2 + FMA (x86-64-v3), compiled with -mavx2 -mfma; chosen at run time only when the CPU has them.
#define GRADI_VECTOR_BYTES 32
#define GRADI_VECTOR_REGISTERS 16
#define GRADI_RUN simd_run_avx2
#define GRADI_SHAPE simd_shape_avx2
#include "simd_kernel.hpp"
