// Defence in depth for the extension's entry points: gradi validates in Python first, but a direct
// call with a wrong buffer must raise (TypeError/ValueError), never crash or write out of bounds.
// The checks never copy: X is updated in place, so a converted copy would silently lose the result.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

namespace gradi {

namespace py = pybind11;

// Raw views of validated X (n x dim, writeable) and D (n x n), both C-contiguous of dtype T.
template <class T>
struct Buffers {
  T* x;
  const T* d;
  long n;
  long dim;
};

inline std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline py::array as_array(const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

// The dtype both arrays share: "float32" or "float64" in native byte order, else TypeError.
inline std::string common_dtype(const py::array& X, const py::array& D) {
  std::string name;
  if (py::isinstance<py::array_t<float>>(X)) name = "float32";
  else if (py::isinstance<py::array_t<double>>(X)) name = "float64";
  else
    throw py::type_error("X must have dtype float32 or float64 in native byte order, got " +
                         std::string(py::str(X.dtype())));
  const bool same = name == "float32" ? py::isinstance<py::array_t<float>>(D)
                                      : py::isinstance<py::array_t<double>>(D);
  if (!same)
    throw py::type_error("D must have the same dtype as X (" + name + "), got " +
                         std::string(py::str(D.dtype())));
  return name;
}

inline void require_layout(const py::array& a, const char* name) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(name) + " must be aligned");
}

inline bool overlaps(const py::array& a, const py::array& b) {
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// Checks shapes, layout, writeability and aliasing of X and D whose dtype is T.
template <class T>
Buffers<T> checked_buffers(const py::array& X, const py::array& D) {
  if (X.ndim() != 2) throw py::value_error("X must be 2-D (N x dim), got shape " + shape_text(X));
  const long n = static_cast<long>(X.shape(0)), dim = static_cast<long>(X.shape(1));
  if (dim < 1) throw py::value_error("X must have at least one column, got shape " + shape_text(X));
  if (D.ndim() != 2 || D.shape(0) != n || D.shape(1) != n)
    throw py::value_error("D must be N x N with N = " + std::to_string(n) + " (rows of X), got shape " +
                          shape_text(D));
  require_layout(X, "X");
  require_layout(D, "D");
  if (!X.writeable()) throw py::value_error("X must be writeable: it is updated in place");
  if (overlaps(X, D)) throw py::value_error("X and D must not share memory");
  return {static_cast<T*>(const_cast<void*>(X.data())), static_cast<const T*>(D.data()), n, dim};
}

inline void check_scalars(double lr, long long niter, long long threads) {
  if (!std::isfinite(lr)) throw py::value_error("lr must be finite, got " + std::to_string(lr));
  if (niter < 0) throw py::value_error("niter must be >= 0, got " + std::to_string(niter));
  if (threads < 1) throw py::value_error("threads must be >= 1, got " + std::to_string(threads));
  if (threads > 4096) throw py::value_error("threads must be <= 4096, got " + std::to_string(threads));
}

}  // namespace gradi
