// The seed tier (backends cpp and cpp-parallel): the blog's algorithm, written plainly. Eigen maps
// hold X and D (no copy) and do the update X -= lr G; the pair loops are plain loops over the
// coordinates, because Eigen's dynamic-size row expressions cost 3-4x per pair at dim 2-3.
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

// Run niter steps on X (n x dim, row-major, updated in place) with distances D (n x n).
// Returns the number of threads that ran the row loop (0 when niter is 0).
template <class T>
int seed_descend(T* x, const T* d, long n, long dim, double lr, long niter, int threads) {
  Eigen::Map<RowMatrix<T>> X(x, n, dim);
  Eigen::Map<const RowMatrix<T>> D(d, n, n);
  RowMatrix<T> G(n, dim);  // the whole gradient, allocated once per call
  const T step = static_cast<T>(lr);
  int used = niter > 0 ? 1 : 0;
  for (long it = 0; it < niter; ++it) {
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (long i = 0; i < n; ++i) {
#ifdef _OPENMP
      if (i == 0) used = omp_get_num_threads();
#endif
      T* g = &G(i, 0);
      const T* xi = &X(i, 0);
      for (long k = 0; k < dim; ++k) g[k] = 0;
      for (long j = 0; j < n; ++j) {
        const T* xj = &X(j, 0);
        T sq = 0;
        for (long k = 0; k < dim; ++k) sq += (xi[k] - xj[k]) * (xi[k] - xj[k]);
        const T c = T(4) * (sq - D(i, j) * D(i, j));
        for (long k = 0; k < dim; ++k) g[k] += c * (xi[k] - xj[k]);
      }
    }
    X.noalias() -= step * G;
  }
  return used;
}

}  // namespace gradi
