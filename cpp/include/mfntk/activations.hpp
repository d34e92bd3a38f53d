// Activation policies: sigma, sigma' and sigma'' side by side, one struct per activation, with
// the activation's name and metadata:
//   name         the name users pass (activation="relu")
//   has_c0       whether it takes the parameter c0 (the policy is then built as Act{c0})
//   homogeneous  positively homogeneous of degree 1: sigma(z) = z sigma'(z)
//   step_derivative  sigma'(z) = 1[z > 0]: the sign of z alone gives sigma', and with
//                homogeneous also sigma(z) = z 1[z > 0] (the passes then keep sign bits, network.hpp)
//   smooth       infinitely differentiable (a Hermite series of sigma converges fast)
// Whether its infinite-width kernel has a closed form is GaussianMoments<Act>::closed_form,
// beside the closed form itself (analytic_kernel.hpp). `Activations` below is the registry.
// Dispatch from a runtime name happens once per call (with_activation), never per element.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

#include "policy_list.hpp"

namespace mfntk {

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr bool has_c0 = false, homogeneous = true, smooth = false, step_derivative = true;
  template <class T> T f(T u) const { return u > T(0) ? u : T(0); }
  template <class T> T df(T u) const { return u > T(0) ? T(1) : T(0); }
  template <class T> T d2f(T) const { return T(0); }
  template <class T> void f_df(T u, T& s, T& ds) const {
    s = u > T(0) ? u : T(0);
    ds = u > T(0) ? T(1) : T(0);
  }
};

struct Tanh {
  static constexpr const char* name = "tanh";
  static constexpr bool has_c0 = false, homogeneous = false, smooth = true, step_derivative = false;
  template <class T> T f(T u) const { return std::tanh(u); }
  template <class T> T df(T u) const { T t = std::tanh(u); return T(1) - t * t; }
  template <class T> T d2f(T u) const { T t = std::tanh(u); return T(-2) * t * (T(1) - t * t); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = std::tanh(u); ds = T(1) - s * s; }
};

struct Erf {
  static constexpr const char* name = "erf";
  static constexpr bool has_c0 = false, homogeneous = false, smooth = true, step_derivative = false;
  static constexpr double two_over_sqrt_pi = 1.1283791670955126;
  template <class T> T f(T u) const { return std::erf(u); }
  template <class T> T df(T u) const { return T(two_over_sqrt_pi) * std::exp(-u * u); }
  template <class T> T d2f(T u) const { return T(-2) * u * df(u); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = std::erf(u); ds = df(u); }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr bool has_c0 = false, homogeneous = false, smooth = true, step_derivative = false;
  template <class T> T f(T u) const { return T(1) / (T(1) + std::exp(-u)); }
  template <class T> T df(T u) const { T s = f(u); return s * (T(1) - s); }
  template <class T> T d2f(T u) const { T s = f(u); return s * (T(1) - s) * (T(1) - T(2) * s); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = f(u); ds = s * (T(1) - s); }
};

struct Softplus {  // log(1 + e^u), written so that it neither overflows nor loses digits
  static constexpr const char* name = "softplus";
  static constexpr bool has_c0 = false, homogeneous = false, smooth = true, step_derivative = false;
  template <class T> T f(T u) const { return std::log1p(std::exp(-std::abs(u))) + (u > T(0) ? u : T(0)); }
  template <class T> T df(T u) const { return Sigmoid{}.f(u); }
  template <class T> T d2f(T u) const { return Sigmoid{}.df(u); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = f(u); ds = df(u); }
};

struct Quadratic {
  static constexpr const char* name = "quadratic";
  static constexpr bool has_c0 = true, homogeneous = false, smooth = true, step_derivative = false;
  double c0 = 0.0;
  template <class T> T f(T u) const { return u * u + T(c0); }
  template <class T> T df(T u) const { return T(2) * u; }
  template <class T> T d2f(T) const { return T(2); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = u * u + T(c0); ds = T(2) * u; }
};

struct Identity {
  static constexpr const char* name = "identity";
  static constexpr bool has_c0 = false, homogeneous = true, smooth = true, step_derivative = false;
  template <class T> T f(T u) const { return u; }
  template <class T> T df(T) const { return T(1); }
  template <class T> T d2f(T) const { return T(0); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = u; ds = T(1); }
};

// The registry of activations, in the order they are listed to users.
using Activations = PolicyList<Relu, Tanh, Erf, Sigmoid, Softplus, Quadratic, Identity>;
using ActivationId = Activations::Id;

inline ActivationId parse_activation(std::string_view name) { return Activations::parse("activation", name); }

// Calls fn(policy) with the policy struct of the activation `id` (built with c0 when it takes one).
template <class Fn>
decltype(auto) with_activation(ActivationId id, double c0, Fn&& fn) {
  return Activations::visit(id, [&](auto tag) -> decltype(auto) {
    using Act = typename decltype(tag)::type;
    if constexpr (Act::has_c0) return fn(Act{c0});
    else return fn(Act{});
  });
}

}  // namespace mfntk
