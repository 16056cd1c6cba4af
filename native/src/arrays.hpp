// Defence in depth for the extension's entry points: gradi validates in Python first, but a direct
// call with a wrong buffer must raise (TypeError/ValueError), never crash or write out of bounds.
// The checks never copy: X is updated in place, so a converted copy would silently lose the result.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "team.hpp"

namespace gradi {

namespace py = pybind11;

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

// Whether `a` holds T (float or double) in native byte order.
template <class T>
bool holds(const py::array& a) {
  return py::isinstance<py::array_t<T>>(a);
}

template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// "float32" or "float64" for D in native byte order, else TypeError.
inline std::string distances_dtype(const py::array& D) {
  if (holds<float>(D)) return dtype_name<float>();
  if (holds<double>(D)) return dtype_name<double>();
  throw py::type_error("D must have dtype float32 or float64 in native byte order, got " +
                       std::string(py::str(D.dtype())));
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

// D (n x n, C-contiguous, aligned, of dtype T): its data and n.
template <class T>
const T* checked_distances(const py::array& D, long& n) {
  if (D.ndim() != 2 || D.shape(0) != D.shape(1))
    throw py::value_error("D must be a square N x N matrix, got shape " + shape_text(D));
  require_layout(D, "D");
  n = static_cast<long>(D.shape(0));
  return static_cast<const T*>(D.data());
}

// X (n x dim, C-contiguous, aligned, writeable, of dtype T), updated in place: its data.
template <class T>
T* checked_positions(const py::array& X, long n, long dim) {
  if (!holds<T>(X))
    throw py::type_error(std::string("X must have the dtype of D (") + dtype_name<T>() +
                         " in native byte order), got " + std::string(py::str(X.dtype())));
  if (X.ndim() != 2 || X.shape(0) != n || X.shape(1) != dim)
    throw py::value_error("X must be N x dim = (" + std::to_string(n) + ", " + std::to_string(dim) +
                          "), got shape " + shape_text(X));
  require_layout(X, "X");
  if (!X.writeable()) throw py::value_error("X must be writeable: it is updated in place");
  return static_cast<T*>(const_cast<void*>(X.data()));
}

inline void check_problem(long dim, double lr, long long threads) {
  if (dim < 1) throw py::value_error("dim must be >= 1, got " + std::to_string(dim));
  if (!std::isfinite(lr)) throw py::value_error("lr must be finite, got " + std::to_string(lr));
  if (threads < 1) throw py::value_error("threads must be >= 1, got " + std::to_string(threads));
  if (threads > kMaxThreads)
    throw py::value_error("threads must be <= " + std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
}

inline void check_niter(long long niter) {
  if (niter < 0) throw py::value_error("niter must be >= 0, got " + std::to_string(niter));
}

}  // namespace gradi
