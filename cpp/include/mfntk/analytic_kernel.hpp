// Infinite-width (analytic) kernels of the two-layer network (SPEC 5).
//
// For w ~ N(0, w_std^2 I), b ~ N(0, b_std^2), E|a|^2 = a_std^2, the pre-activations at x and x'
// are a centred Gaussian pair (u, v) with
//   q1 = Var u = w_std^2 |x|^2 + b_std^2,  q2 = Var v = w_std^2 |x'|^2 + b_std^2,
//   c  = Cov(u, v) = w_std^2 <x, x'> + b_std^2,
// and
//   K_rf  = E[sigma(u) sigma(v)]                                     ("rf")
//   K_nt  = a_std^2 (<x, x'> + [bias]) E[sigma'(u) sigma'(v)]         ("nt")
//   K_ntk = K_rf + K_nt                                               ("ntk")
//
// The two Gaussian expectations E[sigma sigma] and E[sigma' sigma'] are functions of (q1, q2, c)
// only. GaussianMoments<Act> gives them in closed form where one exists (Relu, Erf, Quadratic,
// Identity); every activation (these included, on request) can use the Gauss-Hermite rule on
// the bivariate Gaussian instead (HermiteMoments).
//
// analytic_gram: the Gram part X1 X2^T is a GEMM, split into row panels over the threads and
// written straight into the output; the rest is elementwise in place (in double precision
// whatever T). Memory O(n1 n2 + (n1 + n2) d): nothing but the output and two norm vectors.
//
// References: Cho & Saul (2009), arc-cosine kernels (their eq. 6 with J_0, J_1 of eq. 7);
// Williams (1997), the arcsin kernel of erf (his eq. 11); Jacot, Gabriel & Hongler (2018), NTK.
#pragma once

#include <omp.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "activations.hpp"
#include "empirical_kernel.hpp"  // KernelKind, parse_kernel_kind
#include "types.hpp"

