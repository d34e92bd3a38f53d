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
  OptArray<T> O;  // offsets of the full-batch points, or none
  Index n = 0;
  const T* offsets() const { return O ? O->data() : nullptr; }

  void check_state(const Array<T>& y) const {
    expect_shape(y, "state", {core->layout(n).size});
  }
};

template <class T> void bind_for(py::module_& m, const char* name) {
  using Self = PyDynamics<T>;
  py::class_<Self>(m, name)
      .def(py::init([](const DynamicsOptions& options, const std::string& activation, double c0) {
             auto self = std::make_unique<Self>();
             self->core = make_dynamics<T>(options, parse_activation(activation), c0);
             return self;
           }),
           py::arg("options"), py::arg("activation"), py::arg("c0"))
      .def("set_data",
           [](Self& self, const Array<T>& X, const Array<T>& Y) {
             const auto& o = self.core->options();
             expect_shape(X, "X", {-1, o.d});
             expect_shape(Y, "Y", {X.shape(0), o.k});
             self.X = X; self.Y = Y; self.n = X.shape(0); self.O.reset();
           },
           py::arg("X").noconvert(), py::arg("Y").noconvert())
      .def("set_offset",
           [](Self& self, const Array<T>& O) {
             expect_shape(O, "offset", {self.n, self.core->options().k});
             self.O = O;
           },
           py::arg("offset").noconvert(), "Offsets o_i subtracted from the model on the full-batch points.")
      .def("set_reference",
           [](Self& self, const Array<T>& theta0, const Array<T>& f0) {
             const auto& o = self.core->options();
             expect_shape(theta0, "theta0", {parameter_size(o)});
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
               self.core->field(y.data(), out, self.X.data(), self.Y.data(), self.n, self.offsets());
             }
             return dy;
           },
           py::arg("state").noconvert(), "The vector field at a state, on the full-batch data.")
      .def("advance",
           [](Self& self, Array<T>& y, Index steps, double dt, const std::string& method, std::int64_t step0,
              const OptArray<T>& Xb, const OptArray<T>& Yb, const OptArray<T>& Ob) {
             self.check_state(y);
             const auto& o = self.core->options();
             Batches<T> data{self.X.data(), self.Y.data(), self.n, false, self.offsets()};
             if (Xb || Yb) {
               if (!Xb || !Yb) throw std::invalid_argument("batches: give both X and Y batches");
               expect_shape(*Xb, "X batches", {steps, -1, o.d});
               expect_shape(*Yb, "Y batches", {steps, Xb->shape(1), o.k});
               if (self.O && !Ob) throw std::invalid_argument("offset batches: the model has offsets; give them per batch");
               if (Ob) expect_shape(*Ob, "offset batches", {steps, Xb->shape(1), o.k});
               data = Batches<T>{Xb->data(), Yb->data(), Xb->shape(1), true, Ob ? Ob->data() : nullptr};
             } else if (Ob) {
               throw std::invalid_argument("offset batches: given without X and Y batches");
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
           py::arg("offset_batches").noconvert() = py::none(),
           "Advance the state in place by `steps` steps; returns (steps done, all finite).");
}

}  // namespace

void bind_dynamics(py::module_& m) {
  // The engine's options, field by field: Python fills them by name from its declarations.
  py::class_<DynamicsOptions>(m, "DynamicsOptions")
      .def(py::init<>())
      .def_readwrite("N", &DynamicsOptions::N)
      .def_readwrite("d", &DynamicsOptions::d)
      .def_readwrite("k", &DynamicsOptions::k)
      .def_readwrite("bias", &DynamicsOptions::bias)
      .def_readwrite("output_bias", &DynamicsOptions::output_bias)
      .def_readwrite("alpha", &DynamicsOptions::alpha)
      .def_property(
          "loss", [](const DynamicsOptions& o) { return std::string(o.loss.name()); },
          [](DynamicsOptions& o, const std::string& name) { o.loss = parse_loss(name); })
      .def_readwrite("weight_decay", &DynamicsOptions::weight_decay)
      .def_readwrite("temperature", &DynamicsOptions::temperature)
      .def_readwrite("seed", &DynamicsOptions::seed)
      .def_readwrite("residual_dynamics", &DynamicsOptions::residual_dynamics)
      .def_readwrite("linearized", &DynamicsOptions::linearized)
      .def_readwrite("threads", &DynamicsOptions::threads)
      .def_readwrite("cache_bytes", &DynamicsOptions::cache_bytes)
      .def_property_readonly_static("fields", [](py::object) {
        return py::make_tuple("N", "d", "k", "bias", "output_bias", "alpha", "loss", "weight_decay", "temperature", "seed",
                              "residual_dynamics", "linearized", "threads", "cache_bytes");
      });
  bind_for<double>(m, "Dynamics64");
  bind_for<float>(m, "Dynamics32");
}
