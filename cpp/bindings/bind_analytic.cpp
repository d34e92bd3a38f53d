// Infinite-width (analytic) kernels: Gram matrix, diagonal and the Gauss-Hermite rule.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "mfntk/analytic_kernel.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

AnalyticParams make_params(const std::string& kind, double w_std, double a_std, double b_std, bool bias) {
  AnalyticParams p;
  p.kind = parse_kernel_kind(kind);
  p.w_std = w_std;
  p.a_std = a_std;
  p.b_std = b_std;
  p.bias = bias;
  return p;
}

py::dict info_dict(const AnalyticInfo& info) {
  py::dict out;
  out["quadrature"] = info.quadrature;
  out["order"] = info.order;
  out["nodes"] = info.nodes;
  out["terms_f"] = info.terms_f;
  out["terms_d"] = info.terms_d;
  out["bound_f"] = info.bound_f;
  out["bound_d"] = info.bound_d;
  out["direct_f"] = info.direct_f;
  out["direct_d"] = info.direct_d;
  out["direct_accuracy"] = kDirectAccuracy;
  return out;
}

template <class T>
py::tuple gram_py(const std::string& activation, double c0, const Array<T>& X1, const OptArray<T>& X2,
                  const std::string& kind, double w_std, double a_std, double b_std, bool bias,
                  const std::string& method, int quad_order, double quad_tol, int threads) {
  expect_shape(X1, "X", {-1, -1});
  const Index d = X1.shape(1);
  if (X2) expect_shape(*X2, "X2", {-1, d});
  const Index n1 = X1.shape(0), n2 = X2 ? X2->shape(0) : n1;
  const auto params = make_params(kind, w_std, a_std, b_std, bias);
  const auto id = parse_activation(activation);
  const auto mm = parse_moment_method(method);
  if (quad_order > kMaxHermiteOrder) throw std::invalid_argument("quad_order: out of range");
  auto K = empty<T>({n1, n2});
  T* out = K.mutable_data();
  AnalyticInfo info;
  {
    py::gil_scoped_release release;
    info = analytic_kernel<T>(id, c0, mm, quad_order, quad_tol, params, X1.data(), n1, X2 ? X2->data() : nullptr,
                              n2, d, false, out, threads);
  }
  return py::make_tuple(K, info_dict(info));
}

template <class T>
py::tuple diag_py(const std::string& activation, double c0, const Array<T>& X, const std::string& kind,
                  double w_std, double a_std, double b_std, bool bias, const std::string& method, int quad_order,
                  double quad_tol, int threads) {
  expect_shape(X, "X", {-1, -1});
  const Index n = X.shape(0), d = X.shape(1);
  const auto params = make_params(kind, w_std, a_std, b_std, bias);
  const auto id = parse_activation(activation);
  const auto mm = parse_moment_method(method);
  if (quad_order > kMaxHermiteOrder) throw std::invalid_argument("quad_order: out of range");
  auto D = empty<T>({n});
  T* out = D.mutable_data();
  AnalyticInfo info;
  {
    py::gil_scoped_release release;
    info = analytic_kernel<T>(id, c0, mm, quad_order, quad_tol, params, X.data(), n, nullptr, n, d, true, out,
                              threads);
  }
  return py::make_tuple(D, info_dict(info));
}

template <class T> void bind_for(py::module_& m) {
  m.def("analytic_gram", &gram_py<T>, py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(),
        py::arg("X2").noconvert(), py::arg("kind"), py::arg("w_std"), py::arg("a_std"), py::arg("b_std"),
        py::arg("bias"), py::arg("method"), py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"),
        "Infinite-width kernel K(X, X2), shape (n1, n2) (SPEC 5), and a dict describing the method used.");
  m.def("analytic_diag", &diag_py<T>, py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(),
        py::arg("kind"), py::arg("w_std"), py::arg("a_std"), py::arg("b_std"), py::arg("bias"), py::arg("method"),
        py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"),
        "diag K(X, X), shape (n,), and a dict describing the method used.");
}

}  // namespace

void bind_analytic(py::module_& m) {
  bind_for<double>(m);
  bind_for<float>(m);
  m.def("hermite_rule",
        [](int order) {
          const HermiteRule r = hermite_rule(order);
          auto z = empty<double>({static_cast<py::ssize_t>(order)});
          auto w = empty<double>({static_cast<py::ssize_t>(order)});
          std::copy(r.z.begin(), r.z.end(), z.mutable_data());
          std::copy(r.w.begin(), r.w.end(), w.mutable_data());
          return py::make_tuple(z, w);
        },
        py::arg("order"), "Gauss-Hermite nodes and weights for the standard normal law (weights sum to 1).");
}
