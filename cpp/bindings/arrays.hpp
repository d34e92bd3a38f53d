// Array conversion for the bindings: C-contiguous numpy arrays of the exact dtype, mapped
// without a copy. Python validates user input first; these checks only guard the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "mfntk/types.hpp"

namespace mfntk::py_arrays {

namespace py = pybind11;

template <class T> using Array = py::array_t<T, py::array::c_style>;
template <class T> using OptArray = std::optional<Array<T>>;

template <class T> void expect_shape(const Array<T>& a, const char* name, std::initializer_list<Index> shape) {
  if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
    throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(shape.size()) + " dimensions, got " +
                                std::to_string(a.ndim()));
  Index i = 0;
  for (Index s : shape) {
    if (s >= 0 && a.shape(i) != s)
      throw std::invalid_argument(std::string(name) + ": dimension " + std::to_string(i) + " is " +
                                  std::to_string(a.shape(i)) + ", expected " + std::to_string(s));
    ++i;
  }
}

template <class T> Array<T> empty(std::initializer_list<py::ssize_t> shape) {
  return Array<T>(std::vector<py::ssize_t>(shape));
}

// The particles (a (N, k), W (N, d), b (N,) or None) as a core view.
template <class T> Particles<T> particles(const Array<T>& a, const Array<T>& W, const OptArray<T>& b) {
  expect_shape(a, "a", {-1, -1});
  expect_shape(W, "W", {a.shape(0), -1});
  if (b) expect_shape(*b, "b", {a.shape(0)});
  return {a.data(), W.data(), b ? b->data() : nullptr, a.shape(0), W.shape(1), a.shape(1)};
}

}  // namespace mfntk::py_arrays
