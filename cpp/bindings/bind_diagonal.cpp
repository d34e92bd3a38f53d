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
  bind_options<DiagonalOptions>(m, "DiagonalOptions", [](py::class_<DiagonalOptions>& cls) {
    cls.def_readwrite("d", &DiagonalOptions::d).def_readwrite("depth", &DiagonalOptions::depth);
    return py::make_tuple("d", "depth");
  });
  bind_for<double>(m, "DiagonalDynamics64");
  bind_for<float>(m, "DiagonalDynamics32");
}
