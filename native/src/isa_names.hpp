// The one parser of instruction-set names, for every binding that takes one (cpp-simd's kernel
// choice, the probes behind `gradi machine`): "baseline", "avx2", "avx512", and "auto" (the best
// this CPU supports) where the caller accepts it. A bad or unsupported name throws
// std::invalid_argument, which pybind11 raises as ValueError.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "simd.hpp"

namespace gradi {

// Every instruction set a kernel is compiled for, narrowest first.
constexpr Isa kIsas[] = {Isa::baseline, Isa::avx2, Isa::avx512};

inline Isa parse_isa(const std::string& name, bool allow_auto) {
  if (allow_auto && name == "auto") return simd_best_isa();
  for (Isa isa : kIsas) {
    if (name != simd_isa_name(isa)) continue;
    if (!simd_supports(isa)) throw std::invalid_argument("isa '" + name + "' is not supported by this CPU or build");
    return isa;
  }
  throw std::invalid_argument(std::string("isa must be ") + (allow_auto ? "'auto', " : "") +
                              "'baseline', 'avx2' or 'avx512', got '" + name + "'");
}

// The names of the instruction sets this CPU and build support, narrowest first.
inline std::vector<std::string> supported_isa_names() {
  std::vector<std::string> names;
  for (Isa isa : kIsas)
    if (simd_supports(isa)) names.emplace_back(simd_isa_name(isa));
  return names;
}

}  // namespace gradi
