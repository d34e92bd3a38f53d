// The distributional dynamics (SPEC 3) of the particles, optionally integrated together with
// the residual dynamics on the training set (SPEC 4) and with the linearized (tangent) model.
//
// State vector, one flat buffer: [theta (P) | g (n k), with residual_dynamics | thetabar (P), with linearized]
// where P = N k + N d (+ N) (+ k) holds a, W, b and the output bias c in that order and g are
// the function values on X driven by the tangent kernel of the current particles.
//
// The model on a point x_i is f_i = (alpha/N) sum_j a_j sigma(<w_j, x_i> + b_j) + c - o_i, with
// the output bias c (k values, with output_bias; else 0) and a fixed offset o_i (set_offset, or
// one per minibatch point; else 0): o = f(X; theta_0) gives the centred model.
//
//   d theta_j / dt = (1/alpha) (1/n) sum_i grad sigma_*(x_i; theta_j)^T r_i - lambda theta_j
//                  = J^T r / (alpha n) - lambda theta                    (J of F = sum_j a_j sigma)
//   d c / dt       = (1/n) sum_i r_i                (gradient flow of the risk in c; no decay)
//   d g / dt       = (alpha/N) J v(g) + (1/n) sum_i r_i(g),  v(g) = J^T r(g) / (alpha n) - lambda theta
//                  = (1/n) (K_theta + 1) r(g) - lambda (alpha/N) J theta,   K_theta = J J^T / N  (SPEC 4)
//   d thetabar/dt  = J_0^T r(fbar) / (alpha n) - lambda thetabar,
//                    fbar = f_0 + (alpha/N) J_0 (thetabar - theta_0) + cbar - c_0
// where f_0 is the model (offset included) at theta_0 on the training set (set_reference).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "activations.hpp"
#include "integrators.hpp"
#include "losses.hpp"
#include "network.hpp"
#include "shard.hpp"
#include "time_stepper.hpp"

