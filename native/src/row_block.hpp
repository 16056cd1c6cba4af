// Rows per register block of the tuned kernel (simd_kernel.hpp) and of its op-mix probe
// (opmix_kernel.hpp). Included by a per-instruction-set translation unit once it has defined
// GRADI_VECTOR_REGISTERS; internal linkage, like everything compiled per instruction set.
#pragma once

namespace gradi {
namespace {

// The most rows for which the broadcast x_i, the row and column accumulators, x_j and the
// differences fit the vector registers (at least 1, at most 8). The op-mix probe runs this many:
// its arithmetic then stays in registers, so its rate is the ceiling of the arithmetic.
constexpr int register_rows(int dim) {
  const int r = (GRADI_VECTOR_REGISTERS - 3 * dim - 2) / (2 * dim);
  return r > 8 ? 8 : r < 1 ? 1 : r;
}

// Rows per block of the tuned kernel. The R rows share the loads of x_j and the loads and stores
// of the column sums and give R * DIM independent accumulator chains. Up to dim 3, a block takes
// two rows where the registers hold one (AVX2 and SSE2's 16 registers, dim 3): the second row's
// x_i spill to L1, which costs fewer loads than the x_j and column sums it shares save
// (native/README.md, "Rows per block").
constexpr int row_block(int dim) {
  const int r = register_rows(dim);
  return r < 2 && dim <= 3 ? 2 : r;
}

}  // namespace
}  // namespace gradi
