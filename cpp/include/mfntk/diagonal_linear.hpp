// The diagonal linear network of depth D (Woodworth et al. 2020, "Kernel and rich regimes in
// overparametrized models"), a second particle system beside the two-layer network:
//
//   f_w(x) = <beta, x>,  beta = w_+^D - w_-^D  (elementwise powers),  w_+ = w_- = alpha 1 at t = 0.
//
// Coordinate i is the particle (w_+i, w_-i); the particles interact only through the residual.
// Gradient flow on the empirical risk (1/n) sum_i l(f(x_i), y_i), with r = -dl/df (losses.hpp):
//
//   G = X^T r(X beta) / n,   c_+ = D w_+^{D-1},   c_- = -D w_-^{D-1}
//   d w_+ / dt = c_+ G - lambda w_+,   d w_- / dt = c_- G - lambda w_-      (J^T r / n - lambda w)
//
// so that the Euler step with dt = eta is gradient descent with learning rate eta. Optional blocks,
// as in the two-layer engine (dynamics.hpp):
//   residual dynamics  g' = J v(g) = X (c_+ v_+ + c_- v_-),  v(g) the particle field driven by r(g),
//                      i.e. g' = (1/n) K r(g) - lambda J w with K = X diag(c_+^2 + c_-^2) X^T;
//   linearized model   fbar(x) = f_0(x) + <J_0(x), wbar - w_0> = <betabar, x>,
//                      betabar = beta_0 + c0_+ (wbar_+ - w0_+) + c0_- (wbar_- - w0_-),
//                      wbar' = c0 X^T r(X betabar) / n - lambda wbar (c0: the c at the reference w_0).
// The linearized model is linear in x, so it needs only w_0 (not f_0 on the data) and works
// with minibatches too. Offsets o_i (the centred model f - f_0, as in dynamics.hpp) are subtracted
// from f and fbar on each point.
//
// State vector: [w_+ (d) | w_- (d) | g (n), with residual_dynamics | wbar_+ (d) | wbar_- (d), with linearized].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "dynamics.hpp"
#include "integrators.hpp"
#include "losses.hpp"
#include "time_stepper.hpp"
#include "types.hpp"

