// The tuned kernel, compiled once per instruction set: simd_<isa>.cpp defines GRADI_VECTOR_BYTES
// (the vector width), GRADI_VECTOR_REGISTERS (how many the ISA has) and GRADI_RUN (the entry
// point's name), then includes this file with its own -m flags. Everything here has internal linkage and uses no inline library templates, so no
// AVX-512 code can leak into a function the linker shares with the rest of the module.
//
// Per row i and vector of L points j, with coordinates in structure-of-arrays form:
//   d_k = x_ik - x_jk,  c = sum_k d_k^2 - D2_ij,  acc_k += c d_k   (lane-wise, fused multiply-adds)
// then X_ik <- x_ik - 4 lr sum_lanes(acc_k). Lanes past n in the last vector are masked to zero;
// j = i contributes d = 0. Each row's sum runs over j in the same order whatever the thread
// count, and the rows are split statically, so results are bit-identical for any thread count.
#include "simd.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradi {
namespace {

template <class T, int BYTES>
struct VecOf {
  typedef T type __attribute__((vector_size(BYTES)));
};
template <class T>
using V = typename VecOf<T, GRADI_VECTOR_BYTES>::type;
template <class T>
constexpr int kLanes = GRADI_VECTOR_BYTES / static_cast<int>(sizeof(T));

template <class T>
inline V<T> load(const T* p) {
  return *reinterpret_cast<const V<T>*>(p);  // p is aligned: see SimdJob
}

template <class T>
inline V<T> splat(T a) {
  V<T> zero = {};
  return zero + a;
}

// Sum of the lanes by adding halves (log2(L) vector adds), always in the same order.
template <class T, int BYTES = GRADI_VECTOR_BYTES>
inline T lane_sum(typename VecOf<T, BYTES>::type v) {
  if constexpr (BYTES == 2 * sizeof(T)) {
    return v[0] + v[1];
  } else {
    typename VecOf<T, BYTES / 2>::type lo, hi;
    __builtin_memcpy(&lo, &v, BYTES / 2);
    __builtin_memcpy(&hi, reinterpret_cast<const char*>(&v) + BYTES / 2, BYTES / 2);
    return lane_sum<T, BYTES / 2>(lo + hi);
  }
}

// The view of one iteration: read cur, write next.
template <class T>
struct Step {
  const SimdJob<T>& job;
  const T* cur;
  T* next;
  long nfull;        // points in full vectors (a multiple of the lane count)
  V<T> tail_mask;    // 1 for the lanes of the last vector below n, else 0
};

// One vector of points j for R rows with DIM coordinates held in registers.
template <class T, int DIM, int R, bool MASKED>
inline void pair_block(const Step<T>& s, long i0, long j, const V<T> (&xi)[R][DIM], V<T> (&acc)[R][DIM]) {
  const long stride = s.job.stride;
  V<T> xj[DIM];
  for (int k = 0; k < DIM; ++k) xj[k] = load<T>(s.cur + k * stride + j);
  for (int r = 0; r < R; ++r) {
    V<T> d[DIM];
    V<T> c = -load<T>(s.job.d2 + (i0 + r) * stride + j);
    for (int k = 0; k < DIM; ++k) {
      d[k] = xi[r][k] - xj[k];
      c = d[k] * d[k] + c;
    }
    if (MASKED) c = c * s.tail_mask;
    for (int k = 0; k < DIM; ++k) acc[r][k] = c * d[k] + acc[r][k];
  }
}

// Rows i0 .. i0+R-1 of one step, DIM known at compile time.
template <class T, int DIM, int R>
inline void rows_fixed(const Step<T>& s, long i0) {
  const long stride = s.job.stride;
  V<T> xi[R][DIM];
  V<T> acc[R][DIM];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < DIM; ++k) {
      xi[r][k] = splat<T>(s.cur[k * stride + i0 + r]);
      acc[r][k] = V<T>{};
    }
  long j = 0;
  for (; j < s.nfull; j += kLanes<T>) pair_block<T, DIM, R, false>(s, i0, j, xi, acc);
  if (j < s.job.n) pair_block<T, DIM, R, true>(s, i0, j, xi, acc);
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < DIM; ++k)
      s.next[k * stride + i0 + r] = s.cur[k * stride + i0 + r] - s.job.step * lane_sum<T>(acc[r][k]);
}

