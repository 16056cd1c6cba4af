// The tuned kernel for the baseline instruction set of the target (SSE2 on x86-64): runs on every CPU.
#define GRADI_VECTOR_BYTES 16
#define GRADI_VECTOR_REGISTERS 16
#define GRADI_RUN simd_run_baseline
#define GRADI_SHAPE simd_shape_baseline
#include "simd_kernel.hpp"
