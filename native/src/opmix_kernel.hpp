// The op mix of the pair-update kernels, run in registers: what bounds a kernel's arithmetic on
// this core once no load, store or cache miss is left. Compiled once per instruction set, with
// the tuned kernel's flags, by opmix_<isa>.cpp (which defines GRADI_VECTOR_BYTES,
// GRADI_VECTOR_REGISTERS and GRADI_OPMIX, the entry point's name). Internal linkage and no
// library templates, as in simd_kernel.hpp, so no wide instruction leaks into shared code.
//
// One pair-vector is the tuned kernel's pair_vector for one row i against L columns j
// (simd_kernel.hpp), with the same expressions, so the compiler emits the same operations:
//   d_k = x_ik - x_jk                   dim subtractions
//   c = d_0 d_0 - D2; c = d_k d_k + c   dim FMAs (D2 loaded from L1 into a register per row, as
//                                       the kernel loads it)
//   row_k = c d_k + row_k               dim FMAs
//   col_k = col_k - c d_k               dim FMAs, symmetric scheme only
// The every-pair scheme (seed and idiomatic tiers, D^2 given) is the same without the column sums.
// Neither has a separate multiply (where the ISA has no FMA, SSE2, each FMA is a multiply and an
// add, in the kernel as here). R rows share each vector of columns, as in the kernel (see rows); the
// column sums start afresh every round, as the kernel's are loaded per vector of columns, so the
// only chains carried from round to round are the row sums'. x_j is made opaque every round (an
// empty asm, no instruction), so nothing can be hoisted out of the loop; the results are
// consumed the same way.
#include "opmix.hpp"
#include "row_block.hpp"
#include "vector_asm.hpp"

namespace gradi {
namespace {

typedef float V __attribute__((vector_size(GRADI_VECTOR_BYTES)));

inline V splat(float a) {
  V zero = {};
  return zero + a;
}

// Rows per round: in the symmetric scheme the kernel's row block as far as the registers hold it
// (register_rows; where the kernel takes a row more, its spills are the kernel's cost, not the
// arithmetic's); in the every-pair scheme, which has no tuned kernel, the most whose x_i (one
// register) and dim row sums fit beside what every row shares (x_j and d: dim each, c, D^2), at
// most 8, so that enough row sums are in flight to hide the FMA latency.
constexpr int rows(int dim, bool symmetric) {
  const int r = (GRADI_VECTOR_REGISTERS - 2 * dim - 2) / (dim + 1);
  return symmetric ? register_rows(dim) : r > 8 ? 8 : r < 1 ? 1 : r;
}

template <int DIM, bool SYMMETRIC>
long long run(long long rounds) {
  constexpr int R = rows(DIM, SYMMETRIC);
  constexpr int XI = SYMMETRIC ? DIM : 1;  // x_i registers per row: the kernel's, or one in `rows`
  // d = 1 in every lane and c = DIM - 2: finite, never subnormal, whatever the round count.
  const volatile V d2 = splat(2.0f);  // in memory, as the kernels' D^2: each row loads it
  const V zero = {};
  V xi[R][XI], row[R][DIM], xj[DIM];
  for (int r = 0; r < R; ++r) {
    for (int k = 0; k < XI; ++k) {
      xi[r][k] = splat(1.5f);
      opaque(xi[r][k]);  // equal values, but the compiler must not merge them
    }
    for (int k = 0; k < DIM; ++k) row[r][k] = zero;
  }
  for (int k = 0; k < DIM; ++k) xj[k] = splat(0.5f);
  for (long long round = 0; round < rounds; ++round) {
    for (int k = 0; k < DIM; ++k) opaque(xj[k]);
    V col[DIM];
    for (int r = 0; r < R; ++r) {
      V d[DIM];
      for (int k = 0; k < DIM; ++k) d[k] = xi[r][XI == 1 ? 0 : k] - xj[k];
      // Each row loads D^2 into a register of its own, as the kernel does, which c overwrites
      // (a copy of a value kept in a register would add a vector move per row).
      V c = d2;
      c = d[0] * d[0] - c;
      for (int k = 1; k < DIM; ++k) c = d[k] * d[k] + c;
      for (int k = 0; k < DIM; ++k) {
        row[r][k] = c * d[k] + row[r][k];
        if (SYMMETRIC) col[k] = (r == 0 ? zero : col[k]) - c * d[k];
      }
    }
    if (SYMMETRIC)
      for (int k = 0; k < DIM; ++k) consume(col[k]);
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < DIM; ++k) consume(row[r][k]);
  return rounds * R;
}

template <bool SYMMETRIC>
long long run_dim(int dim, long long rounds) {
  switch (dim) {
    case 1: return run<1, SYMMETRIC>(rounds);
    case 2: return run<2, SYMMETRIC>(rounds);
    case 3: return run<3, SYMMETRIC>(rounds);
    case 4: return run<4, SYMMETRIC>(rounds);
    case 5: return run<5, SYMMETRIC>(rounds);
    case 6: return run<6, SYMMETRIC>(rounds);
    case 7: return run<7, SYMMETRIC>(rounds);
    default: return run<8, SYMMETRIC>(rounds);
  }
}

}  // namespace

long long GRADI_OPMIX(int dim, bool symmetric, long long rounds) {
  return symmetric ? run_dim<true>(dim, rounds) : run_dim<false>(dim, rounds);
}

}  // namespace gradi
