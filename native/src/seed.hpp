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

#include <cstddef>
#include <vector>

#include "team.hpp"

namespace gradi {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// g_i for one row i of X (n x dim) with distances D (n x n), all row-major. STRESS (the last
// step of a call that reports the stress): also returns sum_j e_ij^2 in double, e_ij being the
// |X_i - X_j|^2 - D_ij^2 the gradient uses.
template <class T, bool STRESS = false>
inline double seed_row(const T* x, const T* d, T* g, long n, long dim, long i) {
  const T* xi = x + i * dim;
  for (long k = 0; k < dim; ++k) g[k] = 0;
  double row = 0;
  for (long j = 0; j < n; ++j) {
    const T* xj = x + j * dim;
    T sq = 0;
    for (long k = 0; k < dim; ++k) sq += (xi[k] - xj[k]) * (xi[k] - xj[k]);
    const T e = sq - d[i * n + j] * d[i * n + j];
    if constexpr (STRESS) row += static_cast<double>(e) * static_cast<double>(e);
    const T c = T(4) * e;
    for (long k = 0; k < dim; ++k) g[k] += c * (xi[k] - xj[k]);
  }
  return row;
}

// One solve of the seed tier: the caller's D (read in place, kept alive by the caller), lr, the
// thread count, and the gradient matrix and per-row stresses, allocated once and reused by every
// descend.
template <class T>
class SeedState {
 public:
  SeedState(const T* d, long n, long dim, double lr, int threads)
      : d_(d), n_(n), dim_(dim), step_(static_cast<T>(lr)), threads_(threads), g_(n, dim), rows_(n) {}

  // What a state allocates: the gradient (n x dim), the per-row stresses, and the state's own
  // overhead.
  static std::size_t working_bytes(long n, long dim, std::size_t itemsize) {
    return static_cast<std::size_t>(n) * (static_cast<std::size_t>(dim) * itemsize + sizeof(double)) +
           kStateOverhead;
  }

  // Run niter steps on X (n x dim, row-major, updated in place). With `stress` (niter >= 1), the
  // last step also stores the stress of the positions it started from there: the rows' sums of
  // e_ij^2, added in row order (so for any thread count), halved (each pair is in two rows).
  // Returns the number of threads that ran the row loop (0 when niter is 0).
  int descend(T* x, long niter, double* stress = nullptr) {
    int used = niter > 0 ? 1 : 0;
    const long plain = stress != nullptr ? niter - 1 : niter;
    for (long it = 0; it < plain; ++it) step<false>(x, used);
    if (stress != nullptr) {
      step<true>(x, used);
      double total = 0;
      for (long i = 0; i < n_; ++i) total += rows_[i];
      *stress = total / 2;
    }
    return used;
  }

 private:
  template <bool STRESS>
  void step(T* x, int& used) {
    Eigen::Map<RowMatrix<T>> X(x, n_, dim_);
    T* g = g_.data();
    double* rows = rows_.data();
    run_team(threads_, [&] {
      if (team_index() == 0) used = team_size();
#pragma omp for schedule(static)
      for (long i = 0; i < n_; ++i) {
        const double row = seed_row<T, STRESS>(x, d_, g + i * dim_, n_, dim_, i);
        if constexpr (STRESS) rows[i] = row;
      }
    });
    X.noalias() -= step_ * g_;
  }

  const T* d_;
  long n_;
  long dim_;
  T step_;
  int threads_;
  RowMatrix<T> g_;
  std::vector<double> rows_;
};

}  // namespace gradi
