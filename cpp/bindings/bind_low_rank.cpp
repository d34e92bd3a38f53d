// The low-rank preconditioner's product, with the GIL released.
#include "arrays.hpp"
#include "mfntk/low_rank.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

void bind_low_rank(py::module_& m) {
  m.def(
      "low_rank_update",
      [](const Array<double>& U, const Array<double>& scale, const Array<double>& V, int threads) {
        expect_shape(U, "U", {-1, -1});
        expect_shape(scale, "scale", {U.shape(1)});
        expect_shape(V, "V", {U.shape(0), -1});
        auto out = empty<double>({V.shape(0), V.shape(1)});
        double* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          low_rank_update(U.data(), U.shape(0), U.shape(1), scale.data(), V.data(), V.shape(1), o, threads);
        }
        return out;
      },
      py::arg("U").noconvert(), py::arg("scale").noconvert(), py::arg("V").noconvert(), py::arg("threads"),
      "V + U diag(scale) U^T V for U (n, r), scale (r,), V (n, m): the same bits for any thread count.");
}
