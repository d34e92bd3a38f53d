// Fixed-step integrators of the dynamics (SPEC 3): one policy struct per method, with its name,
// its metadata and its step, side by side:
//   name                  the name users pass (method="rk4")
//   stages                evaluations of the vector field per step
//   order                 order of the global error in dt
//   supports_temperature  integrates temperature > 0 (the noise added after the step makes
//                         the step Euler-Maruyama; only a one-stage step is that)
// `Integrators` below is the registry.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "policy_list.hpp"
#include "types.hpp"

namespace mfntk {

// The scratch of one step: the stage slopes k[0], ..., k[stages - 1] and a trial state, each
// of `size` values.
template <class T> struct StepBuffers {
  T* k[4];
  T* tmp;
  Index size;
  int threads;
};

namespace detail {
template <class T> void axpy(int th, Index size, T a, const T* x, T* y) {
#pragma omp parallel for schedule(static) num_threads(th) if (size > kParallelMin)
  for (Index i = 0; i < size; ++i) y[i] += a * x[i];
}
template <class T> void lincomb(int th, Index size, const T* y, T a, const T* x, T* out) {
#pragma omp parallel for schedule(static) num_threads(th) if (size > kParallelMin)
  for (Index i = 0; i < size; ++i) out[i] = y[i] + a * x[i];
}
}  // namespace detail

// In every step, field(state, slope) writes the vector field at `state` into `slope`.

// y <- y + dt k1
struct Euler {
  static constexpr const char* name = "euler";
  static constexpr int stages = 1, order = 1;
  static constexpr bool supports_temperature = true;
  template <class T, class Field> static void step(const Field& field, T* y, T dt, const StepBuffers<T>& b) {
    T* k1 = b.k[0];
    field(y, k1);
    detail::axpy(b.threads, b.size, dt, k1, y);
  }
};

// Heun (RK2): y <- y + dt/2 (k1 + k2), k2 = field(y + dt k1)
struct Heun {
  static constexpr const char* name = "heun";
  static constexpr int stages = 2, order = 2;
  static constexpr bool supports_temperature = false;
  template <class T, class Field> static void step(const Field& field, T* y, T dt, const StepBuffers<T>& b) {
    T* k1 = b.k[0]; T* k2 = b.k[1];
    const Index size = b.size;
    field(y, k1);
    detail::lincomb(b.threads, size, y, dt, k1, b.tmp);
    field(b.tmp, k2);
#pragma omp parallel for schedule(static) num_threads(b.threads) if (size > kParallelMin)
    for (Index i = 0; i < size; ++i) y[i] += dt / T(2) * (k1[i] + k2[i]);
  }
};

// The classical fourth-order Runge-Kutta method.
struct Rk4 {
  static constexpr const char* name = "rk4";
  static constexpr int stages = 4, order = 4;
  static constexpr bool supports_temperature = false;
  template <class T, class Field> static void step(const Field& field, T* y, T dt, const StepBuffers<T>& b) {
    T* k1 = b.k[0]; T* k2 = b.k[1]; T* k3 = b.k[2]; T* k4 = b.k[3];
    const Index size = b.size;
    const int th = b.threads;
    field(y, k1);
    detail::lincomb(th, size, y, dt / T(2), k1, b.tmp);
    field(b.tmp, k2);
    detail::lincomb(th, size, y, dt / T(2), k2, b.tmp);
    field(b.tmp, k3);
    detail::lincomb(th, size, y, dt, k3, b.tmp);
    field(b.tmp, k4);
#pragma omp parallel for schedule(static) num_threads(th) if (size > kParallelMin)
    for (Index i = 0; i < size; ++i) y[i] += dt / T(6) * (k1[i] + T(2) * (k2[i] + k3[i]) + k4[i]);
  }
};

// The registry of integrators, in the order they are listed to users.
using Integrators = PolicyList<Euler, Heun, Rk4>;
using Method = Integrators::Id;

inline Method parse_method(std::string_view name) { return Integrators::parse("method", name); }

// Calls fn(integrator) with the policy struct of the method `m`.
template <class Fn> decltype(auto) with_integrator(Method m, Fn&& fn) {
  return Integrators::visit(m, [&](auto tag) -> decltype(auto) { return fn(typename decltype(tag)::type{}); });
}

}  // namespace mfntk
