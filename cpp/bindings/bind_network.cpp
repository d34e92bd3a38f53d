// forward / vjp / jvp of the particle system (see mfntk/network.hpp).
#include <pybind11/stl.h>

#include <optional>

#include "arrays.hpp"
#include "exchange.hpp"
#include "mfntk/activations.hpp"
#include "mfntk/network.hpp"
#include "mfntk/shard.hpp"
#include "mfntk/simd.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

void check_shard(const std::optional<Shard>& shard, Index N) {
  if (shard && shard->local_width() != N)
    throw std::invalid_argument("a: " + std::to_string(N) + " particles, the shard holds " +
                                std::to_string(shard->local_width()));
}

// F (n, k). With a shard: its chunks' sums, gathered through `exchange` (None: every chunk is
// here) and combined in the fixed order of shard.hpp.
template <class T>
Array<T> forward_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                    const OptArray<T>& b, const Array<T>& X, int threads, const std::optional<Shard>& shard,
                    const py::object& exchange) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  check_shard(shard, p.N);
  const Index n = X.shape(0);
  auto F = empty<T>({n, p.k});
  T* out = F.mutable_data();
  const auto id = parse_activation(activation);
  const auto ex = exchange_of<T>(exchange);
  {
    py::gil_scoped_release release;
    Workspaces<T> ws;
    with_activation(id, c0, [&](auto act) {
      if (shard)
        ShardedPasses<T>(*shard, ex.get()).forward(act, p, X.data(), n, out, ws, threads);
      else
        forward(act, p, X.data(), n, out, ws, threads);
    });
  }
  return F;
}

template <class T>
py::tuple vjp_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                 const OptArray<T>& b, const Array<T>& X, const Array<T>& R, int threads,
                 const std::optional<Shard>& shard) {
  const auto p = particles(a, W, b);
  check_shard(shard, p.N);
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
    with_activation(id, c0, [&](auto act) {
      if (shard)
        ShardedPasses<T>(*shard, nullptr).vjp(act, p, X.data(), X.shape(0), R.data(), g, ws, threads);
      else
        vjp(act, p, X.data(), X.shape(0), R.data(), g, ws, threads);
    });
  }
  return py::make_tuple(gA, gW, gb);
}

template <class T>
Array<T> jvp_py(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                const OptArray<T>& b, const Array<T>& X, const OptArray<T>& ta, const OptArray<T>& tW,
                const OptArray<T>& tb, int threads, const std::optional<Shard>& shard, const py::object& exchange) {
  const auto p = particles(a, W, b);
  check_shard(shard, p.N);
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
  const auto ex = exchange_of<T>(exchange);
  {
    py::gil_scoped_release release;
    Workspaces<T> ws;
    with_activation(id, c0, [&](auto act) {
      if (shard)
        ShardedPasses<T>(*shard, ex.get()).jvp(act, p, X.data(), n, t, out, ws, threads);
      else
        jvp(act, p, X.data(), n, t, out, ws, threads);
    });
  }
  return O;
}

template <class T> void bind_for(py::module_& m) {
  m.def("forward", &forward_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("threads"),
        py::arg("shard") = py::none(), py::arg("exchange") = py::none(),
        "F = sum_j a_j sigma(<w_j, x> + b_j), shape (n, k), unscaled; with a shard, summed chunk by chunk "
        "(its chunks' sums gathered through exchange: gather(partials) -> every chunk's).");
  m.def("vjp", &vjp_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("R").noconvert(),
        py::arg("threads"), py::arg("shard") = py::none(), "J^T R as (gA, gW, gb).");
  m.def("jvp", &jvp_py<T>, py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
        py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("ta").noconvert(),
        py::arg("tW").noconvert(), py::arg("tb").noconvert(), py::arg("threads"), py::arg("shard") = py::none(),
        py::arg("exchange") = py::none(), "J t, shape (n, k); with a shard, summed as forward.");
}

}  // namespace

template <class T> Array<T> combine_py(const Shard& shard, const Array<T>& partials, int threads) {
  if (partials.ndim() < 1 || partials.shape(0) != shard.count())
    throw std::invalid_argument("partials: expected one block per chunk (" + std::to_string(shard.count()) + ")");
  std::vector<py::ssize_t> shape(partials.shape() + 1, partials.shape() + partials.ndim());
  Array<T> out(shape);
  const Index m = shard.count() > 0 ? static_cast<Index>(partials.size()) / shard.count() : 0;
  const T* in = partials.data();
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    shard.combine(in, m, o, threads);
  }
  return out;
}

void bind_shard(py::module_& m) {
  py::class_<Shard>(m, "Shard", "The fixed chunks of N particles and the range of them one process holds (shard.hpp).")
      .def(py::init<Index, Index, Index, Index>(), py::arg("N"), py::arg("chunk"), py::arg("begin") = 0,
           py::arg("end") = -1)
      .def(py::pickle([](const Shard& s) { return py::make_tuple(s.N, s.chunk, s.begin, s.end); },
                      [](const py::tuple& t) {
                        return Shard(t[0].cast<Index>(), t[1].cast<Index>(), t[2].cast<Index>(), t[3].cast<Index>());
                      }))
      .def("__repr__",
           [](const Shard& s) {
             return "Shard(N=" + std::to_string(s.N) + ", chunk=" + std::to_string(s.chunk) + ", chunks " +
                    std::to_string(s.begin) + ".." + std::to_string(s.end) + " of " + std::to_string(s.count()) + ")";
           })
      .def_readonly("N", &Shard::N)
      .def_readonly("chunk", &Shard::chunk)
      .def_readonly("begin", &Shard::begin)
      .def_readonly("end", &Shard::end)
      .def_readonly("first_of_second_half", &Shard::first_of_second_half)
      .def_readonly("chunks", &Shard::chunks)
      .def_property_readonly("count", &Shard::count)
      .def_property_readonly("local_chunks", &Shard::local_chunks)
      .def_property_readonly("whole", &Shard::whole)
      .def_property_readonly("particle_begin", &Shard::particle_begin)
      .def_property_readonly("particle_end", &Shard::particle_end)
      .def_property_readonly("local_width", &Shard::local_width)
      .def("combine", &combine_py<double>, py::arg("partials").noconvert(), py::arg("threads") = 1,
           "The fixed-order sum of one block per chunk (count, ...) -> (...).")
      .def("combine", &combine_py<float>, py::arg("partials").noconvert(), py::arg("threads") = 1);
}

void bind_simd(py::module_& m) {
  m.def("simd", [] { return std::string(simd_name(active_simd())); },
        "The instruction set of the sign-mask passes' kernels: 'avx512', 'avx2' or 'portable'.");
  m.def("simd_supported", [](const std::string& name) { return simd_supported(simd_from_name(name)); },
        py::arg("name"), "Whether this CPU and build can run the kernels of `name`.");
  m.def("set_simd", [](const std::string& name) { set_simd(name == "auto" ? best_simd() : simd_from_name(name)); },
        py::arg("name"), "Selects the kernels for the whole process ('auto': the best this CPU runs).");
}

void bind_network(py::module_& m) {
  bind_shard(m);
  bind_simd(m);
  bind_for<double>(m);
  bind_for<float>(m);
}
