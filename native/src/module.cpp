// gradi._native: pybind11 bindings of the C++ backends. Each backend is a class whose object is
// one solve's state (SeedState for cpp and cpp-parallel, SimdState for cpp-simd): built once from
// D, then `descend(X, niter)` checks X, releases the GIL and runs on the numpy memory itself (X
// updated in place), as often as the solve needs; `close()` frees it. float32 and float64 are the
// same templates instantiated twice, chosen by D's dtype.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "isa_names.hpp"
#include "probe.hpp"
#include "seed.hpp"
#include "simd.hpp"
#include "team.hpp"

namespace py = pybind11;
using namespace gradi;

namespace {

// One solve's state S<float> or S<double>, used by one call at a time (a second thread's call
// raises instead of racing on the scratch) and released by close().
template <template <class> class S>
class Handle {
 public:
  // `make(ptr_to_D_data, n)` builds the state for D's dtype; the GIL is released meanwhile.
  template <class Make>
  Handle(const py::object& d, long dim, Make&& make) : dim_(dim) {
    const py::array D = as_array(d, "D");
    if (distances_dtype(D) == dtype_name<float>()) {
      const float* p = checked_distances<float>(D, n_);
      py::gil_scoped_release release;
      f32_ = make(p, n_);
    } else {
      const double* p = checked_distances<double>(D, n_);
      py::gil_scoped_release release;
      f64_ = make(p, n_);
    }
  }

  // niter steps on X (N x dim, D's dtype, C-contiguous, writeable), updated in place. With
  // `stress` (niter >= 1): the stress of the positions the last step started from, else None.
  py::object descend(const py::object& x, long long niter, bool stress, const py::object& d_read) {
    check_niter(niter);
    if (stress && niter < 1) throw py::value_error("stress=True needs niter >= 1, got " + std::to_string(niter));
    const py::array X = as_array(x, "X");
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) throw std::runtime_error("this state is in use by another thread");
    if (!f32_ && !f64_) throw py::value_error("this state is closed");
    if (d_read && overlaps(X, py::reinterpret_borrow<py::array>(d_read)))
      throw py::value_error("X and D must not share memory");
    double total = 0;
    double* out = stress ? &total : nullptr;
    if (f32_) {
      float* p = checked_positions<float>(X, n_, dim_);
      py::gil_scoped_release release;
      used_ = f32_->descend(p, static_cast<long>(niter), out);
    } else {
      double* p = checked_positions<double>(X, n_, dim_);
      py::gil_scoped_release release;
      used_ = f64_->descend(p, static_cast<long>(niter), out);
    }
    return stress ? py::object(py::float_(total)) : py::object(py::none());
  }

  void close() {
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) throw std::runtime_error("this state is in use by another thread");
    f32_.reset();
    f64_.reset();
  }

  bool closed() const { return !f32_ && !f64_; }
  int used() const { return used_; }
  template <class F>
  auto visit(F&& f) const {
    if (f32_) return f(*f32_);
    if (f64_) return f(*f64_);
    throw py::value_error("this state is closed");
  }

 private:
  long n_ = 0;
  long dim_;
  std::unique_ptr<S<float>> f32_;
  std::unique_ptr<S<double>> f64_;
  std::mutex busy_;
  int used_ = 0;
};

// The seed tier reads the caller's D in place during every descend: the handle keeps it alive.
struct PySeed {
  py::object d;
  Handle<SeedState> handle;

  PySeed(const py::object& D, long dim, double lr, long long threads)
      : d(D), handle(D, dim, [&](const auto* p, long n) {
          using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
          return std::make_unique<SeedState<T>>(p, n, dim, lr, static_cast<int>(threads));
        }) {}
};

constexpr const char* kDescendDoc =
    "niter gradient steps on X (updated in place). stress=True (niter >= 1): returns the stress of "
    "the positions the last step started from, summed in float64 from that step's C_ij; else None.";

// The arguments of working_bytes: n >= 0, dim >= 1, threads >= 1, itemsize 4 or 8 (returned).
std::size_t checked_size(long n, long dim, long long itemsize, long long threads) {
  if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
  check_problem(dim, 0.0, threads);
  if (itemsize != 4 && itemsize != 8) throw py::value_error("itemsize must be 4 or 8");
  return static_cast<std::size_t>(itemsize);
}

