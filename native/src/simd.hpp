// The tuned tier (backend cpp-simd): declarations shared by the driver (simd.cpp) and the
// per-instruction-set kernels (simd_<isa>.cpp, all compiled from simd_kernel.hpp).
#pragma once

namespace gradi {

// Everything one call of the kernel needs, as raw pointers into buffers the driver allocated.
// Coordinates are structure-of-arrays: coordinate k of point j is at x[k * stride + j]; rows of
// d2 (the squared distances) are `stride` long. stride is a multiple of 64 bytes and the padding
// is zero, so every vector load is aligned and in bounds.
template <class T>
struct SimdJob {
  const T* d2;
  T* cur;       // positions before the step (dim x stride)
  T* next;      // positions after the step; the kernel swaps cur and next every iteration
  long n;
  long dim;
  long stride;
  long niter;
  T step;       // 4 * lr: X_i <- X_i - step * sum_j c_ij (X_i - X_j)
  int threads;  // team size; 1 runs serially without entering OpenMP
  T* acc;       // dim > kMaxFusedDim only: threads * dim * 64 bytes of per-thread accumulators
  int used;     // out: threads that ran the row loop
};

// Dimensions up to this get a kernel with the accumulators in registers.
constexpr long kMaxFusedDim = 8;

// Instruction sets the kernel is compiled for; kernels for AVX2/AVX-512 exist on x86-64 only.
enum class Isa { baseline, avx2, avx512 };

void simd_run_baseline(SimdJob<float>& job);
void simd_run_baseline(SimdJob<double>& job);
void simd_run_avx2(SimdJob<float>& job);
void simd_run_avx2(SimdJob<double>& job);
void simd_run_avx512(SimdJob<float>& job);
void simd_run_avx512(SimdJob<double>& job);

// Below this many points one thread beats a team (measured; see native/README.md).
constexpr long kSimdParallelMinN = 96;

// The best instruction set this CPU supports, and whether it supports `isa`.
Isa simd_best_isa();
bool simd_supports(Isa isa);
const char* simd_isa_name(Isa isa);

// Run niter steps on X (n x dim, row-major, updated in place) with distances D (n x n).
// Runs on one thread when n < parallel_min_n, else on exactly `threads` threads, with the kernel
// for `isa`. Returns the number of threads that ran the row loop (0 when niter is 0).
template <class T>
int simd_descend(T* x, const T* d, long n, long dim, double lr, long niter, int threads, Isa isa,
                 long parallel_min_n);

}  // namespace gradi