namespace mfntk {

struct DynamicsOptions : RunSettings {
  Index N = 0, d = 0, k = 1;
  bool bias = false;
  bool output_bias = false;  // a trained output bias c in R^k after the particles
  double alpha = 1.0;
  // Keep the pre-activations X W^T of a stage between the passes (for relu with one output
  // only their signs) when they fit this many bytes (preactivation_cache_bytes; saves a third
  // of the flops); otherwise recompute them tile by tile.
  std::size_t cache_bytes = std::size_t(1) << 30;
  // The fixed chunks of the particles (shard.hpp; 0: one chunk) and the range [chunk_begin,
  // chunk_end) of them this engine holds (chunk_end < 0: to the last). N stays the width of
  // the whole network; the state holds the shard's particles only.
  Index particle_chunk = 0;
  Index chunk_begin = 0, chunk_end = -1;
};

inline Shard shard_of(const DynamicsOptions& o) {
  const Index tile = Tiling{}.particles;
  const Index chunk = o.particle_chunk > 0 ? o.particle_chunk : std::max<Index>(tile, (o.N + tile - 1) / tile * tile);
  return Shard(o.N, chunk, o.chunk_begin, o.chunk_end);
}

// Bytes of the pre-activation cache of a stage on n points, for the particles the shard holds:
// the sign bits of Z when the passes take the sign-mask path (network.hpp), else the n N values of Z.
template <class Act>
double preactivation_cache_bytes(Index n, const Shard& shard, Index k, std::size_t value_bytes,
                                 const Tiling& tiling = {}) {
  if (uses_sign_mask<Act>(k))
    return static_cast<double>(n) * shard.sign_word_offsets(tiling).back() * sizeof(std::uint64_t);
  return static_cast<double>(n) * shard.local_width() * value_bytes;
}

inline double preactivation_cache_bytes(ActivationId act, Index n, const Shard& shard, Index k,
                                        std::size_t value_bytes) {
  return with_activation(act, 0.0, [&](auto a) {
    return preactivation_cache_bytes<decltype(a)>(n, shard, k, value_bytes);
  });
}

struct StateLayout {
  Index particles = 0;  // P
  Index residual = 0;   // offset of g, 0 when absent
  Index linearized = 0; // offset of thetabar, 0 when absent
  Index size = 0;
};

// Number of trained scalars held here: the shard's particles and, with an output bias, its k values.
inline Index parameter_size(const DynamicsOptions& o) {
  return particle_size(shard_of(o).local_width(), o.d, o.k, o.bias) + (o.output_bias ? o.k : 0);
}

template <class T> class Dynamics {
 public:
  explicit Dynamics(const DynamicsOptions& o) : opt_(o) {
    if (o.N <= 0 || o.d <= 0 || o.k <= 0) throw std::invalid_argument("Dynamics: N, d and k must be positive");
    shard_ = shard_of(o);
    if (single_output(o.loss) && o.k != 1)
      throw std::invalid_argument(std::string("loss: '") + o.loss.name() + "' needs outputs = 1");
    if (!(o.alpha > 0)) throw std::invalid_argument("alpha: must be positive");
    if (o.threads < 1) throw std::invalid_argument("threads: must be at least 1");
  }
  virtual ~Dynamics() = default;

  const DynamicsOptions& options() const { return opt_; }
  const Shard& shard() const { return shard_; }
  // The processes' exchange of a sharded run (null: this process holds every chunk). Not owned.
  virtual void set_exchange(Exchange<T>* exchange) { exchange_ = exchange; }
  Index inputs() const { return opt_.d; }
  Index outputs() const { return opt_.k; }

  // n: number of training points (the residual-dynamics block lives on them).
  StateLayout layout(Index n) const {
    StateLayout L;
    L.particles = particle_size(shard_.local_width(), opt_.d, opt_.k, opt_.bias) + (opt_.output_bias ? opt_.k : 0);
    Index off = L.particles;
    if (opt_.residual_dynamics) { L.residual = off; off += n * opt_.k; }
    if (opt_.linearized) { L.linearized = off; off += L.particles; }
    L.size = off;
    return L;
  }

  // The linearized model's reference point theta_0 and f_0 = f(X; theta_0) on the training set.
  void set_reference(const T* theta0, const T* f0, Index n) {
    const Index P = parameter_size(opt_);
    theta0_.assign(theta0, theta0 + P);
    f0_.assign(f0, f0 + n * opt_.k);
  }

  // dy = field(y) on data (X, Y) of n points with offsets O (n k values, or null for none).
  virtual void field(const T* y, T* dy, const T* X, const T* Y, Index n, const T* O = nullptr) = 0;

  AdvanceResult advance(T* y, Index n_train, Index steps, T dt, Method method, std::int64_t step0,
                        const Batches<T>& data) {
    if ((opt_.residual_dynamics || opt_.linearized) && data.stacked)
      throw std::invalid_argument("batch: residual_dynamics and linearized need full-batch dynamics");
    const Index k = opt_.k, Nl = shard_.local_width(), j0 = shard_.particle_begin();
    const Index N = opt_.N, d = opt_.d;
    // The noise of a value is keyed by its index in the whole network's [a | W | b].
    const auto global_index = [=](Index i) -> Index {
      if (i < Nl * k) return j0 * k + i;
      if (i < Nl * (k + d)) return N * k + j0 * d + (i - Nl * k);
      return N * (k + d) + j0 + (i - Nl * (k + d));
    };
    return stepper_.advance(
        method, y, layout(n_train).size, steps, dt, opt_.threads, opt_.temperature > 0,
        [&](Index s, const T* state, T* slope) {
          field(state, slope, data.x(s, opt_.d), data.y(s, k), data.size, data.o(s, k));
        },
        [&](Index s) {  // on the particles only, not on the output bias
          add_langevin_noise(y, particle_size(Nl, d, k, opt_.bias), opt_.temperature, dt, opt_.seed, step0 + s,
                             opt_.threads, global_index);
        },
        [&](bool finite) { return exchange_ ? exchange_->all(finite) : finite; });
  }

 protected:
  DynamicsOptions opt_;
  Shard shard_;
  Exchange<T>* exchange_ = nullptr;
  std::vector<T> theta0_, f0_;
  TimeStepper<T> stepper_;
};

template <class T, class Act> class DynamicsOf final : public Dynamics<T> {
 public:
  DynamicsOf(const DynamicsOptions& o, Act act, Tiling tiling)
      : Dynamics<T>(o), act_(act), passes_(this->shard_, nullptr, tiling) {
    ws_.tiling = tiling;
  }

  void set_exchange(Exchange<T>* exchange) override {
    Dynamics<T>::set_exchange(exchange);
    passes_.set_exchange(exchange);
  }

  void field(const T* y, T* dy, const T* X, const T* Y, Index n, const T* O = nullptr) override {
    const auto& o = this->opt_;
    const int th = o.threads;
    const Index N = o.N, Nl = this->shard_.local_width(), d = o.d, k = o.k, nk = n * k;
    const auto L = this->layout(n);
    const T alpha = static_cast<T>(o.alpha), lambda = static_cast<T>(o.weight_decay);
    const T f_scale = alpha / static_cast<T>(N), g_scale = T(1) / (alpha * static_cast<T>(n));
    F_.resize(nk); R_.resize(nk);

    const Particles<T> theta = particles(y, Nl, d, k, o.bias);
    ZCache<T> cache;
    const double cache_bytes = uses_sign_mask<Act>(k)
                                   ? static_cast<double>(n) * passes_.sign_words_per_sample() * sizeof(std::uint64_t)
                                   : static_cast<double>(n) * Nl * sizeof(T);
    if (cache_bytes <= static_cast<double>(o.cache_bytes)) {  // uninitialised: forward writes it first
      if (uses_sign_mask<Act>(k)) {
        const auto words = static_cast<std::size_t>(cache_bytes) / sizeof(std::uint64_t);
        if (signs_size_ < words) {
          signs_size_ = words;
          signs_.reset(new std::uint64_t[words]);
        }
        cache.signs = signs_.get();
      } else {
        if (cache_size_ < static_cast<std::size_t>(n * Nl)) {
          cache_size_ = static_cast<std::size_t>(n * Nl);
          cache_.reset(new T[cache_size_]);
        }
        cache.data = cache_.get();
      }
      cache.write = cache.read = true;
    }

    // particles: J^T r(f) / (alpha n) - lambda theta
    const Index P = particle_size(Nl, d, k, o.bias);  // the particles; the output bias follows them
    passes_.forward(act_, theta, X, n, F_.data(), ws_, th, cache);
    for (Index i = 0; i < nk; ++i) F_[i] *= f_scale;
    add_output_bias(y + P, O, n);
    residual(o.loss, F_.data(), Y, nk, R_.data());
    particle_field(theta, X, n, R_.data(), y, dy, g_scale, lambda, P, cache);
    output_bias_field(R_.data(), n, dy + P);

    if (o.residual_dynamics) {
      // g' = (alpha/N) J v(g), with v(g) the particle field driven by the residual of g
      scratch_.resize(L.particles);
      residual(o.loss, y + L.residual, Y, nk, R_.data());
      particle_field(theta, X, n, R_.data(), y, scratch_.data(), g_scale, lambda, P, cache);
      output_bias_field(R_.data(), n, scratch_.data() + P);
      const Particles<T> v = particles<T>(scratch_.data(), Nl, d, k, o.bias);
      T* dg = dy + L.residual;
      passes_.jvp(act_, theta, X, n, v, dg, ws_, th, cache);
      for (Index i = 0; i < nk; ++i) dg[i] *= f_scale;
      if (o.output_bias)
        for (Index i = 0; i < n; ++i)
          for (Index p = 0; p < k; ++p) dg[i * k + p] += scratch_[P + p];
    }

    if (o.linearized) {
      // fbar = f0 + (alpha/N) J0 (thetabar - theta0) + cbar - c0;
      // thetabar' = J0^T r(fbar) / (alpha n) - lambda thetabar, cbar' = (1/n) sum_i r_i(fbar)
      if (static_cast<Index>(this->f0_.size()) != nk) throw std::invalid_argument("linearized: reference not set");
      scratch_.resize(L.particles);
      const T* tbar = y + L.linearized;
      for (Index i = 0; i < L.particles; ++i) scratch_[i] = tbar[i] - this->theta0_[i];
      const Particles<T> theta0 = particles<T>(this->theta0_.data(), Nl, d, k, o.bias);
      passes_.jvp(act_, theta0, X, n, particles<T>(scratch_.data(), Nl, d, k, o.bias), F_.data(), ws_, th);
      for (Index i = 0; i < nk; ++i) F_[i] = this->f0_[i] + f_scale * F_[i];
      if (o.output_bias)
        for (Index i = 0; i < n; ++i)
          for (Index p = 0; p < k; ++p) F_[i * k + p] += scratch_[P + p];
      residual(o.loss, F_.data(), Y, nk, R_.data());
      particle_field(theta0, X, n, R_.data(), tbar, dy + L.linearized, g_scale, lambda, P);
      output_bias_field(R_.data(), n, dy + L.linearized + P);
    }
  }

 private:
  Act act_;
  ShardedPasses<T> passes_;
  Workspaces<T> ws_;
  Vec<T> F_, R_, scratch_;
  std::unique_ptr<T[]> cache_;
  std::size_t cache_size_ = 0;
  std::unique_ptr<std::uint64_t[]> signs_;
  std::size_t signs_size_ = 0;

  // F += c - O on the n k model values in F_ (c: the output bias in the state, when trained).
  void add_output_bias(const T* c, const T* O, Index n) {
    const Index k = this->opt_.k;
    if (this->opt_.output_bias)
      for (Index i = 0; i < n; ++i)
        for (Index p = 0; p < k; ++p) F_[i * k + p] += c[p];
    if (O != nullptr)
      for (Index i = 0; i < n * k; ++i) F_[i] -= O[i];
  }

  // dc = (1/n) sum_i R_i, summed in the order of the points (any thread count gives the same).
  void output_bias_field(const T* R, Index n, T* dc) const {
    const Index k = this->opt_.k;
    if (!this->opt_.output_bias) return;
    for (Index p = 0; p < k; ++p) dc[p] = T(0);
    for (Index i = 0; i < n; ++i)
      for (Index p = 0; p < k; ++p) dc[p] += R[i * k + p];
    for (Index p = 0; p < k; ++p) dc[p] /= static_cast<T>(n);
  }

  // out = J^T R * g_scale - lambda * theta_flat, J taken at theta.
  void particle_field(const Particles<T>& theta, const T* X, Index n, const T* R, const T* theta_flat, T* out,
                      T g_scale, T lambda, Index P, ZCache<T> cache = {}) {
    const auto& o = this->opt_;
    passes_.vjp(act_, theta, X, n, R, particle_vec(out, this->shard_.local_width(), o.d, o.k, o.bias), ws_, o.threads,
                cache);
#pragma omp parallel for schedule(static) num_threads(o.threads) if (P > kParallelMin)
    for (Index i = 0; i < P; ++i) out[i] = g_scale * out[i] - lambda * theta_flat[i];
  }
};

template <class T>
std::unique_ptr<Dynamics<T>> make_dynamics(const DynamicsOptions& o, ActivationId act, double c0, Tiling tiling = {}) {
  return with_activation(act, c0, [&](auto a) -> std::unique_ptr<Dynamics<T>> {
    return std::make_unique<DynamicsOf<T, decltype(a)>>(o, a, tiling);
  });
}

}  // namespace mfntk
