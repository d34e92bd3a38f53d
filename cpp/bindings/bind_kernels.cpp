// Empirical tangent kernels: the Gram matrix and the matrix-free product.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "mfntk/empirical_kernel.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T>
Array<T> gram_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                 const OptArray<T>& b, const Array<T>& X1, const OptArray<T>& X2, const std::string& kind,
                 int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X1, "X", {-1, p.d});
  if (X2) expect_shape(*X2, "X2", {-1, p.d});
  const Index n1 = X1.shape(0), n2 = X2 ? X2->shape(0) : n1;
  auto K = empty<T>({n1, n2});
  T* out = K.mutable_data();
  const auto id = parse_activation(activation);
  const auto kk = parse_kernel_kind(kind);
  {
    py::gil_scoped_release release;
    with_activation(id, c0, [&](auto act) {
      empirical_gram(act, p, X1.data(), n1, X2 ? X2->data() : nullptr, n2, kk, out, threads);
    });
  }
  return K;
}

template <class T>
Array<T> matvec_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                   const OptArray<T>& b, const Array<T>& X, const Array<T>& V, const std::string& kind, int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  expect_shape(V, "V", {X.shape(0), -1});
  const Index n = X.shape(0), m = V.shape(1);
  auto KV = empty<T>({n, m});
  T* out = KV.mutable_data();
  const auto id = parse_activation(activation);
  const auto kk = parse_kernel_kind(kind);
  {
    py::gil_scoped_release release;
    with_activation(id, c0,
                    [&](auto act) { empirical_matvec(act, p, X.data(), n, V.data(), m, kk, out, threads); });
  }
  return KV;
}

template <class T> void bind_for(py::module_& m) {
  m.def("empirical_gram", &gram_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("X2").noconvert(),
        py::arg("kind"), py::arg("threads"), "Empirical tangent kernel K(X, X2), shape (n1, n2).");
  m.def("empirical_matvec", &matvec_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("V").noconvert(),
        py::arg("kind"), py::arg("threads"), "K(X, X) V without forming K, V of shape (n, m).");
}

}  // namespace

void bind_kernels(py::module_& m) {
  bind_for<double>(m);
  bind_for<float>(m);
}
