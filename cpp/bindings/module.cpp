#include <pybind11/pybind11.h>

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
void bind_low_rank(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "mfntk compiled core: tiled OpenMP passes over the particles of a two-layer network";
  bind_network(m);
  bind_dynamics(m);
  bind_diagonal(m);
  bind_kernels(m);
  bind_analytic(m);
  bind_registry(m);
  bind_low_rank(m);
#ifdef MFNTK_MKL
  // MKL's strict conditional numerical reproducibility: its GEMMs give the same bits whatever
  // the alignment of their operands, so the tiles' results stay independent of the thread count.
  // MKL refuses once it has run in this process (another module linked to it came first).
  if (mkl_cbwr_set(mkl_cbwr_get_auto_branch() | MKL_CBWR_STRICT) != MKL_CBWR_SUCCESS &&
      PyErr_WarnEx(PyExc_RuntimeWarning,
                   "mfntk (MFNTK_BLAS=mkl): MKL refused its strict reproducible mode; results may depend on "
                   "the thread count in their last bits",
                   1) != 0)
    throw py::error_already_set();
  m.attr("blas") = "mkl";
#else
  m.attr("blas") = "eigen";
#endif
}
