// forward / vjp / jvp of the particle system (see mfntk/network.hpp).
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "mfntk/activations.hpp"
#include "mfntk/network.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T>
Array<T> forward_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                    const OptArray<T>& b, const Array<T>& X, int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  const Index n = X.shape(0);
  auto F = empty<T>({n, p.k});
  T* out = F.mutable_data();
  const auto id = parse_activation(activation);
  {
    py::gil_scoped_release release;
    Workspaces<T> ws;
    with_activation(id, c0, [&](auto act) { forward(act, p, X.data(), n, out, ws, threads); });
  }
  return F;
}

template <class T>
py::tuple vjp_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                 const OptArray<T>& b, const Array<T>& X, const Array<T>& R, int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  expect_shape(R, "R", {X.shape(0), p.k});
  auto gA = empty<T>({p.N, p.k});
  auto gW = empty<T>({p.N, p.d});
  py::object gb = py::none();
  T* gbp = nullptr;
  if (b) {
    auto arr = empty<T>({p.N});
    gbp = arr.mutable_data();
    gb = arr;
  }
  ParticleVec<T> g{gA.mutable_data(), gW.mutable_data(), gbp, p.N, p.d, p.k};
  const auto id = parse_activation(activation);
  {
    py::gil_scoped_release release;
    Workspaces<T> ws;
    with_activation(id, c0, [&](auto act) { vjp(act, p, X.data(), X.shape(0), R.data(), g, ws, threads); });
  }
  return py::make_tuple(gA, gW, gb);
}

template <class T>
Array<T> jvp_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                const OptArray<T>& b, const Array<T>& X, const OptArray<T>& ta, const OptArray<T>& tW,
                const OptArray<T>& tb, int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  if (ta) expect_shape(*ta, "ta", {p.N, p.k});
  if (tW) expect_shape(*tW, "tW", {p.N, p.d});
  if (tb) expect_shape(*tb, "tb", {p.N});
  if (b && tW && !tb) throw std::invalid_argument("tb: needed with a bias and tW");
  const Particles<T> t{ta ? ta->data() : nullptr, tW ? tW->data() : nullptr, tb ? tb->data() : nullptr,
                       p.N, p.d, p.k};
  const Index n = X.shape(0);
  auto O = empty<T>({n, p.k});
  T* out = O.mutable_data();
  const auto id = parse_activation(activation);
  {
    py::gil_scoped_release release;
    Workspaces<T> ws;
    with_activation(id, c0, [&](auto act) { jvp(act, p, X.data(), n, t, out, ws, threads); });
  }
  return O;
}

template <class T> void bind_for(py::module_& m) {
  m.def("forward", &forward_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("threads"),
        "F = sum_j a_j sigma(<w_j, x> + b_j), shape (n, k), unscaled.");
  m.def("vjp", &vjp_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("R").noconvert(),
        py::arg("threads"), "J^T R as (gA, gW, gb).");
  m.def("jvp", &jvp_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("ta").noconvert(),
        py::arg("tW").noconvert(), py::arg("tb").noconvert(), py::arg("threads"), "J t, shape (n, k).");
}

}  // namespace

void bind_network(py::module_& m) {
  bind_for<double>(m);
  bind_for<float>(m);
}
