// What the Python classes of the particle engines (bind_dynamics.cpp, bind_diagonal.cpp) share:
// the full-batch data they keep alive while the core reads it, and the methods set_data,
// set_offset, layout, field and advance (the last two run with the GIL released). An engine
// core provides inputs(), outputs(), layout(n), field(...) and advance(...).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "arrays.hpp"
#include "mfntk/integrators.hpp"
#include "mfntk/losses.hpp"
#include "mfntk/shard.hpp"
#include "mfntk/time_stepper.hpp"

namespace mfntk::py_arrays {

template <class Core, class T> struct PyEngine {
  using Scalar = T;
  std::unique_ptr<Core> core;
  Array<T> X, Y;  // full-batch data
  OptArray<T> O;  // offsets of the full-batch points, or none
  Index n = 0;
  std::unique_ptr<Exchange<T>> exchange;  // a sharded run's, or none

  const T* offsets() const { return O ? O->data() : nullptr; }
  void check_data() const {
    if (n == 0) throw std::invalid_argument("data: call set_data(X, Y) first");
  }
  void check_state(const Array<T>& y) const { expect_shape(y, "state", {core->layout(n).size}); }

  // The data of `steps` steps: the full batch, or the stacked batches (with their offsets).
  Batches<T> batches(Index steps, const OptArray<T>& Xb, const OptArray<T>& Yb, const OptArray<T>& Ob) const {
    if (!Xb && !Yb) {
      if (Ob) throw std::invalid_argument("offset batches: given without X and Y batches");
      return {X.data(), Y.data(), n, false, offsets()};
    }
    if (!Xb || !Yb) throw std::invalid_argument("batches: give both X and Y batches");
    const Index k = core->outputs();
    expect_shape(*Xb, "X batches", {steps, -1, core->inputs()});
    expect_shape(*Yb, "Y batches", {steps, Xb->shape(1), k});
    if (Xb->shape(1) == 0) throw std::invalid_argument("X batches: a batch needs at least one row");
    if (O && !Ob) throw std::invalid_argument("offset batches: the model has offsets; give them per batch");
    if (Ob) expect_shape(*Ob, "offset batches", {steps, Xb->shape(1), k});
    return {Xb->data(), Yb->data(), Xb->shape(1), true, Ob ? Ob->data() : nullptr};
  }
};

// The run settings of an engine's options (RunSettings), field by field; returns their names.
template <class Options> py::tuple def_run_settings(py::class_<Options>& cls) {
  cls.def_property(
         "loss", [](const Options& o) { return std::string(o.loss.name()); },
         [](Options& o, const std::string& name) { o.loss = parse_loss(name); })
      .def_readwrite("weight_decay", &Options::weight_decay)
      .def_readwrite("temperature", &Options::temperature)
      .def_readwrite("seed", &Options::seed)
      .def_readwrite("residual_dynamics", &Options::residual_dynamics)
      .def_readwrite("linearized", &Options::linearized)
      .def_readwrite("threads", &Options::threads);
  return py::make_tuple("loss", "weight_decay", "temperature", "seed", "residual_dynamics", "linearized", "threads");
}

// An engine's options bound field by field, its model's own fields first: Python fills them by
// name from the ``fields`` tuple.
template <class Options, class Model> void bind_options(py::module_& m, const char* name, Model&& model_fields) {
  py::class_<Options> cls(m, name);
  cls.def(py::init<>());
  const py::tuple own = model_fields(cls);
  const py::tuple run = def_run_settings(cls);
  py::list fields;
  for (auto f : own) fields.append(f);
  for (auto f : run) fields.append(f);
  const py::tuple all(fields);
  cls.def_property_readonly_static("fields", [all](py::object) { return all; });
}

template <class Self> void def_engine_methods(py::class_<Self>& cls) {
  using T = typename Self::Scalar;
  cls.def("set_data",
          [](Self& self, const Array<T>& X, const Array<T>& Y) {
            expect_shape(X, "X", {-1, self.core->inputs()});
            expect_shape(Y, "Y", {X.shape(0), self.core->outputs()});
            if (X.shape(0) == 0) throw std::invalid_argument("X: needs at least one row");
            self.X = X; self.Y = Y; self.n = X.shape(0); self.O.reset();
          },
          py::arg("X").noconvert(), py::arg("Y").noconvert())
      .def("set_offset",
           [](Self& self, const Array<T>& O) {
             self.check_data();
             expect_shape(O, "offset", {self.n, self.core->outputs()});
             self.O = O;
           },
           py::arg("offset").noconvert(), "Offsets o_i subtracted from the model on the full-batch points.")
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
             const Batches<T> data = self.batches(steps, Xb, Yb, Ob);
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

}  // namespace mfntk::py_arrays