namespace mfntk {

// ------------------------------------------------------------------------------------------
// Gauss-Hermite rule for the standard normal law: E[g(Z)] ~= sum_i w_i g(z_i), exact for
// polynomials of degree <= 2m - 1. Golub-Welsch (eigenvalues of the Jacobi matrix of the
// probabilists' Hermite polynomials), then one Newton step per node on the normalised
// polynomial psi_m = He_m / sqrt(m!) and weights w_i = 1 / (m psi_{m-1}(z_i)^2), which are
// accurate to rounding even where Golub-Welsch weights lose relative precision.
// ------------------------------------------------------------------------------------------
struct HermiteRule {
  std::vector<double> z, w;
  int order() const { return static_cast<int>(z.size()); }
};

namespace detail {
// psi_{m-1}(x) and psi_m(x) by the three-term recurrence psi_{k+1} = (x psi_k - sqrt(k) psi_{k-1}) / sqrt(k+1).
inline void hermite_psi(int m, double x, double& pm1, double& pm) {
  double prev = 0.0, cur = 1.0;  // psi_{-1}, psi_0
  for (int k = 0; k < m; ++k) {
    const double next = (x * cur - std::sqrt(static_cast<double>(k)) * prev) / std::sqrt(static_cast<double>(k + 1));
    prev = cur;
    cur = next;
  }
  pm1 = prev;
  pm = cur;
}
}  // namespace detail

inline HermiteRule hermite_rule(int m) {
  if (m < 1 || m > 512) throw std::invalid_argument("quad_order: must be in [1, 512], got " + std::to_string(m));
  HermiteRule r;
  r.z.resize(m);
  r.w.resize(m);
  if (m == 1) {
    r.z[0] = 0.0;
    r.w[0] = 1.0;
    return r;
  }
  Eigen::VectorXd diag = Eigen::VectorXd::Zero(m), sub(m - 1);
  for (int k = 1; k < m; ++k) sub[k - 1] = std::sqrt(static_cast<double>(k));
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
  es.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
  for (int i = 0; i < m; ++i) {
    double x = es.eigenvalues()[i], pm1, pm;
    for (int it = 0; it < 2; ++it) {  // Newton on psi_m, psi_m' = sqrt(m) psi_{m-1}
      detail::hermite_psi(m, x, pm1, pm);
      x -= pm / (std::sqrt(static_cast<double>(m)) * pm1);
    }
    detail::hermite_psi(m, x, pm1, pm);
    r.z[i] = x;
    r.w[i] = 1.0 / (m * pm1 * pm1);
  }
  // Symmetrise: nodes come in pairs +-z with equal weights (the rule of an even law).
  for (int i = 0; i < m / 2; ++i) {
    const int j = m - 1 - i;
    const double z = 0.5 * (r.z[j] - r.z[i]), w = 0.5 * (r.w[i] + r.w[j]);
    r.z[i] = -z;
    r.z[j] = z;
    r.w[i] = r.w[j] = w;
  }
  if (m % 2) r.z[m / 2] = 0.0;
  double total = 0.0;
  for (double w : r.w) total += w;
  for (double& w : r.w) w /= total;  // the rule integrates 1 exactly
  return r;
}

// ------------------------------------------------------------------------------------------
// Closed-form Gaussian expectations, one specialisation per activation policy that has them.
//   ff(q1, q2, c) = E[sigma(u) sigma(v)],  dd(q1, q2, c) = E[sigma'(u) sigma'(v)]
// ------------------------------------------------------------------------------------------
template <class Act> struct GaussianMoments {
  static constexpr bool closed_form = false;
};

// relu: arc-cosine kernels of orders 1 and 0 (Cho & Saul 2009, eq. 6-7), with
// theta = arccos(c / sqrt(q1 q2)):
//   E[relu(u) relu(v)] = sqrt(q1 q2) / (2 pi) (sin theta + (pi - theta) cos theta)
//   E[1{u>0} 1{v>0}]   = (pi - theta) / (2 pi)
// A degenerate u = 0 (q1 = 0) gives 0 for both, as sigma(0) = sigma'(0) = 0 in the core.
template <> struct GaussianMoments<Relu> {
  static constexpr bool closed_form = true;
  static double theta(double q1, double q2, double c, double& s) {
    s = std::sqrt(q1 * q2);
    const double rho = std::clamp(c / s, -1.0, 1.0);
    return std::acos(rho);
  }
  static double ff(const Relu&, double q1, double q2, double c) {
    if (q1 <= 0.0 || q2 <= 0.0) return 0.0;
    double s;
    const double t = theta(q1, q2, c, s);
    return s * (std::sin(t) + (M_PI - t) * std::cos(t)) / (2.0 * M_PI);
  }
  static double dd(const Relu&, double q1, double q2, double c) {
    if (q1 <= 0.0 || q2 <= 0.0) return 0.0;
    double s;
    return (M_PI - theta(q1, q2, c, s)) / (2.0 * M_PI);
  }
};

// erf: Williams (1997), eq. 11:  E[erf(u) erf(v)] = (2/pi) arcsin(2c / sqrt((1 + 2 q1)(1 + 2 q2))).
// sigma' = (2/sqrt(pi)) exp(-u^2), so E[sigma' sigma'] = (4/pi) E[exp(-u^2 - v^2)]
//        = (4/pi) det(I + 2 Sigma)^(-1/2) = (4/pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 c^2).
template <> struct GaussianMoments<Erf> {
  static constexpr bool closed_form = true;
  static double ff(const Erf&, double q1, double q2, double c) {
    const double r = std::clamp(2.0 * c / std::sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)), -1.0, 1.0);
    return (2.0 / M_PI) * std::asin(r);
  }
  static double dd(const Erf&, double q1, double q2, double c) {
    const double det = std::max((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2) - 4.0 * c * c, 1.0);  // >= 1 + 2(q1 + q2)
    return (4.0 / M_PI) / std::sqrt(det);
  }
};

// quadratic u^2 + c0 (Isserlis): E[(u^2 + c0)(v^2 + c0)] = q1 q2 + 2 c^2 + c0 (q1 + q2) + c0^2;  E[2u 2v] = 4c.
template <> struct GaussianMoments<Quadratic> {
  static constexpr bool closed_form = true;
  static double ff(const Quadratic& a, double q1, double q2, double c) {
    return q1 * q2 + 2.0 * c * c + a.c0 * (q1 + q2) + a.c0 * a.c0;
  }
  static double dd(const Quadratic&, double, double, double c) { return 4.0 * c; }
};