// Checks shared by both constructors; the thread check comes first so that a team that cannot
// run here is refused before D is touched.
void check_state(long dim, double lr, long long threads) {
  check_problem(dim, lr, threads);
  check_team(static_cast<int>(threads));
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "C++ backends of gradi: seed (Eigen loops, serial or OpenMP) and tuned (SIMD) kernels.";

  py::class_<PySeed>(m, "SeedState",
                     "One solve of the seed tier (cpp, cpp-parallel): the blog's loops over the caller's "
                     "D (kept and read in place) on exactly `threads` OpenMP threads.")
      .def(py::init([](const py::object& D, long dim, double lr, long long threads) {
             check_state(dim, lr, threads);
             return std::make_unique<PySeed>(D, dim, lr, threads);
           }),
           py::arg("D"), py::arg("dim"), py::arg("lr"), py::arg("threads") = 1)
      .def(
          "descend",
          [](PySeed& self, const py::object& X, long long niter, bool stress) {
            return self.handle.descend(X, niter, stress, self.d);
          },
          py::arg("X"), py::arg("niter"), py::arg("stress") = false, kDescendDoc)
      .def("close", [](PySeed& self) {
             self.handle.close();
             self.d = py::none();
           }, "Release the state (and the reference to D).")
      .def_property_readonly("closed", [](const PySeed& self) { return self.handle.closed(); })
      .def_property_readonly("threads_used", [](const PySeed& self) { return self.handle.used(); },
                             "Threads that ran the row loop of the last descend (0 if it did no step).")
      .def_static("working_bytes",
                  [](long n, long dim, long long itemsize, long long threads) {
                    return SeedState<float>::working_bytes(n, dim, checked_size(n, dim, itemsize, threads));
                  },
                  py::arg("n"), py::arg("dim"), py::arg("itemsize"), py::arg("threads"),
                  "Bytes a state allocates beyond D and X.");

  py::class_<Handle<SimdState>>(m, "SimdState",
                                "One solve of the tuned tier (cpp-simd): D^2 in symmetric tiles, the positions "
                                "in structure-of-arrays form and the partial sums, built once by the solve's "
                                "threads. Serial when N < parallel_min_n (default: simd_parallel_min_n()), "
                                "else exactly `threads` threads.")
      .def(py::init([](const py::object& D, long dim, double lr, long long threads, const std::string& isa,
                       long long parallel_min_n) {
             check_problem(dim, lr, threads);
             const Isa chosen = parse_isa(isa, true);
             const long min_n = parallel_min_n < 0 ? kSimdParallelMinN : static_cast<long>(parallel_min_n);
             return std::make_unique<Handle<SimdState>>(D, dim, [&](const auto* p, long n) {
               using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
               return std::make_unique<SimdState<T>>(p, n, dim, lr, static_cast<int>(threads), chosen, min_n);
             });
           }),
           py::arg("D"), py::arg("dim"), py::arg("lr"), py::arg("threads"), py::arg("isa") = "auto",
           py::arg("parallel_min_n") = -1)
      .def(
          "descend",
          [](Handle<SimdState>& self, const py::object& X, long long niter, bool stress) {
            return self.descend(X, niter, stress, py::object());
          },
          py::arg("X"), py::arg("niter"), py::arg("stress") = false, kDescendDoc)
      .def("close", &Handle<SimdState>::close, "Release the state's buffers.")
      .def_property_readonly("closed", &Handle<SimdState>::closed)
      .def_property_readonly("isa", [](const Handle<SimdState>& self) {
             return std::string(self.visit([](const auto& s) { return simd_isa_name(s.isa()); }));
           }, "The instruction set of the kernel this state runs.")
      .def_property_readonly("team", [](const Handle<SimdState>& self) {
             return self.visit([](const auto& s) { return s.team(); });
           }, "Threads this state runs on (1 below parallel_min_n).")
      .def_property_readonly("threads_used", &Handle<SimdState>::used,
                             "Threads that ran the tiles of the last descend (0 if it did no step).")
      .def_property_readonly("tiles_stolen", [](const Handle<SimdState>& self) {
             return self.visit([](const auto& s) { return s.stolen(); });
           }, "Tiles of the last descend that a thread ran for another that was behind (work "
              "stealing; 0 on one thread).")
      .def_static("working_bytes",
                  [](long n, long dim, long long itemsize, long long threads) {
                    return checked_size(n, dim, itemsize, threads) == 4
                               ? SimdState<float>::working_bytes(n, dim, static_cast<int>(threads))
                               : SimdState<double>::working_bytes(n, dim, static_cast<int>(threads));
                  },
                  py::arg("n"), py::arg("dim"), py::arg("itemsize"), py::arg("threads"),
                  "Bytes a state allocates beyond D and X.");

  py::register_exception<TeamError>(m, "TeamError", PyExc_RuntimeError);
  m.def("has_openmp", [] { return kHaveOpenMP; }, "Whether the module was built with OpenMP.");
  m.def("max_threads", [] { return kMaxThreads; }, "The most threads a state takes.");
  m.def("simd_isa", [] { return std::string(simd_isa_name(simd_best_isa())); },
        "The instruction set SimdState uses on this CPU by default (isa='auto').");
  m.def("simd_isas", &supported_isa_names, "Instruction sets SimdState can use on this CPU.");
  m.def("simd_parallel_min_n", [] { return kSimdParallelMinN; },
        "Default N below which SimdState runs on one thread.");
  register_probes(m);
}