// One row of one step for any dim: c is computed in a first pass over k, then accumulated into
// acc (dim vectors of this thread's scratch) in a second pass.
template <class T, bool MASKED>
inline void pair_generic(const Step<T>& s, long i, long j, V<T>* acc) {
  const long stride = s.job.stride;
  V<T> c = -load<T>(s.job.d2 + i * stride + j);
  for (long k = 0; k < s.job.dim; ++k) {
    const V<T> d = splat<T>(s.cur[k * stride + i]) - load<T>(s.cur + k * stride + j);
    c = d * d + c;
  }
  if (MASKED) c = c * s.tail_mask;
  for (long k = 0; k < s.job.dim; ++k) {
    const V<T> d = splat<T>(s.cur[k * stride + i]) - load<T>(s.cur + k * stride + j);
    acc[k] = c * d + acc[k];
  }
}

template <class T>
inline void row_generic(const Step<T>& s, long i, V<T>* acc) {
  const long stride = s.job.stride;
  for (long k = 0; k < s.job.dim; ++k) acc[k] = V<T>{};
  long j = 0;
  for (; j < s.nfull; j += kLanes<T>) pair_generic<T, false>(s, i, j, acc);
  if (j < s.job.n) pair_generic<T, true>(s, i, j, acc);
  for (long k = 0; k < s.job.dim; ++k)
    s.next[k * stride + i] = s.cur[k * stride + i] - s.job.step * lane_sum<T>(acc[k]);
}

// Rows per register block. The R rows share the loads of x_j and give R * DIM independent
// accumulator chains; R is sized so that the accumulators and the broadcast x_i fill about 3/4 of
// the vector registers (measured at N=1000 on Zen 4: dim 3 with AVX-512 gains 1.6x from R=2 to
// R=4, and R=2 is best with AVX2's 16 registers).
constexpr int row_block(int dim) {
  const int r = dim > 0 ? GRADI_VECTOR_REGISTERS * 3 / 4 / (2 * dim) : 1;
  return r > 8 ? 8 : r < 1 ? 1 : r;
}

// The rows of block b (row_block(DIM) rows; the last block may be shorter and then runs row by row,
// each row with the same arithmetic as in a full block).
template <class T, int DIM>
inline void block_fixed(const Step<T>& s, long b) {
  constexpr int R = row_block(DIM);
  const long i0 = b * R;
  if (i0 + R <= s.job.n) {
    rows_fixed<T, DIM, R>(s, i0);
  } else {
    for (long i = i0; i < s.job.n; ++i) rows_fixed<T, DIM, 1>(s, i);
  }
}

template <class T>
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// All iterations inside one parallel region: each iteration is one statically scheduled loop over
// row blocks (its implicit barrier separates the steps), then every thread swaps its view of
// cur/next.
template <class T, int DIM>
void run_iterations(SimdJob<T>& job) {
  constexpr int R = row_block(DIM);
  const long nblocks = (job.n + R - 1) / R;
  const long nfull = job.n / kLanes<T> * kLanes<T>;
  V<T> mask = {};
  for (int l = 0; l < kLanes<T>; ++l) mask[l] = nfull + l < job.n ? T(1) : T(0);
  int used = job.niter > 0 ? 1 : 0;
#pragma omp parallel num_threads(job.threads) if (job.threads > 1)
  {
#ifdef _OPENMP
#pragma omp master
    if (job.niter > 0) used = omp_get_num_threads();
#endif
    V<T>* acc = DIM > 0 ? nullptr : reinterpret_cast<V<T>*>(job.acc) + thread_id<T>() * job.dim;
    T* cur = job.cur;
    T* next = job.next;
    for (long it = 0; it < job.niter; ++it) {
      const Step<T> s{job, cur, next, nfull, mask};
#pragma omp for schedule(static)
      for (long b = 0; b < nblocks; ++b) {
        if constexpr (DIM > 0) {
          block_fixed<T, DIM>(s, b);
        } else {
          row_generic<T>(s, b, acc);
        }
      }
      T* t = cur;
      cur = next;
      next = t;
    }
  }
  job.used = used;
}

template <class T>
void run(SimdJob<T>& job) {
  switch (job.dim) {
    case 1: return run_iterations<T, 1>(job);
    case 2: return run_iterations<T, 2>(job);
    case 3: return run_iterations<T, 3>(job);
    case 4: return run_iterations<T, 4>(job);
    case 5: return run_iterations<T, 5>(job);
    case 6: return run_iterations<T, 6>(job);
    case 7: return run_iterations<T, 7>(job);
    case 8: return run_iterations<T, 8>(job);
    default: return run_iterations<T, 0>(job);
  }
}

}  // namespace

void GRADI_RUN(SimdJob<float>& job) { run(job); }
void GRADI_RUN(SimdJob<double>& job) { run(job); }

}  // namespace gradi
