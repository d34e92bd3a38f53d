// The two-layer network's engine (dynamics.hpp): its options, construction and linearized
// reference; the methods every engine shares are in engine.hpp.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "engine.hpp"
#include "exchange.hpp"
#include "mfntk/dynamics.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T> void bind_for(py::module_& m, const char* name) {
  using Self = PyEngine<Dynamics<T>, T>;
  py::class_<Self> cls(m, name);
  cls.def(py::init([](const DynamicsOptions& options, const std::string& activation, double c0) {
            auto self = std::make_unique<Self>();
            self->core = make_dynamics<T>(options, parse_activation(activation), c0);
            return self;
          }),
          py::arg("options"), py::arg("activation"), py::arg("c0"))
      .def("set_reference",
           [](Self& self, const Array<T>& theta0, const Array<T>& f0) {
             self.check_data();
             const auto& o = self.core->options();
             expect_shape(theta0, "theta0", {parameter_size(o)});
             expect_shape(f0, "f0", {self.n, o.k});
             self.core->set_reference(theta0.data(), f0.data(), self.n);
           },
           py::arg("theta0").noconvert(), py::arg("f0").noconvert())
      .def("set_exchange",
           [](Self& self, py::object exchange) {
             self.exchange = exchange_of<T>(exchange);
             self.core->set_exchange(self.exchange.get());
           },
           py::arg("exchange"),
           "The processes' exchange of a sharded run: an object with gather(partials (local chunks, m)) -> "
           "(chunks, m) and all(bool) -> bool (None: this process holds every chunk).");
  def_engine_methods(cls);
}

}  // namespace

void bind_dynamics(py::module_& m) {
  // The engine's options, field by field: Python fills them by name from its declarations.
  bind_options<DynamicsOptions>(m, "DynamicsOptions", [](py::class_<DynamicsOptions>& cls) {
    cls.def_readwrite("N", &DynamicsOptions::N)
        .def_readwrite("d", &DynamicsOptions::d)
        .def_readwrite("k", &DynamicsOptions::k)
        .def_readwrite("bias", &DynamicsOptions::bias)
        .def_readwrite("output_bias", &DynamicsOptions::output_bias)
        .def_readwrite("alpha", &DynamicsOptions::alpha)
        .def_readwrite("cache_bytes", &DynamicsOptions::cache_bytes)
        .def_readwrite("particle_chunk", &DynamicsOptions::particle_chunk)
        .def_readwrite("chunk_begin", &DynamicsOptions::chunk_begin)
        .def_readwrite("chunk_end", &DynamicsOptions::chunk_end);
    return py::make_tuple("N", "d", "k", "bias", "output_bias", "alpha", "cache_bytes", "particle_chunk", "chunk_begin",
                          "chunk_end");
  });
  bind_for<double>(m, "Dynamics64");
  bind_for<float>(m, "Dynamics32");
  m.def(
      "preactivation_cache_bytes",
      [](const std::string& activation, Index n, const Shard& shard, Index k, std::size_t value_bytes) {
        return preactivation_cache_bytes(parse_activation(activation), n, shard, k, value_bytes);
      },
      py::arg("activation"), py::arg("n"), py::arg("shard"), py::arg("k"), py::arg("value_bytes"),
      "Bytes of the engine's pre-activation cache of a step on n points (the shard's particles, k outputs, "
      "value_bytes per scalar): the signs of X W^T, one bit each, when the activation's derivative is "
      "the step 1[z > 0] and k = 1 (relu); else the n N values.");
}
