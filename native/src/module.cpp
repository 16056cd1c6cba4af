// gradi._native: pybind11 bindings of the C++ backends. Every entry point checks its buffers
// (arrays.hpp), then releases the GIL and runs the kernel on the numpy memory itself (zero copy,
// X updated in place). float32 and float64 are the same templates instantiated twice.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "probe.hpp"
#include "seed.hpp"
#include "simd.hpp"

namespace py = pybind11;
using namespace gradi;

namespace {

std::atomic<int> g_last_threads{0};

constexpr bool kHaveOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif

void require_openmp(long long threads) {
  if (!kHaveOpenMP && threads > 1)
    throw std::runtime_error("gradi._native was built without OpenMP: threads must be 1");
}

// Validate, pick the dtype, release the GIL and run `kernel(Buffers<T>)` for T = float or double.
template <class Kernel>
void run_checked(const py::object& x, const py::object& d, Kernel&& kernel) {
  const py::array X = as_array(x, "X"), D = as_array(d, "D");
  int used;
  if (common_dtype(X, D) == "float32") {
    const Buffers<float> b = checked_buffers<float>(X, D);
    py::gil_scoped_release release;
    used = kernel(b);
  } else {
    const Buffers<double> b = checked_buffers<double>(X, D);
    py::gil_scoped_release release;
    used = kernel(b);
  }
  g_last_threads = used;
}

Isa parse_isa(const std::string& name) {
  if (name == "auto") return simd_best_isa();
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512}) {
    if (name != simd_isa_name(isa)) continue;
    if (!simd_supports(isa))
      throw py::value_error("isa '" + name + "' is not supported by this CPU or build");
    return isa;
  }
  throw py::value_error("isa must be 'auto', 'baseline', 'avx2' or 'avx512', got '" + name + "'");
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (simd_supports(isa)) names.emplace_back(simd_isa_name(isa));
  return names;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "C++ backends of gradi: seed (Eigen loops, serial or OpenMP) and tuned (SIMD) kernels.";

  m.def(
      "descend",
      [](const py::object& X, const py::object& D, double lr, long long niter) {
        check_scalars(lr, niter, 1);
        run_checked(X, D, [&](const auto& b) { return seed_descend(b.x, b.d, b.n, b.dim, lr, niter, 1); });
      },
      py::arg("X"), py::arg("D"), py::arg("lr"), py::arg("niter"),
      "Seed tier on one thread: niter gradient steps on X (updated in place).");

  m.def(
      "descend_parallel",
      [](const py::object& X, const py::object& D, double lr, long long niter, long long threads) {
        check_scalars(lr, niter, threads);
        require_openmp(threads);
        run_checked(X, D, [&](const auto& b) {
          return seed_descend(b.x, b.d, b.n, b.dim, lr, niter, static_cast<int>(threads));
        });
      },
      py::arg("X"), py::arg("D"), py::arg("lr"), py::arg("niter"), py::arg("threads"),
      "Seed tier, rows split over exactly `threads` OpenMP threads; X updated in place.");

  m.def(
      "descend_simd",
      [](const py::object& X, const py::object& D, double lr, long long niter, long long threads,
         const std::string& isa, long long parallel_min_n) {
        check_scalars(lr, niter, threads);
        require_openmp(threads);
        const Isa chosen = parse_isa(isa);
        const long min_n = parallel_min_n < 0 ? kSimdParallelMinN : static_cast<long>(parallel_min_n);
        run_checked(X, D, [&](const auto& b) {
          return simd_descend(b.x, b.d, b.n, b.dim, lr, niter, static_cast<int>(threads), chosen, min_n);
        });
      },
      py::arg("X"), py::arg("D"), py::arg("lr"), py::arg("niter"), py::arg("threads"),
      py::arg("isa") = "auto", py::arg("parallel_min_n") = -1,
      "Tuned tier (SIMD over j, D^2 precomputed, structure of arrays); X updated in place. "
      "Serial when N < parallel_min_n (default: simd_parallel_min_n()), else exactly `threads` threads.");

  m.def("has_openmp", [] { return kHaveOpenMP; }, "Whether the module was built with OpenMP.");
  m.def("last_thread_count", [] { return g_last_threads.load(); },
        "Threads that ran the row loop of the last call (0 if it did no iteration).");
  m.def("simd_isa", [] { return std::string(simd_isa_name(simd_best_isa())); },
        "The instruction set descend_simd uses on this CPU by default.");
  m.def("simd_isas", &supported_isas, "Instruction sets descend_simd can use on this CPU.");
  m.def("simd_parallel_min_n", [] { return kSimdParallelMinN; },
        "Default N below which descend_simd runs on one thread.");
  register_probes(m);
}
