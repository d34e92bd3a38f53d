// Empirical tangent kernels: the Gram matrix and the matrix-free product, as objects advanced in
// units of work (each call with the GIL released, so that Python answers a Ctrl-C between calls)
// and as one-call functions (the same numbers).
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "mfntk/empirical_kernel.hpp"

namespace py = pybind11;
using namespace mfntk;
using namespace mfntk::py_arrays;

namespace {

// A computation and the arrays it reads and writes, kept alive while it runs.
template <class T, class Core> struct PyKernelPlan {
  Array<T> a, W, X;
  OptArray<T> b, X2, V;
  Array<T> out;
  std::unique_ptr<Core> core;

  void advance(Index count) {
    if (count < 0) throw std::invalid_argument("count: must be >= 0");
    py::gil_scoped_release release;
    core->advance(count);
  }
};

template <class T> using PyGram = PyKernelPlan<T, EmpiricalGram<T>>;
using SignArray = py::array_t<std::uint64_t, py::array::c_style>;

// The matrix-free product, and the sign cache it reads or fills.
template <class T> struct PyMatvec : PyKernelPlan<T, EmpiricalMatvec<T>> {
  std::optional<SignArray> signs;
};

template <class T>
std::unique_ptr<PyGram<T>> make_gram(const std::string& activation, double c0, const Array<T>& a, const Array<T>& W,
                                     const OptArray<T>& b, const Array<T>& X, const OptArray<T>& X2,
                                     const std::string& kind, const std::string& output, int threads) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  if (X2) expect_shape(*X2, "X2", {-1, p.d});
  const auto id = parse_activation(activation);
  const auto kk = parse_kernel_kind(kind);
  const auto out = parse_kernel_output(output);
  const Index n1 = X.shape(0), n2 = X2 ? X2->shape(0) : n1;
  auto self = std::make_unique<PyGram<T>>(PyGram<T>{a, W, X, b, X2, std::nullopt, empty<T>({kernel_rows(out, n1, p.k),
                                                                                        kernel_rows(out, n2, p.k)}),
                                                    nullptr});
  self->core = std::make_unique<EmpiricalGram<T>>(id, c0, p, X.data(), n1, X2 ? X2->data() : nullptr, n2, kk, out,
                                                  self->out.mutable_data(), threads);
  return self;
}

template <class T> Array<T> gram_result(PyGram<T>& self) {
  if (self.core->done() != self.core->units())
    throw std::invalid_argument("result: " + std::to_string(self.core->units() - self.core->done()) +
                                " unit(s) of work left; advance first");
  {
    py::gil_scoped_release release;
    self.core->finish();
  }
  return self.out;
}

template <class T>
std::unique_ptr<PyMatvec<T>> make_matvec(const std::string& activation, double c0, const Array<T>& a,
                                         const Array<T>& W, const OptArray<T>& b, const Array<T>& X,
                                         const Array<T>& V, const std::string& kind, const std::string& output,
                                         int threads, const OptArray<T>& X_rows,
                                         const std::optional<SignArray>& signs, bool signs_ready) {
  const auto p = particles(a, W, b);
  expect_shape(X, "X", {-1, p.d});
  if (X_rows) expect_shape(*X_rows, "X_rows", {-1, p.d});
  const auto id = parse_activation(activation);
  const auto kk = parse_kernel_kind(kind);
  const auto out = parse_kernel_output(output);
  const Index nc = X.shape(0), nr = X_rows ? X_rows->shape(0) : nc;
  expect_shape(V, "V", {kernel_rows(out, nc, p.k), -1});
  if (signs) {
    const Index words = EmpiricalMatvec<T>::sign_cache_words(id, p.N, p.k, out, nc);
    if (words == 0 || X_rows)
      throw std::invalid_argument("signs: a sign cache needs K(X, X) with relu and one output per product");
    if (signs->ndim() != 1 || signs->shape(0) != words || !signs->writeable())
      throw std::invalid_argument("signs: expected a writeable uint64 array of " + std::to_string(words) + " words");
  }
  const Index m = V.shape(1);
  auto self = std::make_unique<PyMatvec<T>>();
  self->a = a, self->W = W, self->X = X, self->b = b, self->X2 = X_rows, self->V = V;
  self->out = empty<T>({kernel_rows(out, nr, p.k), m});
  self->signs = signs;
  self->core = std::make_unique<EmpiricalMatvec<T>>(id, c0, p, X_rows ? X_rows->data() : nullptr, nr, X.data(), nc,
                                                    V.data(), m, kk, out, self->out.mutable_data(), threads,
                                                    Tiling{}, self->signs ? self->signs->mutable_data() : nullptr, signs_ready);
  return self;
}

