// The Dynamics engine: holds the options and the training data; advance() runs many
// integrator steps in one call with the GIL released.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "mfntk/dynamics.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T> struct PyDynamics {
  std::unique_ptr<Dynamics<T>> core;
  Array<T> X, Y;  // full-batch data, kept alive while the core reads it
  Index n = 0;

  void check_state(const Array<T>& y) const {
    expect_shape(y, "state", {core->layout(n).size});
  }
};

template <class T> void bind_for(py::module_& m, const char* name) {
  using Self = PyDynamics<T>;
  py::class_<Self>(m, name)
      .def(py::init([](const std::string& activation, double c0, Index N, Index d, Index k, bool bias, double alpha,
                       const std::string& loss, double weight_decay, double temperature, std::uint64_t seed,
                       bool residual_dynamics, bool linearized, int threads, std::size_t cache_bytes) {
             DynamicsOptions o;
             o.N = N; o.d = d; o.k = k; o.bias = bias; o.alpha = alpha; o.loss = parse_loss(loss);
             o.weight_decay = weight_decay; o.temperature = temperature; o.seed = seed;
             o.residual_dynamics = residual_dynamics; o.linearized = linearized; o.threads = threads;
             o.cache_bytes = cache_bytes;
             auto self = std::make_unique<Self>();
             self->core = make_dynamics<T>(o, parse_activation(activation), c0);
             return self;
           }),
           py::kw_only(), py::arg("activation"), py::arg("c0"), py::arg("N"), py::arg("d"), py::arg("k"),
           py::arg("bias"), py::arg("alpha"), py::arg("loss"), py::arg("weight_decay"), py::arg("temperature"),
           py::arg("seed"), py::arg("residual_dynamics"), py::arg("linearized"), py::arg("threads"),
           py::arg("cache_bytes") = std::size_t(1) << 30)
      .def("set_data",
           [](Self& self, const Array<T>& X, const Array<T>& Y) {
             const auto& o = self.core->options();
             expect_shape(X, "X", {-1, o.d});
             expect_shape(Y, "Y", {X.shape(0), o.k});
             self.X = X; self.Y = Y; self.n = X.shape(0);
           },
           py::arg("X").noconvert(), py::arg("Y").noconvert())
      .def("set_reference",
           [](Self& self, const Array<T>& theta0, const Array<T>& f0) {
             const auto& o = self.core->options();
             expect_shape(theta0, "theta0", {particle_size(o.N, o.d, o.k, o.bias)});
             expect_shape(f0, "f0", {self.n, o.k});
             self.core->set_reference(theta0.data(), f0.data(), self.n);
           },
           py::arg("theta0").noconvert(), py::arg("f0").noconvert())
      .def("layout",
           [](const Self& self) {
             const auto L = self.core->layout(self.n);
             py::dict out;
             out["particles"] = L.particles; out["residual"] = L.residual;
             out["linearized"] = L.linearized; out["size"] = L.size;
             return out;
           })
      .def("field",
           [](Self& self, const Array<T>& y) {
             self.check_state(y);
             auto dy = empty<T>({y.shape(0)});
             T* out = dy.mutable_data();
             {
               py::gil_scoped_release release;
               self.core->field(y.data(), out, self.X.data(), self.Y.data(), self.n);
             }
             return dy;
           },
           py::arg("state").noconvert(), "The vector field at a state, on the full-batch data.")
      .def("advance",
           [](Self& self, Array<T>& y, Index steps, double dt, const std::string& method, std::int64_t step0,
              const OptArray<T>& Xb, const OptArray<T>& Yb) {
             self.check_state(y);
             const auto& o = self.core->options();
             Batches<T> data{self.X.data(), self.Y.data(), self.n, false};
             if (Xb || Yb) {
               if (!Xb || !Yb) throw std::invalid_argument("batches: give both X and Y batches");
               expect_shape(*Xb, "X batches", {steps, -1, o.d});
               expect_shape(*Yb, "Y batches", {steps, Xb->shape(1), o.k});
               data = Batches<T>{Xb->data(), Yb->data(), Xb->shape(1), true};
             }
             const Method m = parse_method(method);
             T* state = y.mutable_data();
             AdvanceResult r;
             {
               py::gil_scoped_release release;
               r = self.core->advance(state, self.n, steps, static_cast<T>(dt), m, step0, data);
             }
             return py::make_tuple(r.steps, r.status == Status::ok);
           },
           py::arg("state").noconvert(), py::arg("steps"), py::arg("dt"), py::arg("method"), py::arg("step0"),
           py::arg("X_batches").noconvert() = py::none(), py::arg("Y_batches").noconvert() = py::none(),
           "Advance the state in place by `steps` steps; returns (steps done, all finite).");
}

}  // namespace

void bind_dynamics(py::module_& m) {
  bind_for<double>(m, "Dynamics64");
  bind_for<float>(m, "Dynamics32");
}
