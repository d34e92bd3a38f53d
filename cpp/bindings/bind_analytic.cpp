// Infinite-width (analytic) kernels: Gram matrix, diagonal, the matrix-free product (an object
// advanced in units of work, each call with the GIL released, and a one-call function) and the
// Gauss-Hermite rule.
#include <pybind11/stl.h>

#include <memory>

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

// K(X_rows, X) V and the arrays it reads and writes, kept alive while it runs.
template <class T> struct PyAnalyticMatvec {
  Array<T> X;
  OptArray<T> X_rows;
  Array<T> V, out;
  std::unique_ptr<AnalyticMatvec<T>> core;

  void advance(Index count) {
    if (count < 0) throw std::invalid_argument("count: must be >= 0");
    py::gil_scoped_release release;
    core->advance(count);
  }
  py::tuple result() const {
    if (core->done() != core->units())
      throw std::invalid_argument("result: " + std::to_string(core->units() - core->done()) +
                                  " unit(s) of work left; advance first");
    return py::make_tuple(out, info_dict(core->info()));
  }
};

template <class T>
std::unique_ptr<PyAnalyticMatvec<T>> make_matvec(const std::string& activation, double c0, const Array<T>& X,
                                                 const Array<T>& V, const std::string& kind, double w_std,
                                                 double a_std, double b_std, bool bias, const std::string& method,
                                                 int quad_order, double quad_tol, int threads,
                                                 const OptArray<T>& X_rows, Index tile) {
  expect_shape(X, "X", {-1, -1});
  const Index nc = X.shape(0), d = X.shape(1);
  if (X_rows) expect_shape(*X_rows, "X_rows", {-1, d});
  expect_shape(V, "V", {nc, -1});
  const Index nr = X_rows ? X_rows->shape(0) : nc, m = V.shape(1);
  const auto params = make_params(kind, w_std, a_std, b_std, bias);
  const auto id = parse_activation(activation);
  const auto mm = parse_moment_method(method);
  if (quad_order > kMaxHermiteOrder) throw std::invalid_argument("quad_order: out of range");
  auto self = std::make_unique<PyAnalyticMatvec<T>>(PyAnalyticMatvec<T>{X, X_rows, V, empty<T>({nr, m}), nullptr});
  T* out = self->out.mutable_data();
  const T* rows = X_rows ? X_rows->data() : nullptr;
  {
    py::gil_scoped_release release;  // the setup computes the Hermite coefficients of every point
    self->core = std::make_unique<AnalyticMatvec<T>>(id, c0, mm, quad_order, quad_tol, params, rows, nr, X.data(),
                                                     nc, d, V.data(), m, out, threads, tile);
  }
  return self;
}

template <class T> void bind_for(py::module_& m, const char* matvec_name) {
  m.def("analytic_gram", &gram_py<T>, py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(),
        py::arg("X2").noconvert(), py::arg("kind"), py::arg("w_std"), py::arg("a_std"), py::arg("b_std"),
        py::arg("bias"), py::arg("method"), py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"),
        "Infinite-width kernel K(X, X2), shape (n1, n2) (SPEC 5), and a dict describing the method used.");
  m.def("analytic_diag", &diag_py<T>, py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(),
        py::arg("kind"), py::arg("w_std"), py::arg("a_std"), py::arg("b_std"), py::arg("bias"), py::arg("method"),
        py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"),
        "diag K(X, X), shape (n,), and a dict describing the method used.");
  py::class_<PyAnalyticMatvec<T>>(m, matvec_name,
                                  "K(X_rows, X) V of the infinite-width kernel without forming K (X_rows None: X), "
                                  "computed by advance(count) in units of work (blocks of tile x tile entries); "
                                  "result() gives (K V, dict describing the method used).")
      .def(py::init(&make_matvec<T>), py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(),
           py::arg("V").noconvert(), py::arg("kind"), py::arg("w_std"), py::arg("a_std"), py::arg("b_std"),
           py::arg("bias"), py::arg("method"), py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"),
           py::arg("X_rows").noconvert() = py::none(), py::arg("tile") = 256)
      .def_property_readonly("units", [](const PyAnalyticMatvec<T>& s) { return s.core->units(); })
      .def_property_readonly("done", [](const PyAnalyticMatvec<T>& s) { return s.core->done(); })
      .def("advance", &PyAnalyticMatvec<T>::advance, py::arg("count"), "Process the next `count` units of work.")
      .def("result", &PyAnalyticMatvec<T>::result, "(K V, info), once every unit is done.");
  m.def(
      "analytic_matvec",
      [](const std::string& activation, double c0, const Array<T>& X, const Array<T>& V, const std::string& kind,
         double w_std, double a_std, double b_std, bool bias, const std::string& method, int quad_order,
         double quad_tol, int threads, const OptArray<T>& X_rows, Index tile) {
        auto plan = make_matvec<T>(activation, c0, X, V, kind, w_std, a_std, b_std, bias, method, quad_order,
                                   quad_tol, threads, X_rows, tile);
        plan->advance(plan->core->units());
        return plan->result();
      },
      py::arg("activation"), py::arg("c0"), py::arg("X").noconvert(), py::arg("V").noconvert(), py::arg("kind"),
      py::arg("w_std"), py::arg("a_std"), py::arg("b_std"), py::arg("bias"), py::arg("method"),
      py::arg("quad_order"), py::arg("quad_tol"), py::arg("threads"), py::arg("X_rows").noconvert() = py::none(),
      py::arg("tile") = 256,
      "K(X_rows, X) V of the infinite-width kernel without forming K, in one call, and a dict describing the "
      "method used.");
}

}  // namespace

void bind_analytic(py::module_& m) {
  bind_for<double>(m, "AnalyticMatvec64");
  bind_for<float>(m, "AnalyticMatvec32");
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
