// Driver of the tuned tier: allocates the per-call scratch (squared distances, structure-of-arrays
// positions), picks the kernel for this CPU's instruction set, runs it, copies the result back.
#include "simd.hpp"

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace gradi {
namespace {

constexpr std::size_t kAlign = 64;
// Buffers from 4 MiB up (D^2 from N of about 1000) are aligned to 2 MiB and offered transparent
// huge pages: streaming D^2 each iteration then misses the TLB far less (N=4000, 2 threads:
// 5.0-5.9e9 -> 6.4-6.8e9 pair-updates/s here).
constexpr std::size_t kHugePage = std::size_t(2) << 20;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// A zeroed buffer of `count` T, 64-byte aligned (2 MiB and huge pages when large).
template <class T>
std::unique_ptr<T[], AlignedFree> aligned_zeros(std::size_t count) {
  const bool huge = count * sizeof(T) >= 2 * kHugePage;
  const std::size_t align = huge ? kHugePage : kAlign;
  const std::size_t bytes = (count * sizeof(T) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes > 0 ? bytes : align);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure just means normal pages
#endif
  std::memset(p, 0, bytes);
  return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}

template <class T>
void run_kernel(SimdJob<T>& job, Isa isa) {
  switch (isa) {
#ifdef GRADI_X86_DISPATCH
    case Isa::avx512: return simd_run_avx512(job);
    case Isa::avx2: return simd_run_avx2(job);
#endif
    default: return simd_run_baseline(job);
  }
}

}  // namespace

bool simd_supports(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
#ifdef GRADI_X86_DISPATCH
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

Isa simd_best_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (simd_supports(isa)) return isa;
  return Isa::baseline;
}

const char* simd_isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

template <class T>
int simd_descend(T* x, const T* d, long n, long dim, double lr, long niter, int threads, Isa isa,
                 long parallel_min_n) {
  const long lanes = static_cast<long>(kAlign / sizeof(T));
  const long stride = (n + lanes - 1) / lanes * lanes;
  const std::size_t rows = static_cast<std::size_t>(n), cols = static_cast<std::size_t>(stride);
  const int team = n >= parallel_min_n ? threads : 1;

  auto d2 = aligned_zeros<T>(rows * cols);
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < n; ++j) d2[i * stride + j] = d[i * n + j] * d[i * n + j];
  auto cur = aligned_zeros<T>(static_cast<std::size_t>(dim) * cols);
  auto next = aligned_zeros<T>(static_cast<std::size_t>(dim) * cols);
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < dim; ++k) cur[k * stride + i] = x[i * dim + k];
  const std::size_t acc_count = dim > kMaxFusedDim ? static_cast<std::size_t>(team) * dim * lanes : 0;
  auto acc = aligned_zeros<T>(acc_count);

  SimdJob<T> job{d2.get(), cur.get(), next.get(), n, dim, stride, niter,
                 static_cast<T>(4.0 * lr), team, acc.get(), 0};
  run_kernel(job, isa);

  const T* result = niter % 2 == 0 ? cur.get() : next.get();
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < dim; ++k) x[i * dim + k] = result[k * stride + i];
  return job.used;
}

template int simd_descend<float>(float*, const float*, long, long, double, long, int, Isa, long);
template int simd_descend<double>(double*, const double*, long, long, double, long, int, Isa, long);

}  // namespace gradi
