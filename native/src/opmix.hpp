// The op-mix probe behind `gradi machine`'s "op mix" ceilings (opmix_kernel.hpp), compiled once
// per instruction set with the tuned kernel's flags: opmix_<isa>.cpp.
#pragma once

namespace gradi {

// Dimensions the probe has a loop for (the tuned kernel's register-resident dims).
constexpr int kOpMixMaxDim = 8;

// Runs `rounds` rounds of the op mix of one scheme (symmetric: each pair once, both rows updated;
// else every ordered pair, its row only) in `dim` dimensions (1 .. kOpMixMaxDim), all in registers,
// and returns the pair-vectors it computed: one pair-vector is one row against one vector of columns.
long long opmix_baseline(int dim, bool symmetric, long long rounds);
long long opmix_avx2(int dim, bool symmetric, long long rounds);
long long opmix_avx512(int dim, bool symmetric, long long rounds);

}  // namespace gradi
