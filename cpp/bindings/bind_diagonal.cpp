// The diagonal linear network's engine (diagonal_linear.hpp): its options, construction and
// linearized reference (w_0 only); the methods every engine shares are in engine.hpp.
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "engine.hpp"
#include "mfntk/diagonal_linear.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

template <class T> void bind_for(py::module_& m, const char* name) {
  using Self = PyEngine<DiagonalLinearDynamics<T>, T>;
  py::class_<Self> cls(m, name);
  cls.def(py::init([](const DiagonalOptions& options) {
            auto self = std::make_unique<Self>();
            self->core = std::make_unique<DiagonalLinearDynamics<T>>(options);
            return self;
          }),
          py::arg("options"))
      .def("set_reference",
           [](Self& self, const Array<T>& w0) {
             expect_shape(w0, "w0", {2 * self.core->options().d});
             self.core->set_reference(w0.data());
           },
           py::arg("w0").noconvert(), "The reference point w_0 = [w0_+ | w0_-] of the linearized model.");
  def_engine_methods(cls);
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
