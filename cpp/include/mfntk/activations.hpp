// Activation policies: sigma, sigma' and sigma'' side by side, one struct per activation.
// Dispatch from a runtime name happens once per call (with_activation), never per element.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

namespace mfntk {

enum class ActivationId { relu, tanh, erf, sigmoid, softplus, quadratic, identity };

struct Relu {
  template <class T> T f(T u) const { return u > T(0) ? u : T(0); }
  template <class T> T df(T u) const { return u > T(0) ? T(1) : T(0); }
  template <class T> T d2f(T) const { return T(0); }
  template <class T> void f_df(T u, T& s, T& ds) const {
    s = u > T(0) ? u : T(0);
    ds = u > T(0) ? T(1) : T(0);
  }
};

struct Tanh {
  template <class T> T f(T u) const { return std::tanh(u); }
  template <class T> T df(T u) const { T t = std::tanh(u); return T(1) - t * t; }
  template <class T> T d2f(T u) const { T t = std::tanh(u); return T(-2) * t * (T(1) - t * t); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = std::tanh(u); ds = T(1) - s * s; }
};

struct Erf {
  static constexpr double two_over_sqrt_pi = 1.1283791670955126;
  template <class T> T f(T u) const { return std::erf(u); }
  template <class T> T df(T u) const { return T(two_over_sqrt_pi) * std::exp(-u * u); }
  template <class T> T d2f(T u) const { return T(-2) * u * df(u); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = std::erf(u); ds = df(u); }
};

struct Sigmoid {
  template <class T> T f(T u) const { return T(1) / (T(1) + std::exp(-u)); }
  template <class T> T df(T u) const { T s = f(u); return s * (T(1) - s); }
  template <class T> T d2f(T u) const { T s = f(u); return s * (T(1) - s) * (T(1) - T(2) * s); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = f(u); ds = s * (T(1) - s); }
};

struct Softplus {  // log(1 + e^u), written so that it neither overflows nor loses digits
  template <class T> T f(T u) const { return std::log1p(std::exp(-std::abs(u))) + (u > T(0) ? u : T(0)); }
  template <class T> T df(T u) const { return Sigmoid{}.f(u); }
  template <class T> T d2f(T u) const { return Sigmoid{}.df(u); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = f(u); ds = df(u); }
};

struct Quadratic {
  double c0 = 0.0;
  template <class T> T f(T u) const { return u * u + T(c0); }
  template <class T> T df(T u) const { return T(2) * u; }
  template <class T> T d2f(T) const { return T(2); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = u * u + T(c0); ds = T(2) * u; }
};

struct Identity {
  template <class T> T f(T u) const { return u; }
  template <class T> T df(T) const { return T(1); }
  template <class T> T d2f(T) const { return T(0); }
  template <class T> void f_df(T u, T& s, T& ds) const { s = u; ds = T(1); }
};

inline ActivationId parse_activation(const std::string& name) {
  if (name == "relu") return ActivationId::relu;
  if (name == "tanh") return ActivationId::tanh;
  if (name == "erf") return ActivationId::erf;
  if (name == "sigmoid") return ActivationId::sigmoid;
  if (name == "softplus") return ActivationId::softplus;
  if (name == "quadratic") return ActivationId::quadratic;
  if (name == "identity") return ActivationId::identity;
  throw std::invalid_argument("activation: unknown name '" + name +
                              "'; expected relu, tanh, erf, sigmoid, softplus, quadratic or identity");
}

// Calls fn(policy) with the policy struct of the named activation.
template <class Fn>
decltype(auto) with_activation(ActivationId id, double c0, Fn&& fn) {
  switch (id) {
    case ActivationId::relu: return fn(Relu{});
    case ActivationId::tanh: return fn(Tanh{});
    case ActivationId::erf: return fn(Erf{});
    case ActivationId::sigmoid: return fn(Sigmoid{});
    case ActivationId::softplus: return fn(Softplus{});
    case ActivationId::quadratic: return fn(Quadratic{c0});
    case ActivationId::identity: return fn(Identity{});
  }
  throw std::invalid_argument("activation: invalid id");
}

}  // namespace mfntk