// identity: E[u v] = c;  E[1 * 1] = 1.
template <> struct GaussianMoments<Identity> {
  static constexpr bool closed_form = true;
  static double ff(const Identity&, double, double, double c) { return c; }
  static double dd(const Identity&, double, double, double) { return 1.0; }
};

// The closed forms as an evaluator (same interface as HermiteMoments).
template <class Act> struct ClosedMoments {
  Act act;
  void operator()(double q1, double q2, double c, bool want_f, bool want_d, double& ef, double& ed) const {
    ef = want_f ? GaussianMoments<Act>::ff(act, q1, q2, c) : 0.0;
    ed = want_d ? GaussianMoments<Act>::dd(act, q1, q2, c) : 0.0;
  }
};

// Tensor Gauss-Hermite rule on the bivariate Gaussian: with s1 = sqrt(q1), s2 = sqrt(q2),
// rho = c / (s1 s2) and rho' = sqrt(1 - rho^2), (u, v) = (s1 z1, s2 (rho z1 + rho' z2)) for
// independent standard normals (z1, z2), so
//   E[g(u) h(v)] ~= sum_a sum_b w_a w_b g(s1 z_a) h(s2 (rho z_a + rho' z_b)).
// m^2 evaluations of sigma and sigma' per pair (m when rho' = 0). Exact for polynomial
// activations of degree <= m - 1 in each variable; for analytic sigma the error decays like
// exp(-2 tau sqrt(2m)), tau the distance from the real axis of the nearest singularity of
// z -> sigma(s z) (tanh, sigmoid: tau = pi / (2 s), pi / s); for a kink (relu) only like m^(-3/2).
template <class Act> struct HermiteMoments {
  Act act;
  const HermiteRule* rule;
  void operator()(double q1, double q2, double c, bool want_f, bool want_d, double& ef, double& ed) const {
    const int m = rule->order();
    const double* z = rule->z.data();
    const double* w = rule->w.data();
    const double s1 = std::sqrt(std::max(q1, 0.0)), s2 = std::sqrt(std::max(q2, 0.0));
    double rho = (s1 > 0.0 && s2 > 0.0) ? std::clamp(c / (s1 * s2), -1.0, 1.0) : 0.0;
    const double rhop = std::sqrt(std::max((1.0 - rho) * (1.0 + rho), 0.0));
    ef = 0.0;
    ed = 0.0;
    for (int a = 0; a < m; ++a) {
      double fu, du;
      act.f_df(s1 * z[a], fu, du);
      if (!(want_f && fu != 0.0) && !(want_d && du != 0.0)) continue;
      const double base = s2 * rho * z[a];
      double inner_f = 0.0, inner_d = 0.0;
      if (rhop == 0.0) {
        act.f_df(base, inner_f, inner_d);
      } else {
        const double sp = s2 * rhop;
        for (int b = 0; b < m; ++b) {
          double fv, dv;
          act.f_df(base + sp * z[b], fv, dv);
          inner_f += w[b] * fv;
          inner_d += w[b] * dv;
        }
      }
      ef += w[a] * fu * inner_f;
      ed += w[a] * du * inner_d;
    }
    if (!want_f) ef = 0.0;
    if (!want_d) ed = 0.0;
  }
};

struct AnalyticParams {
  KernelKind kind = KernelKind::ntk;
  double w_std = 1.0, a_std = 1.0, b_std = 0.0;
  bool bias = false;
};

namespace detail {

template <class T> Vec<double> input_variances(const T* X, Index n, Index d, const AnalyticParams& p) {
  const double w2 = p.w_std * p.w_std, b2 = p.b_std * p.b_std;
  Vec<double> q(n);
  for (Index i = 0; i < n; ++i) {
    double s = 0.0;
    for (Index k = 0; k < d; ++k) s += double(X[i * d + k]) * double(X[i * d + k]);
    q[i] = w2 * s + b2;
  }
  return q;
}

// The kernel value from the Gram entry g = <x, x'> and the variances.
template <class Moments>
inline double kernel_entry(const Moments& mom, const AnalyticParams& p, double q1, double q2, double g) {
  const bool rf = p.kind != KernelKind::nt, nt = p.kind != KernelKind::rf;
  const double c = p.w_std * p.w_std * g + p.b_std * p.b_std;
  double ef, ed;
  mom(q1, q2, c, rf, nt, ef, ed);
  double k = rf ? ef : 0.0;
  if (nt) k += p.a_std * p.a_std * (g + (p.bias ? 1.0 : 0.0)) * ed;
  return k;
}

}  // namespace detail

