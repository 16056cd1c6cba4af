// Hardware probes behind `gradi machine` (probe.cpp): registered on the extension module.
#pragma once

#include <pybind11/pybind11.h>

namespace gradi {

// Adds probe_mul_chain, probe_fma_chain, probe_fma, probe_op_mix, probe_vector_bytes, probe_read,
// probe_read_sweep and probe_handoff to the module.
void register_probes(pybind11::module_& m);

}  // namespace gradi
