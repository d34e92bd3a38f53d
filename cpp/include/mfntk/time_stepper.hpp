// The time loop every particle engine shares (dynamics.hpp, diagonal_linear.hpp): the run's
// settings, the data of
// each step (full batch or one stacked minibatch per step, with optional offsets), `steps` steps
// of a registered integrator, the keyed Langevin noise, and the stop at the first non-finite state.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "integrators.hpp"
#include "losses.hpp"
#include "random.hpp"
#include "types.hpp"

namespace mfntk {

// The options of a run that every engine takes; an engine's options add its model's own.
struct RunSettings {
  Loss loss = Loss::of<Squared>();
  double weight_decay = 0.0;
  double temperature = 0.0;
  std::uint64_t seed = 0;
  bool residual_dynamics = false;
  bool linearized = false;
  int threads = 1;
};

enum class Status { ok = 0, nonfinite = 1 };

struct AdvanceResult {
  Index steps = 0;  // steps completed (the last one included when it went non-finite)
  Status status = Status::ok;
};

// Full-batch data, or one batch per step stacked as (steps, B, d) and (steps, B, k); O: the
// offsets of the points (as Y), or null for none.
template <class T> struct Batches {
  const T* X = nullptr;
  const T* Y = nullptr;
  Index size = 0;
  bool stacked = false;
  const T* O = nullptr;
  const T* x(Index s, Index d) const { return stacked ? X + s * size * d : X; }
  const T* y(Index s, Index k) const { return stacked ? Y + s * size * k : Y; }
  const T* o(Index s, Index k) const { return O == nullptr ? nullptr : stacked ? O + s * size * k : O; }
};

template <class T> bool all_finite(int threads, Index size, const T* y) {
  bool ok = true;
#pragma omp parallel for schedule(static) num_threads(threads) if (size > kParallelMin) reduction(&& : ok)
  for (Index i = 0; i < size; ++i) ok = ok && std::isfinite(y[i]);
  return ok;
}

// Euler-Maruyama increment sqrt(2 tau dt) xi on the first `particles` values of the state,
// xi keyed by (seed, step, index): independent of threads and of how steps are grouped in calls.
// `index(i)` is the key of value i (a shard's values take their index in the whole network).
struct SameIndex {
  Index operator()(Index i) const { return i; }
};

template <class T, class IndexOf = SameIndex>
void add_langevin_noise(T* y, Index particles, double temperature, T dt, std::uint64_t seed, std::int64_t step,
                        int threads, IndexOf index = {}) {
  const T scale = static_cast<T>(std::sqrt(2.0 * temperature * static_cast<double>(dt)));
  const std::uint64_t key = noise_key(seed, static_cast<std::uint64_t>(step));
#pragma omp parallel for schedule(static) num_threads(threads) if (particles > kParallelMin / 8)
  for (Index i = 0; i < particles; ++i)
    y[i] += scale * static_cast<T>(standard_normal(key, static_cast<std::uint64_t>(index(i))));
}

// Owns the integrators' stage buffers between calls (at N = 2^20 each holds hundreds of MB, so
// only those the method uses are kept).
struct Unanimous {
  bool operator()(bool ok) const { return ok; }
};

template <class T> class TimeStepper {
 public:
  // `steps` steps of `method` on the state y (size values, in place): field(s, state, slope) is
  // the vector field at step s; noise(s) adds step s's noise when `noisy`. Stops after the first
  // step that leaves a non-finite value; all_agree(finite) says whether every process of a
  // sharded run found its state finite.
  template <class Field, class Noise, class Agree = Unanimous>
  AdvanceResult advance(Method method, T* y, Index size, Index steps, T dt, int threads, bool noisy, Field&& field,
                        Noise&& noise, Agree all_agree = {}) {
    return with_integrator(method, [&](auto integrator) {
      using I = decltype(integrator);
      static_assert(I::stages >= 1 && I::stages <= 4, "at most four stage buffers");
      if (noisy && !I::supports_temperature)
        throw std::invalid_argument(std::string("method: '") + I::name +
                                    "' cannot integrate temperature > 0 (Euler-Maruyama needs a one-stage step)");
      for (int i = 0; i < 4; ++i) stage_[i].resize(i < I::stages ? size : 0);
      tmp_.resize(I::stages > 1 ? size : 0);
      const StepBuffers<T> buffers{{stage_[0].data(), stage_[1].data(), stage_[2].data(), stage_[3].data()},
                                   tmp_.data(), size, threads};
      AdvanceResult res;
      for (Index s = 0; s < steps; ++s) {
        I::step([&](const T* state, T* slope) { field(s, state, slope); }, y, dt, buffers);
        if (noisy) noise(s);
        res.steps = s + 1;
        if (!all_agree(all_finite(threads, size, y))) {
          res.status = Status::nonfinite;
          return res;
        }
      }
      return res;
    });
  }

 private:
  Vec<T> stage_[4], tmp_;
};

}  // namespace mfntk