namespace mfntk {

struct DiagonalOptions : RunSettings {
  Index d = 0;
  int depth = 2;
};

namespace diagonal {

// x^e by repeated multiplication (e >= 0 small): the same rounding everywhere.
template <class T> inline T ipow(T x, int e) {
  T r = T(1);
  for (int k = 0; k < e; ++k) r *= x;
  return r;
}

// The fixed partition of the passes over X (n, d). Rows are cut into at most kMaxSampleBlocks
// blocks of at least kMinSampleBlock rows and columns into blocks of kColumnBlock: the partition
// depends on (n, d) only, never on the thread count, and every sum is taken in the same order.
constexpr Index kMinSampleBlock = 512, kMaxSampleBlocks = 64, kColumnBlock = 512;

struct PassPlan {
  Index sample_block, sample_blocks, column_blocks;
  PassPlan(Index n, Index d)
      : sample_block(std::max(kMinSampleBlock, num_tiles(n, kMaxSampleBlocks))),
        sample_blocks(num_tiles(n, sample_block)),
        column_blocks(num_tiles(d, kColumnBlock)) {}
};

// out[m][i] = <x_i, V[m]> for the M vectors V[m] (d) and every row x_i of X: each output is summed
// by one thread, over the columns in order.
template <class T>
void rows_dot(int threads, const T* X, Index n, Index d, int M, const T* const* V, T* const* out) {
#pragma omp parallel for schedule(static) num_threads(threads) if (n * d > kParallelMin && n > 1)
  for (Index i = 0; i < n; ++i) {
    const CMapVec<T> x(X + i * d, d);
    for (int m = 0; m < M; ++m) out[m][i] = x.dot(CMapVec<T>(V[m], d));
  }
}

// out[m] = scale X^T R[m] for the M vectors R[m] (n). Each (sample block, column block) pair sums
// its rows in order into `partial` (sample_blocks x M x d values); the blocks are then added in
// block order: the same numbers for any thread count.
template <class T>
void cols_dot(int threads, const T* X, Index n, Index d, int M, const T* const* R, T scale, T* const* out,
              std::vector<T>& partial) {
  const PassPlan plan(n, d);
  partial.resize(static_cast<std::size_t>(plan.sample_blocks * M * d));
  const Index tasks = plan.sample_blocks * plan.column_blocks;
#pragma omp parallel for schedule(static) num_threads(threads) if (tasks > 1 && n * d > kParallelMin)
  for (Index task = 0; task < tasks; ++task) {
    const Index sb = task / plan.column_blocks, cb = task % plan.column_blocks;
    const Index i0 = sb * plan.sample_block, i1 = std::min(n, i0 + plan.sample_block);
    const Index j0 = cb * kColumnBlock, nj = std::min(kColumnBlock, d - j0);
    for (int m = 0; m < M; ++m) {
      T* acc = partial.data() + (sb * M + m) * d + j0;
      std::fill(acc, acc + nj, T(0));
      for (Index i = i0; i < i1; ++i) {
        const T r = R[m][i];
        const T* x = X + i * d + j0;
        for (Index j = 0; j < nj; ++j) acc[j] += r * x[j];
      }
    }
  }
#pragma omp parallel for schedule(static) num_threads(threads) if (M * d > kParallelMin)
  for (Index j = 0; j < d; ++j)
    for (int m = 0; m < M; ++m) {
      T s = T(0);
      for (Index sb = 0; sb < plan.sample_blocks; ++sb) s += partial[(sb * M + m) * d + j];
      out[m][j] = scale * s;
    }
}

}  // namespace diagonal

template <class T> class DiagonalLinearDynamics {
 public:
  explicit DiagonalLinearDynamics(const DiagonalOptions& o) : opt_(o) {
    if (o.d <= 0) throw std::invalid_argument("d: must be positive, got " + std::to_string(o.d));
    if (o.depth < 2) throw std::invalid_argument("depth: must be an integer >= 2, got " + std::to_string(o.depth));
    if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay))
      throw std::invalid_argument("weight_decay: must be finite and >= 0");
    if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
      throw std::invalid_argument("temperature: must be finite and >= 0");
    if (o.threads < 1) throw std::invalid_argument("threads: must be at least 1");
  }

  const DiagonalOptions& options() const { return opt_; }
  Index inputs() const { return opt_.d; }
  Index outputs() const { return 1; }

  // n: number of training points (the residual-dynamics block lives on them).
  StateLayout layout(Index n) const {
    StateLayout L;
    L.particles = 2 * opt_.d;
    Index off = L.particles;
    if (opt_.residual_dynamics) { L.residual = off; off += n; }
    if (opt_.linearized) { L.linearized = off; off += L.particles; }
    L.size = off;
    return L;
  }

  // The linearized model's reference point w_0 = [w0_+ | w0_-].
  void set_reference(const T* w0) {
    const Index d = opt_.d;
    const int D = opt_.depth;
    w0_.assign(w0, w0 + 2 * d);
    beta0_.resize(d); c0p_.resize(d); c0m_.resize(d);
    for (Index j = 0; j < d; ++j) {
      beta0_[j] = diagonal::ipow(w0[j], D) - diagonal::ipow(w0[d + j], D);
      c0p_[j] = T(D) * diagonal::ipow(w0[j], D - 1);
      c0m_[j] = -T(D) * diagonal::ipow(w0[d + j], D - 1);
    }
  }

  // dy = field(y) on data (X (n, d), Y (n, 1)) with offsets O (n values, or null for none).
  void field(const T* y, T* dy, const T* X, const T* Y, Index n, const T* O = nullptr) {
    const auto& o = opt_;
    const int th = o.threads, D = o.depth;
    const Index d = o.d;
    const auto L = layout(n);
    const T lambda = static_cast<T>(o.weight_decay), g_scale = T(1) / static_cast<T>(n);
    if (o.linearized && static_cast<Index>(w0_.size()) != 2 * d)
      throw std::invalid_argument("linearized: reference not set");
    beta_.resize(d); cp_.resize(d); cm_.resize(d); betabar_.resize(o.linearized ? d : 0);
    F_.resize(n); Fbar_.resize(o.linearized ? n : 0);
    R_.resize(n); Rg_.resize(o.residual_dynamics ? n : 0); Rbar_.resize(o.linearized ? n : 0);
    G_.resize(d); Gg_.resize(o.residual_dynamics ? d : 0); Gbar_.resize(o.linearized ? d : 0);

    const T* wp = y;
    const T* wm = y + d;
    const T* bp = o.linearized ? y + L.linearized : nullptr;
    const T* bm = o.linearized ? bp + d : nullptr;
#pragma omp parallel for schedule(static) num_threads(th) if (d > kParallelMin)
    for (Index j = 0; j < d; ++j) {
      const T pp = diagonal::ipow(wp[j], D - 1), pm = diagonal::ipow(wm[j], D - 1);
      beta_[j] = pp * wp[j] - pm * wm[j];
      cp_[j] = T(D) * pp;
      cm_[j] = -T(D) * pm;
      if (o.linearized)
        betabar_[j] = beta0_[j] + c0p_[j] * (bp[j] - w0_[j]) + c0m_[j] * (bm[j] - w0_[d + j]);
    }

    // one pass for f and fbar, one for every X^T r
    const T* betas[2] = {beta_.data(), betabar_.data()};
    T* forwards[2] = {F_.data(), Fbar_.data()};
    diagonal::rows_dot(th, X, n, d, o.linearized ? 2 : 1, betas, forwards);
    if (O != nullptr)
      for (Index i = 0; i < n; ++i) {
        F_[i] -= O[i];
        if (o.linearized) Fbar_[i] -= O[i];
      }
    const T* residuals[3];
    T* grads[3];
    int M = 0;
    residual(o.loss, F_.data(), Y, n, R_.data());
    residuals[M] = R_.data(); grads[M++] = G_.data();
    if (o.residual_dynamics) {
      residual(o.loss, y + L.residual, Y, n, Rg_.data());
      residuals[M] = Rg_.data(); grads[M++] = Gg_.data();
    }
    if (o.linearized) {
      residual(o.loss, Fbar_.data(), Y, n, Rbar_.data());
      residuals[M] = Rbar_.data(); grads[M++] = Gbar_.data();
    }
    diagonal::cols_dot(th, X, n, d, M, residuals, g_scale, grads, partial_);

    T* dwp = dy;
    T* dwm = dy + d;
    if (o.residual_dynamics) u_.resize(d);
#pragma omp parallel for schedule(static) num_threads(th) if (d > kParallelMin)
    for (Index j = 0; j < d; ++j) {
      dwp[j] = cp_[j] * G_[j] - lambda * wp[j];
      dwm[j] = cm_[j] * G_[j] - lambda * wm[j];
      if (o.residual_dynamics)  // J v(g): v_+- = c_+- G(g) - lambda w_+-
        u_[j] = cp_[j] * (cp_[j] * Gg_[j] - lambda * wp[j]) + cm_[j] * (cm_[j] * Gg_[j] - lambda * wm[j]);
      if (o.linearized) {
        dy[L.linearized + j] = c0p_[j] * Gbar_[j] - lambda * bp[j];
        dy[L.linearized + d + j] = c0m_[j] * Gbar_[j] - lambda * bm[j];
      }
    }
    if (o.residual_dynamics) {
      const T* us[1] = {u_.data()};
      T* gs[1] = {dy + L.residual};
      diagonal::rows_dot(th, X, n, d, 1, us, gs);
    }
  }

  // `steps` steps of `method` from the state y (in place), at the data of `data` (full batch or
  // one stacked batch per step). Stops after the first step that leaves a non-finite value.
  AdvanceResult advance(T* y, Index n_train, Index steps, T dt, Method method, std::int64_t step0,
                        const Batches<T>& data) {
    if (opt_.residual_dynamics && data.stacked)
      throw std::invalid_argument("batch: residual_dynamics needs full-batch dynamics");
    return stepper_.advance(
        method, y, layout(n_train).size, steps, dt, opt_.threads, opt_.temperature > 0,
        [&](Index s, const T* state, T* slope) {
          field(state, slope, data.x(s, opt_.d), data.y(s, 1), data.size, data.o(s, 1));
        },
        [&](Index s) {  // on the particles (w_+, w_-) only
          add_langevin_noise(y, 2 * opt_.d, opt_.temperature, dt, opt_.seed, step0 + s, opt_.threads);
        });
  }

 private:
  DiagonalOptions opt_;
  std::vector<T> w0_, beta0_, c0p_, c0m_;
  std::vector<T> beta_, betabar_, cp_, cm_, F_, Fbar_, R_, Rg_, Rbar_, G_, Gg_, Gbar_, u_, partial_;
  TimeStepper<T> stepper_;
};

}  // namespace mfntk