template <class T> Array<T> matvec_result(PyMatvec<T>& self) {
  if (self.core->done() != self.core->units())
    throw std::invalid_argument("result: " + std::to_string(self.core->units() - self.core->done()) +
                                " unit(s) of work left; advance first");
  return self.out;
}

template <class T> void bind_for(py::module_& m, const char* gram_name, const char* matvec_name) {
  py::class_<PyGram<T>>(m, gram_name,
                        "The empirical kernel K(X, X2) (X2 None: K(X, X)), computed by advance(count) in units of "
                        "work; result() gives the (n1, n2) mean or the (n1 k, n2 k) matrix kernel.")
      .def(py::init(&make_gram<T>), py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
           py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("X2").noconvert(),
           py::arg("kind"), py::arg("output"), py::arg("threads"))
      .def_property_readonly("units", [](const PyGram<T>& s) { return s.core->units(); })
      .def_property_readonly("done", [](const PyGram<T>& s) { return s.core->done(); })
      .def("advance", &PyGram<T>::advance, py::arg("count"), "Process the next `count` units of work.")
      .def("result", &gram_result<T>, "The kernel, once every unit is done.");
  py::class_<PyMatvec<T>>(m, matvec_name,
                          "K(X_rows, X) V without forming K (X_rows None: X), computed by advance(count) in units of "
                          "work; V and the result have one row per point (mean) or per point and output (matrix).")
      .def(py::init(&make_matvec<T>), py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(),
           py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("V").noconvert(),
           py::arg("kind"), py::arg("output"), py::arg("threads"), py::arg("X_rows").noconvert() = py::none(),
           py::arg("signs").noconvert() = py::none(), py::arg("signs_ready") = false)
      .def_static(
          "sign_cache_words",
          [](const std::string& activation, Index N, Index k, const std::string& output, Index n) {
            if (n < 0 || N < 1 || k < 1) throw std::invalid_argument("n, N, k: must be >= 0, >= 1, >= 1");
            return EmpiricalMatvec<T>::sign_cache_words(parse_activation(activation), N, k,
                                                        parse_kernel_output(output), n);
          },
          py::arg("activation"), py::arg("N"), py::arg("k"), py::arg("output"), py::arg("n"),
          "Words of the sign cache of K(X, X) V on n points (0: no cache applies).")
      .def_property_readonly("units", [](const PyMatvec<T>& s) { return s.core->units(); })
      .def_property_readonly("done", [](const PyMatvec<T>& s) { return s.core->done(); })
      .def("advance", &PyMatvec<T>::advance, py::arg("count"), "Process the next `count` units of work.")
      .def("result", &matvec_result<T>, "K V, once every unit is done.");

  m.def(
      "empirical_gram",
      [](const std::string& activation, double c0, const Array<T>& a, const Array<T>& W, const OptArray<T>& b,
         const Array<T>& X, const OptArray<T>& X2, const std::string& kind, int threads, const std::string& output) {
        auto plan = make_gram<T>(activation, c0, a, W, b, X, X2, kind, output, threads);
        plan->advance(plan->core->units());
        return gram_result<T>(*plan);
      },
      py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(), py::arg("W").noconvert(),
      py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("X2").noconvert(), py::arg("kind"),
      py::arg("threads"), py::arg("output") = "mean",
      "Empirical tangent kernel K(X, X2) in one call: (n1, n2) mean, or (n1 k, n2 k) matrix.");
  m.def(
      "empirical_matvec",
      [](const std::string& activation, double c0, const Array<T>& a, const Array<T>& W, const OptArray<T>& b,
         const Array<T>& X, const Array<T>& V, const std::string& kind, int threads, const std::string& output,
         const OptArray<T>& X_rows) {
        auto plan = make_matvec<T>(activation, c0, a, W, b, X, V, kind, output, threads, X_rows, std::nullopt, false);
        plan->advance(plan->core->units());
        return matvec_result<T>(*plan);
      },
      py::arg("activation"), py::arg("c0"), py::arg("a").noconvert(), py::arg("W").noconvert(),
      py::arg("b").noconvert(), py::arg("X").noconvert(), py::arg("V").noconvert(), py::arg("kind"),
      py::arg("threads"), py::arg("output") = "mean", py::arg("X_rows").noconvert() = py::none(),
      "K(X_rows, X) V without forming K, in one call.");
}

}  // namespace

void bind_kernels(py::module_& m) {
  bind_for<double>(m, "EmpiricalGram64", "EmpiricalMatvec64");
  bind_for<float>(m, "EmpiricalGram32", "EmpiricalMatvec32");
}
