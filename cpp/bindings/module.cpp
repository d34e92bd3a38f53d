#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_network(py::module_& m);
void bind_dynamics(py::module_& m);
void bind_diagonal(py::module_& m);
void bind_kernels(py::module_& m);
void bind_analytic(py::module_& m);
void bind_registry(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "mfntk compiled core: tiled OpenMP passes over the particles of a two-layer network";
  bind_network(m);
  bind_dynamics(m);
  bind_diagonal(m);
  bind_kernels(m);
  bind_analytic(m);
  bind_registry(m);
}
