// The registry of the core's extension points, and the activations themselves, elementwise.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "mfntk/activation_tiles.hpp"
#include "mfntk/registry.hpp"

namespace py = pybind11;
using namespace mfntk;

namespace {

py::dict registry_py() {
  py::list activations, losses, integrators, kinds, outputs;
  for (const auto& a : activation_registry()) {
    py::dict d;
    d["name"] = a.name;
    d["closed_form_kernel"] = a.closed_form_kernel;
    d["has_c0"] = a.has_c0;
    d["homogeneous"] = a.homogeneous;
    d["smooth"] = a.smooth;
    d["step_derivative"] = a.step_derivative;
    activations.append(d);
  }
  for (const auto& l : loss_registry()) {
    py::dict d;
    d["name"] = l.name;
    d["single_output"] = l.single_output;
    d["pm1_labels"] = l.pm1_labels;
    losses.append(d);
  }
  for (const auto& i : integrator_registry()) {
    py::dict d;
    d["name"] = i.name;
    d["stages"] = i.stages;
    d["order"] = i.order;
    d["supports_temperature"] = i.supports_temperature;
    integrators.append(d);
  }
  for (const auto& k : kernel_kind_registry()) {
    py::dict d;
    d["name"] = k.name;
    d["second_layer"] = k.second_layer;
    d["first_layer"] = k.first_layer;
    kinds.append(d);
  }
  for (const auto& o : kernel_output_registry()) {
    py::dict d;
    d["name"] = o.name;
    d["matrix"] = o.matrix;
    outputs.append(d);
  }
  py::dict out;
  out["activations"] = activations;
  out["losses"] = losses;
  out["integrators"] = integrators;
  out["kernel_kinds"] = kinds;
  out["kernel_outputs"] = outputs;
  return out;
}

// sigma (order 0), sigma' (1) or sigma'' (2) of every entry of Z, by the activation's policy.
template <class T> py::array activation_as(ActivationId id, double c0, const py::array& Zin, int order) {
  const auto Z = py::array_t<T, py::array::c_style>::ensure(Zin);
  if (!Z) throw std::invalid_argument("Z: cannot be read as a C-contiguous array");
  py::array_t<T> out(std::vector<py::ssize_t>(Z.shape(), Z.shape() + Z.ndim()));
  const T* z = Z.data();
  T* o = out.mutable_data();
  const py::ssize_t n = Z.size();
  {
    py::gil_scoped_release release;
    with_activation(id, c0, [&](auto act) {
      if (order == 2) {
        for (py::ssize_t i = 0; i < n; ++i) o[i] = act.d2f(z[i]);
        return;
      }
      // sigma and sigma' by the row path of the tiles, as the dynamics and the kernels compute
      // them (vectorised for tanh, sigmoid and erf). Each chunk is copied into aligned buffers
      // and padded to whole packets, so that every element takes the packet path: the values do
      // not depend on where Z lies in memory (Eigen finishes an unaligned or ragged array with
      // scalar code, which can differ in the last bit).
      constexpr py::ssize_t chunk = 4096, lanes = 16;  // chunk: a multiple of every packet size
      std::vector<T, Eigen::aligned_allocator<T>> in(chunk), res(chunk), other(chunk);
      for (py::ssize_t i0 = 0; i0 < n; i0 += chunk) {
        const Index m = std::min(chunk, n - i0), padded = (m + lanes - 1) / lanes * lanes;
        std::copy(z + i0, z + i0 + m, in.data());
        std::fill(in.data() + m, in.data() + padded, T(0));
        if (order == 0) activate_row<T>(act, in.data(), res.data(), other.data(), padded, false);
        else activate_derivative_row<T>(act, in.data(), other.data(), res.data(), padded);
        std::copy(res.data(), res.data() + m, o + i0);
      }
    });
  }
  return std::move(out);
}

py::array activation_py(const std::string& name, double c0, const py::array& Z, int order) {
  const ActivationId id = parse_activation(name);
  if (order < 0 || order > 2) throw std::invalid_argument("order: must be 0, 1 or 2, got " + std::to_string(order));
  if (!(Z.flags() & py::array::c_style))
    throw std::invalid_argument("Z: must be C-contiguous (np.ascontiguousarray)");
  if (py::isinstance<py::array_t<double>>(Z)) return activation_as<double>(id, c0, Z, order);
  if (py::isinstance<py::array_t<float>>(Z)) return activation_as<float>(id, c0, Z, order);
  throw std::invalid_argument("Z: expected a float64 or float32 array, got dtype " +
                              py::str(Z.dtype()).cast<std::string>());
}

}  // namespace

void bind_registry(py::module_& m) {
  m.def("registry", &registry_py,
        "The core's extension points: {'activations', 'losses', 'integrators', 'kernel_kinds', "
        "'kernel_outputs'}, each a list of "
        "dicts with the name and metadata of one entry, in the order they are listed to users.");
  m.def("activation", &activation_py, py::arg("activation"), py::arg("c0"), py::arg("Z"), py::arg("order"),
        "sigma (order 0), sigma' (1) or sigma'' (2) of every entry of Z (float64 or float32, C-contiguous), "
        "computed as the dynamics and kernels compute them (the tile path of the activation for sigma and "
        "sigma', its policy for sigma''); a new array of Z's shape and dtype.");
}
