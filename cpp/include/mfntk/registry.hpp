// The registry of every extension point, as plain data: what the core runs, read from the
// policy lists (activations.hpp, losses.hpp, integrators.hpp) and the kernel kinds
// and outputs (empirical_kernel.hpp). The bindings export it, so that Python lists no names of its own.
#pragma once

#include <string>
#include <vector>

#include "activations.hpp"
#include "analytic_kernel.hpp"
#include "empirical_kernel.hpp"
#include "integrators.hpp"
#include "losses.hpp"

namespace mfntk {

struct ActivationInfo {
  std::string name;
  bool closed_form_kernel;  // the infinite-width kernel has a closed form (otherwise quadrature)
  bool has_c0;
  bool homogeneous;
  bool smooth;
  bool step_derivative;  // sigma'(z) = 1[z > 0]
};

struct LossInfo {
  std::string name;
  bool single_output;
  bool pm1_labels;
};

struct IntegratorInfo {
  std::string name;
  int stages;
  int order;
  bool supports_temperature;
};

struct KernelKindInfo {
  std::string name;
  bool second_layer;
  bool first_layer;
};

struct KernelOutputInfo {
  std::string name;
  bool matrix;
};

inline std::vector<ActivationInfo> activation_registry() {
  std::vector<ActivationInfo> out;
  Activations::for_each([&](auto tag) {
    using A = typename decltype(tag)::type;
    out.push_back({A::name, GaussianMoments<A>::closed_form, A::has_c0, A::homogeneous, A::smooth, A::step_derivative});
  });
  return out;
}

inline std::vector<LossInfo> loss_registry() {
  std::vector<LossInfo> out;
  Losses::for_each([&](auto tag) {
    using L = typename decltype(tag)::type;
    out.push_back({L::name, L::single_output, L::pm1_labels});
  });
  return out;
}

inline std::vector<IntegratorInfo> integrator_registry() {
  std::vector<IntegratorInfo> out;
  Integrators::for_each([&](auto tag) {
    using I = typename decltype(tag)::type;
    out.push_back({I::name, I::stages, I::order, I::supports_temperature});
  });
  return out;
}

inline std::vector<KernelKindInfo> kernel_kind_registry() {
  std::vector<KernelKindInfo> out;
  for (const KernelKind& k : kKernelKinds) out.push_back({k.name, k.second_layer, k.first_layer});
  return out;
}

inline std::vector<KernelOutputInfo> kernel_output_registry() {
  std::vector<KernelOutputInfo> out;
  for (const KernelOutput& o : kKernelOutputs) out.push_back({o.name, o.matrix});
  return out;
}

}  // namespace mfntk
