#include <pybind11/pybind11.h>

#include <stdexcept>

#ifdef MFNTK_MKL
#include <mkl.h>
#endif

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
#ifdef MFNTK_MKL
  // MKL's strict conditional numerical reproducibility: its GEMMs give the same bits whatever
  // the alignment of their operands, so the tiles' results stay independent of the thread count.
  if (mkl_cbwr_set(mkl_cbwr_get_auto_branch() | MKL_CBWR_STRICT) != MKL_CBWR_SUCCESS)
    throw std::runtime_error("mfntk was built with MFNTK_BLAS=mkl, but MKL refused its reproducible mode");
  m.attr("blas") = "mkl";
#else
  m.attr("blas") = "eigen";
#endif
}