// K (n1, n2), row-major. X2 == nullptr means X2 = X1 (only the upper triangle is evaluated,
// then mirrored). `mom` is a ClosedMoments or HermiteMoments evaluator.
template <class T, class Moments>
void analytic_gram(const Moments& mom, const AnalyticParams& p, const T* X1, Index n1, const T* X2, Index n2,
                   Index d, T* K, int threads, Index row_tile = 64) {
  const bool sym = X2 == nullptr;
  if (sym) { X2 = X1; n2 = n1; }
  const Vec<double> q1 = detail::input_variances(X1, n1, d, p);
  const Vec<double> q2 = sym ? q1 : detail::input_variances(X2, n2, d, p);
  MapMat<T> Kout(K, n1, n2);
  CMapMat<T> A(X1, n1, d), B(X2, n2, d);
  const Index tiles = num_tiles(n1, row_tile);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n1 - i0);
    const Index c0 = sym ? i0 : 0, nc = n2 - c0;
    // The Gram panel, straight into the output.
    Kout.block(i0, c0, ni, nc).noalias() = A.middleRows(i0, ni) * B.middleRows(c0, nc).transpose();
    for (Index r = i0; r < i0 + ni; ++r) {
      T* row = K + r * n2;
      for (Index col = sym ? r : 0; col < n2; ++col)
        row[col] = static_cast<T>(detail::kernel_entry(mom, p, q1[r], q2[col], double(row[col])));
    }
  }
  if (sym) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
    for (Index i = 1; i < n1; ++i)
      for (Index c = 0; c < i; ++c) K[i * n2 + c] = K[c * n2 + i];
  }
}

// diag K(x_i, x_i), shape (n,).
template <class T, class Moments>
void analytic_diag(const Moments& mom, const AnalyticParams& p, const T* X, Index n, Index d, T* out, int threads) {
  const Vec<double> q = detail::input_variances(X, n, d, p);
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
  for (Index i = 0; i < n; ++i) {
    double g = 0.0;
    for (Index k = 0; k < d; ++k) g += double(X[i * d + k]) * double(X[i * d + k]);
    out[i] = static_cast<T>(detail::kernel_entry(mom, p, q[i], q[i], g));
  }
}

enum class MomentMethod { automatic, closed, quadrature };

inline MomentMethod parse_moment_method(const std::string& name) {
  if (name == "auto") return MomentMethod::automatic;
  if (name == "closed") return MomentMethod::closed;
  if (name == "quadrature") return MomentMethod::quadrature;
  throw std::invalid_argument("method: unknown value '" + name + "'; expected 'auto', 'closed' or 'quadrature'");
}

// Whether the named activation has closed-form moments.
inline bool has_closed_form(ActivationId id) {
  return with_activation(id, 0.0, [](auto act) { return GaussianMoments<decltype(act)>::closed_form; });
}

// Calls fn(moments) with the evaluator chosen by `method`: the closed form (auto, when one
// exists; closed) or the Gauss-Hermite rule of order quad_order (quadrature; auto otherwise).
template <class Fn>
void with_moments(ActivationId id, double c0, MomentMethod method, const HermiteRule& rule, Fn&& fn) {
  with_activation(id, c0, [&](auto act) {
    using Act = decltype(act);
    if constexpr (GaussianMoments<Act>::closed_form) {
      if (method != MomentMethod::quadrature) {
        fn(ClosedMoments<Act>{act});
        return;
      }
    } else {
      if (method == MomentMethod::closed)
        throw std::invalid_argument("method: 'closed' is not available for this activation (no closed form); "
                                    "use 'auto' or 'quadrature'");
    }
    fn(HermiteMoments<Act>{act, &rule});
  });
}

}  // namespace mfntk
