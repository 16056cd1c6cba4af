// The tuned kernel for AVX-512F/VL/DQ, compiled with -mavx512*; chosen at run time only when the CPU has them.
#define GRADI_VECTOR_BYTES 64
#define GRADI_VECTOR_REGISTERS 32
#define GRADI_RUN simd_run_avx512
#define GRADI_SHAPE simd_shape_avx512
#include "simd_kernel.hpp"
