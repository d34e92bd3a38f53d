// The diagonal linear network's engine: holds the options and the training data; advance() runs
// many integrator steps in one call with the GIL released. The same methods as the two-layer
// engine (bind_dynamics.cpp), except that set_reference takes w_0 only.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "mfntk/diagonal_linear.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T> struct PyDiagonal {
  std::unique_ptr<DiagonalLinearDynamics<T>> core;
  Array<T> X, Y;  // full-batch data, kept alive while the core reads it
  OptArray<T> O;  // offsets of the full-batch points, or none
  Index n = 0;
  const T* offsets() const { return O ? O->data() : nullptr; }

  void check_state(const Array<T>& y) const { expect_shape(y, "state", {core->layout(n).size}); }
  void check_data() const {
    if (n == 0) throw std::invalid_argument("data: call set_data(X, Y) first");
  }
};

template <class T> void bind_for(py::module_& m, const char* name) {
  using Self = PyDiagonal<T>;
  py::class_<Self>(m, name)
      .def(py::init([](const DiagonalOptions& options) {
             auto self = std::make_unique<Self>();
             self->core = std::make_unique<DiagonalLinearDynamics<T>>(options);
             return self;
           }),
           py::arg("options"))
      .def("set_data",
           [](Self& self, const Array<T>& X, const Array<T>& Y) {
             expect_shape(X, "X", {-1, self.core->options().d});
             expect_shape(Y, "Y", {X.shape(0), 1});
             if (X.shape(0) == 0) throw std::invalid_argument("X: needs at least one row");
             self.X = X; self.Y = Y; self.n = X.shape(0); self.O.reset();
           },
           py::arg("X").noconvert(), py::arg("Y").noconvert())
      .def("set_offset",
           [](Self& self, const Array<T>& O) {
             self.check_data();
             expect_shape(O, "offset", {self.n, 1});
             self.O = O;
           },
           py::arg("offset").noconvert(), "Offsets o_i subtracted from the model on the full-batch points.")
      .def("set_reference",
           [](Self& self, const Array<T>& w0) {
             expect_shape(w0, "w0", {2 * self.core->options().d});
             self.core->set_reference(w0.data());
           },
           py::arg("w0").noconvert(), "The reference point w_0 = [w0_+ | w0_-] of the linearized model.")
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
             self.check_data();
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
             self.check_data();
             self.check_state(y);
             if (steps < 0) throw std::invalid_argument("steps: must be >= 0");
             Batches<T> data{self.X.data(), self.Y.data(), self.n, false, self.offsets()};
             if (Xb || Yb) {
               if (!Xb || !Yb) throw std::invalid_argument("batches: give both X and Y batches");
               expect_shape(*Xb, "X batches", {steps, -1, self.core->options().d});
               expect_shape(*Yb, "Y batches", {steps, Xb->shape(1), 1});
               if (Xb->shape(1) == 0) throw std::invalid_argument("X batches: a batch needs at least one row");
               if (self.O && !Ob) throw std::invalid_argument("offset batches: the model has offsets; give them per batch");
               if (Ob) expect_shape(*Ob, "offset batches", {steps, Xb->shape(1), 1});
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

void bind_diagonal(py::module_& m) {
  // The engine's options, field by field: Python fills them by name.
  py::class_<DiagonalOptions>(m, "DiagonalOptions")
      .def(py::init<>())
      .def_readwrite("d", &DiagonalOptions::d)
      .def_readwrite("depth", &DiagonalOptions::depth)
      .def_property(
          "loss", [](const DiagonalOptions& o) { return std::string(o.loss.name()); },
          [](DiagonalOptions& o, const std::string& name) { o.loss = parse_loss(name); })
      .def_readwrite("weight_decay", &DiagonalOptions::weight_decay)
      .def_readwrite("temperature", &DiagonalOptions::temperature)
      .def_readwrite("seed", &DiagonalOptions::seed)
      .def_readwrite("residual_dynamics", &DiagonalOptions::residual_dynamics)
      .def_readwrite("linearized", &DiagonalOptions::linearized)
      .def_readwrite("threads", &DiagonalOptions::threads)
      .def_property_readonly_static("fields", [](py::object) {
        return py::make_tuple("d", "depth", "loss", "weight_decay", "temperature", "seed", "residual_dynamics",
                              "linearized", "threads");
      });
  bind_for<double>(m, "DiagonalDynamics64");
  bind_for<float>(m, "DiagonalDynamics32");
}
