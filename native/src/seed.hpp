// The seed tier (backends cpp and cpp-parallel): the blog's algorithm, written plainly. An Eigen
// map over the numpy X (no copy) and an Eigen gradient matrix do the update X -= lr G; the pair
// loops are plain loops over raw coordinates, because Eigen's dynamic-size row expressions cost
// 3-4x per pair at dim 2-3.
// For each row i the gradient g_i = 4 sum_j (|X_i - X_j|^2 - D_ij^2)(X_i - X_j) is summed over j in
// order, the whole g is computed, then X <- X - lr g. Rows are independent, so the parallel
// variant splits them across exactly `threads` OpenMP threads; each row's sum is the same whatever
// the split, so results are bit-identical for any thread count.
#pragma once

#include <Eigen/Dense>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradi {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// g_i for one row i of X (n x dim) with distances D (n x n), all row-major.
template <class T>
inline void seed_row(const T* x, const T* d, T* g, long n, long dim, long i) {
  const T* xi = x + i * dim;
  for (long k = 0; k < dim; ++k) g[k] = 0;
  for (long j = 0; j < n; ++j) {
    const T* xj = x + j * dim;
    T sq = 0;
    for (long k = 0; k < dim; ++k) sq += (xi[k] - xj[k]) * (xi[k] - xj[k]);
    const T c = T(4) * (sq - d[i * n + j] * d[i * n + j]);
    for (long k = 0; k < dim; ++k) g[k] += c * (xi[k] - xj[k]);
  }
}

// Run niter steps on X (n x dim, row-major, updated in place) with distances D (n x n).
// Returns the number of threads that ran the row loop (0 when niter is 0).
template <class T>
int seed_descend(T* x, const T* d, long n, long dim, double lr, long niter, int threads) {
  Eigen::Map<RowMatrix<T>> X(x, n, dim);
  RowMatrix<T> G(n, dim);  // the whole gradient, allocated once per call
  T* g = G.data();
  const T step = static_cast<T>(lr);
  int used = niter > 0 ? 1 : 0;
  static_cast<void>(threads);  // unused when built without OpenMP
  for (long it = 0; it < niter; ++it) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
#pragma omp master
      used = omp_get_num_threads();
#endif
#pragma omp for schedule(static)
      for (long i = 0; i < n; ++i) seed_row(x, d, g + i * dim, n, dim, i);
    }
    X.noalias() -= step * G;
  }
  return used;
}

}  // namespace gradi
