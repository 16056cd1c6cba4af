// Rows per register block of the tuned kernel (simd_kernel.hpp), which its op-mix probe
// (opmix_kernel.hpp) uses too, so that the probe runs the kernel's own blocking. Included by a
// per-instruction-set translation unit once it has defined GRADI_VECTOR_REGISTERS; internal
// linkage, like everything compiled per instruction set.
#pragma once

namespace gradi {
namespace {

// Rows per register block. The R rows share the loads of x_j and of the column sums and give
// R * DIM independent accumulator chains; R is the most for which the broadcast x_i, the row and
// column accumulators, x_j and the differences fit the vector registers.
constexpr int row_block(int dim) {
  const int r = (GRADI_VECTOR_REGISTERS - 3 * dim - 2) / (2 * dim);
  return r > 8 ? 8 : r < 1 ? 1 : r;
}

}  // namespace
}  // namespace gradi
