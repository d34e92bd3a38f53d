// Infinite-width (analytic) kernels of the two-layer network (SPEC 5).
//
// For w ~ N(0, w_std^2 I), b ~ N(0, b_std^2), E|a|^2 = a_std^2, the pre-activations at x and x'
// are a centred Gaussian pair (u, v) with standard deviations s1, s2 and correlation rho:
//   s1^2 = w_std^2 |x|^2 + b_std^2,  s2^2 = w_std^2 |x'|^2 + b_std^2,
//   rho  = (w_std^2 <x, x'> + b_std^2) / (s1 s2),
// and
//   K_rf  = E[sigma(u) sigma(v)]                                     ("rf")
//   K_nt  = a_std^2 (<x, x'> + [bias]) E[sigma'(u) sigma'(v)]         ("nt")
//   K_ntk = K_rf + K_nt                                               ("ntk")
//
// Scaled form. Nothing is computed through s1^2 s2^2 or |x|^2 |x'|^2: every point keeps |x|
// (a scaled norm), s and its unit direction, rho is the Gram matrix of the unit augmented
// vectors (w x, b) / s, and 1 - rho, 1 + rho come from |a - a'|^2 / 2, |a + a'|^2 / 2 for nearly
// parallel pairs (the arc-cosine kernels have an infinite slope at rho = +-1, where an O(eps)
// error of rho would cost O(sqrt(eps))). So no entry under- or overflows unless its value does,
// identical points get rho = 1 exactly, and the symmetric, cross and diagonal paths evaluate one
// formula on the same numbers: K(X, X) equals K(X) to rounding and diag K is its diagonal.
//
// GaussianMoments<Act> gives E[sigma sigma] and E[sigma' sigma'] in closed form where one exists
// (Relu, Erf, Quadratic, Identity). Every activation can instead use quadrature:
//
// 1. Mehler series. With (z1, z2) standard normals of correlation rho,
//      E[g(s1 z1) g(s2 z2)] = sum_k rho^k g_k(s1) g_k(s2),  g_k(s) = E[g(s Z) He_k(Z)] / sqrt(k!)
//    (Mehler's formula). The coefficients of every point come from one composite Gauss-Legendre
//    rule in z on [-13, 13] (panels narrow enough for the oscillation of He_k, geometrically
//    refined towards z = 0 down to the scale 1 / s of g(s z), with a breakpoint at 0 for a kink),
//    so they are accurate to rounding for every s (a Gauss-Hermite rule is not: its nodes near 0
//    are ~pi / sqrt(M) apart and miss the transition of tanh(s z) once s >~ 5). With K terms and
//    T_i = E[g(s_i Z)^2] - sum_{k<K} g_k(s_i)^2 (Parseval), Cauchy-Schwarz bounds the truncation
//    error of an entry by |rho|^K sqrt(T_i T_j): relative to sqrt(E_i E_j), |rho|^K t_i t_j with
//    t_i = sqrt(T_i / E_i). This is computed for every entry.
// 2. Where that bound exceeds the tolerance (large variances, |rho| near 1: the series needs
//    ~s^2 terms there) and sigma saturates (tanh, sigmoid, softplus, erf), the entry is computed
//    directly: g = G + e with G(t) = A + B erf(kappa t) + C S_kappa(t) (S_kappa the primitive of
//    (1 + erf(kappa t)) / 2, a smooth relu) matching g at +-infinity, and e a smooth remainder
//    that decays exponentially. E[G(u) G(v)] and E[G(u) | v] are in closed form (Williams'
//    arcsin kernel and its primitives, below), so that
//      E[g(u) g(v)] = E[G(u) G(v)] + E[G(u) e(v)] + E[e(u) (G(v) + e(v))]
//    leaves one-dimensional integrals of the localised e against closed-form conditional
//    expectations (graded Gauss-Legendre) and one nested integral of e against the conditional
//    law of v given u (trapezoidal rules, spectrally accurate for these analytic integrands).
//    An identical pair (rho = 1, s1 = s2) is E[g(u)^2] of the coefficient rule.
// The relative error bound of every entry (series bound, or the direct rules' accuracy) is
// tracked, and the largest is returned so that a caller warns when it exceeds the tolerance.
//
// References: Cho & Saul (2009), arc-cosine kernels (their eq. 6 with J_0, J_1 of eq. 7);
// Williams (1997), the arcsin kernel of erf (his eq. 11); Jacot, Gabriel & Hongler (2018), NTK;
// Mehler's formula, e.g. DLMF 18.18.28 (physicists' Hermite polynomials); Price (1958) for
// d/dc E[f(u) h(v)] = E[f'(u) h'(v)] (used to derive the closed forms of the S_kappa terms);
// Trefethen & Weideman, SIAM Review 56 (2014) on the trapezoidal rule for analytic integrands.
#pragma once

#include <omp.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "empirical_kernel.hpp"  // KernelKind, parse_kernel_kind
#include "fast_erf.hpp"          // MFNTK_SIMD8
#include "types.hpp"

namespace mfntk {

// ------------------------------------------------------------------------------------------
// Gauss-Hermite rule for the standard normal law: E[g(Z)] ~= sum_a w_a g(z_a), exact for
// polynomials of degree <= 2M - 1. Golub-Welsch (eigenvalues of the Jacobi matrix of the
// probabilists' Hermite polynomials), then Newton steps on psi_M = He_M / sqrt(M!) and the
// weights w_a = 1 / (M psi_{M-1}(z_a)^2), accurate to rounding even for the smallest weights.
// Exported as _core.hermite_rule; the kernels compute their Hermite coefficients with the
// composite rule of coefficient_rule() below, accurate for every variance.
// ------------------------------------------------------------------------------------------
struct HermiteRule {
  std::vector<double> z, w;
  int order() const { return static_cast<int>(z.size()); }
};

constexpr int kMaxHermiteOrder = 2048;  // also the largest quad_order

namespace detail {
// psi_{m-1}(x) and psi_m(x) by psi_{k+1} = (x psi_k - sqrt(k) psi_{k-1}) / sqrt(k+1), returned as
// (pm1, pm) * exp(log_scale): both are rescaled whenever they grow large, so that no order overflows.
inline void hermite_psi(int m, double x, double& pm1, double& pm, double& log_scale) {
  double prev = 0.0, cur = 1.0;  // psi_{-1}, psi_0
  log_scale = 0.0;
  for (int k = 0; k < m; ++k) {
    const double next = (x * cur - std::sqrt(static_cast<double>(k)) * prev) / std::sqrt(static_cast<double>(k + 1));
    prev = cur;
    cur = next;
    if (std::abs(cur) > 1e150) {
      prev *= 1e-150;
      cur *= 1e-150;
      log_scale += 150.0 * std::log(10.0);
    }
  }
  pm1 = prev;
  pm = cur;
}
}  // namespace detail

inline HermiteRule hermite_rule(int m) {
  if (m < 1 || m > kMaxHermiteOrder)
    throw std::invalid_argument("quad_order: must be in [1, " + std::to_string(kMaxHermiteOrder) + "], got " +
                                std::to_string(m));
  HermiteRule r;
  r.z.assign(m, 0.0);
  r.w.assign(m, 1.0);
  if (m == 1) return r;
  Eigen::VectorXd diag = Eigen::VectorXd::Zero(m), sub(m - 1);
  for (int k = 1; k < m; ++k) sub[k - 1] = std::sqrt(static_cast<double>(k));
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
  es.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
  for (int i = 0; i < m; ++i) {
    double x = es.eigenvalues()[i], pm1, pm, ls;
    for (int it = 0; it < 2; ++it) {  // Newton on psi_m, psi_m' = sqrt(m) psi_{m-1}
      detail::hermite_psi(m, x, pm1, pm, ls);
      x -= pm / (std::sqrt(static_cast<double>(m)) * pm1);
    }
    detail::hermite_psi(m, x, pm1, pm, ls);
    r.z[i] = x;
    // w = 1 / (m psi_{m-1}^2), psi_{m-1} = pm1 e^ls; underflows to 0 only below the smallest double.
    r.w[i] = std::exp(-2.0 * (std::log(std::abs(pm1)) + ls)) / m;
  }
  // Nodes come in pairs +-z with equal weights (the rule of an even law): make that exact.
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


namespace detail {
constexpr double kSqrtPi = 1.7724538509055160273;
constexpr double kSqrt2 = 1.4142135623730950488;
constexpr double kSqrt2Pi = 2.5066282746310005024;

inline double normal_pdf(double x) { return std::exp(-0.5 * x * x) / kSqrt2Pi; }

// 16-point Gauss-Legendre rule on [-1, 1] (Newton on P_16 from Tricomi's initial guesses).
constexpr int kGL = 16;
struct GaussLegendre {
  std::array<double, kGL> x, w;
};
inline const GaussLegendre& gauss_legendre() {
  static const GaussLegendre rule = [] {
    GaussLegendre r;
    for (int i = 0; i < kGL; ++i) {
      double x = std::cos(M_PI * (i + 0.75) / (kGL + 0.5)), p0 = 1.0, p1 = x, dp = 1.0;
      for (int it = 0; it < 100; ++it) {
        p0 = 1.0;
        p1 = x;
        for (int k = 2; k <= kGL; ++k) {
          const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = kGL * (x * p1 - p0) / (x * x - 1.0);
        const double dx = p1 / dp;
        x -= dx;
        if (std::abs(dx) <= 1e-17) break;
      }
      r.x[i] = x;
      r.w[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    return r;
  }();
  return rule;
}

// Calls fn(a, b) for the panels of [0, L]: [0, w0], [w0, 2 w0], [2 w0, 4 w0], ... (each as wide
// as its distance to 0: geometric grading towards a feature at 0) until the width reaches
// `wide`, then panels of width `wide`; the last one ends at L.
template <class Fn> void graded_panels(double L, double w0, double wide, Fn&& fn) {
  if (!(L > 0.0)) return;
  w0 = std::min(w0, wide);
  double a = 0.0;
  while (a < L) {
    const double width = a > 0.0 ? std::min(a, wide) : w0;
    const double b = (L - a) < 1.5 * width ? L : a + width;  // no sliver at the end
    fn(a, b);
    a = b;
  }
}

// Integral over [-L, L] of f(t) by graded 16-point Gauss-Legendre panels (breakpoint at 0).
template <class F> double graded_integral(double L, double w0, double wide, F&& f) {
  const GaussLegendre& gl = gauss_legendre();
  double acc = 0.0;
  graded_panels(L, w0, wide, [&](double a, double b) {
    const double mid = 0.5 * (a + b), half = 0.5 * (b - a);
    double part = 0.0;
    for (int q = 0; q < kGL; ++q) {
      const double t = mid + half * gl.x[q];
      part += gl.w[q] * (f(t) + f(-t));
    }
    acc += half * part;
  });
  return acc;
}
}  // namespace detail

// ------------------------------------------------------------------------------------------
// Closed-form Gaussian expectations, one specialisation per activation policy that has them,
// in terms of the standard deviations s1, s2 and the correlation rho of (u, v), with
// om = 1 - rho and op = 1 + rho given separately (accurate near rho = +-1):
//   ff = E[sigma(u) sigma(v)],  dd = E[sigma'(u) sigma'(v)]
// ------------------------------------------------------------------------------------------
template <class Act> struct GaussianMoments {
  static constexpr bool closed_form = false;
};

namespace detail {
// atan2(y, x) for y >= 0 and y^2 + x^2 = 1 (up to rounding), branch-free so that a loop of it
// vectorises: Cephes' atan (S. L. Moshier; a (4, 5) rational on [0, 0.66], and atan(t) = pi/4 +
// atan((t - 1) / (t + 1)) above; relative error < 2e-16) of t = min(y, |x|) / max(y, |x|), then
// pi/2 - atan(t) when y > |x| and pi - that when x < 0, with the rounding of pi/2 and pi in the
// last terms. The ratio and the reduced argument share one division.
inline double atan2_upper(double y, double x) {
  constexpr double kPiOver2Lo = 6.123233995736765886130e-17;  // pi/2 - double(pi/2)
  const double ax = std::fabs(x);
  const bool swap = y > ax;
  const double num = swap ? ax : y, den = swap ? y : ax;  // den >= 1/sqrt(2)
  const bool big = num > 0.66 * den;
  const double u = (big ? num - den : num) / (big ? num + den : den);
  const double z = u * u;
  const double p = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z -
                     7.500855792314704667340e1) * z - 1.228866684490136173410e2) * z - 6.485021904942025371773e1;
  const double q = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z +
                     4.328810604912902668951e2) * z + 4.853903996359136964868e2) * z + 1.945506571482613964425e2;
  const double r = u + u * (z * p / q);
  const double t = big ? M_PI_4 + (r + 0.5 * kPiOver2Lo) : r;          // atan(num / den)
  const double a = swap ? M_PI_2 - (t - kPiOver2Lo) : t;             // atan2(y, |x|)
  return x < 0.0 ? M_PI - (a - 2.0 * kPiOver2Lo) : a;
}
}  // namespace detail

// relu: arc-cosine kernels of orders 1 and 0 (Cho & Saul 2009, eq. 6-7), theta = arccos rho:
//   E[relu(u) relu(v)] = s1 s2 (sin theta + (pi - theta) cos theta) / (2 pi)
//   E[1{u>0} 1{v>0}]   = (pi - theta) / (2 pi)
// with sin theta = sqrt((1 - rho)(1 + rho)) and pi - theta = atan2(sin theta, -rho): accurate at
// both ends (unlike acos, or pi minus theta near rho = -1). A degenerate u = 0 (s1 = 0) gives 0
// for both, as sigma(0) = sigma'(0) = 0. The closed-form evaluator has a vectorised row loop.
template <> struct GaussianMoments<Relu> {
  static constexpr bool closed_form = true;
  static double ff(const Relu&, double s1, double s2, double rho, double om, double op) {
    if (!(s1 > 0.0) || !(s2 > 0.0)) return 0.0;
    const double sn = std::sqrt(om * op), psi = detail::atan2_upper(sn, -rho);
    return s1 * s2 * ((sn + psi * rho) / (2.0 * M_PI));
  }
  static double dd(const Relu&, double s1, double s2, double rho, double om, double op) {
    if (!(s1 > 0.0) || !(s2 > 0.0)) return 0.0;
    return detail::atan2_upper(std::sqrt(om * op), -rho) / (2.0 * M_PI);
  }
};

namespace detail {
// The arcsin kernel of erf(kappa .) (Williams 1997, eq. 11) in scaled form. With
// h_i = sqrt(1 + 2 kappa^2 s_i^2) and r_i = sqrt(2) kappa s_i / h_i in [0, 1),
//   E[erf(kappa u) erf(kappa v)] = (2/pi) arcsin(x),  x = rho r1 r2,
// and 1 - x = (1 - r1 r2) + r1 r2 (1 - rho), 1 + x = (1 - r1 r2) + r1 r2 (1 + rho), with
// 1 - r1 r2 = 1 - ((1 + e1)(1 + e2))^(-1/2), e_i = 1 / (2 kappa^2 s_i^2), by expm1/log1p.
struct ArcsinTerms {
  double h1, h2, r1, r2, x, omx, opx;
  double asin_x() const { return std::atan2(x, std::sqrt(omx * opx)); }
  double sqrt_1mx2() const { return std::sqrt(omx * opx); }
};
inline double erf_hyp(double ks) { return ks > 1.0 ? ks * std::sqrt(2.0 + 1.0 / (ks * ks)) : std::sqrt(1.0 + 2.0 * ks * ks); }
inline ArcsinTerms arcsin_terms(double kappa, double s1, double s2, double rho, double om, double op) {
  ArcsinTerms a;
  const double k1 = kappa * s1, k2 = kappa * s2;
  a.h1 = erf_hyp(k1);
  a.h2 = erf_hyp(k2);
  a.r1 = kSqrt2 * k1 / a.h1;
  a.r2 = kSqrt2 * k2 / a.h2;
  const double e1 = 0.5 / (k1 * k1), e2 = 0.5 / (k2 * k2);  // inf for s = 0
  const double one_m_rr = -std::expm1(-0.5 * std::log1p(e1 + e2 + e1 * e2));
  const double rr = a.r1 * a.r2;
  a.x = rho * rr;
  a.omx = one_m_rr + rr * om;
  a.opx = one_m_rr + rr * op;
  return a;
}
}  // namespace detail

// erf: Williams (1997), eq. 11:  E[erf(u) erf(v)] = (2/pi) arcsin(2c / sqrt((1 + 2 q1)(1 + 2 q2))).
// sigma' = (2/sqrt(pi)) exp(-u^2), so E[sigma' sigma'] = (4/pi) E[exp(-u^2 - v^2)]
//        = (4/pi) det(I + 2 Sigma)^(-1/2) = (4/pi) / (h1 h2 sqrt(1 - x^2))   (x as above, kappa = 1).
template <> struct GaussianMoments<Erf> {
  static constexpr bool closed_form = true;
  static double ff(const Erf&, double s1, double s2, double rho, double om, double op) {
    return (2.0 / M_PI) * detail::arcsin_terms(1.0, s1, s2, rho, om, op).asin_x();
  }
  static double dd(const Erf&, double s1, double s2, double rho, double om, double op) {
    const auto a = detail::arcsin_terms(1.0, s1, s2, rho, om, op);
    return (4.0 / M_PI) / (a.h1 * a.h2 * a.sqrt_1mx2());
  }
};

// quadratic u^2 + c0 (Isserlis): E[(u^2 + c0)(v^2 + c0)] = q1 q2 + 2 c^2 + c0 (q1 + q2) + c0^2;  E[2u 2v] = 4c,
// with q_i = s_i^2 and c = s1 s2 rho.
template <> struct GaussianMoments<Quadratic> {
  static constexpr bool closed_form = true;
  static double ff(const Quadratic& a, double s1, double s2, double rho, double, double) {
    const double q1 = s1 * s1, q2 = s2 * s2, c = s1 * s2 * rho;
    return q1 * q2 + 2.0 * c * c + a.c0 * (q1 + q2) + a.c0 * a.c0;
  }
  static double dd(const Quadratic&, double s1, double s2, double rho, double, double) { return 4.0 * (s1 * s2 * rho); }
};

// identity: E[u v] = c;  E[1 * 1] = 1.
template <> struct GaussianMoments<Identity> {
  static constexpr bool closed_form = true;
  static double ff(const Identity&, double s1, double s2, double rho, double, double) { return s1 * s2 * rho; }
  static double dd(const Identity&, double, double, double, double, double) { return 1.0; }
};

// ------------------------------------------------------------------------------------------
// Saturating activations: g = G + e (see the header). G(t) = A + B erf(kappa t) + C S_kappa(t),
// S_kappa(t) = t (1 + erf(kappa t)) / 2 + exp(-kappa^2 t^2) / (2 kappa sqrt(pi)) (-> relu(t)).
// e = g - G is analytic in |Im t| < strip and |e(t)| < 2e-17 sup|g'| (or sup|g|) for |t| > reach.
// kappa is chosen so that G and g have the same slope at 0 (any kappa is exact; a good one makes
// e small). One split for sigma (f) and one for sigma' (d).
// ------------------------------------------------------------------------------------------
struct SplitPart {
  double A = 0.0, B = 0.0, C = 0.0, kappa = 1.0;
  double reach = 0.0;  // 0: e = 0
  double strip = 1.0;
};

namespace detail {
inline double s_kappa(double kappa, double t) {  // S_kappa(t), without cancellation for t > 0
  const double gauss = std::exp(-kappa * kappa * t * t) / (2.0 * kappa * kSqrtPi);
  return t > 0.0 ? t - 0.5 * t * std::erfc(kappa * t) + gauss : 0.5 * t * std::erfc(-kappa * t) + gauss;
}
// G(m + sigma Z) averaged over Z: the same family with kappa / sqrt(1 + 2 kappa^2 sigma^2)
// (E[erf(k (m + sigma Z))] = erf(k m / sqrt(1 + 2 k^2 sigma^2)), and S_kappa is its primitive).
inline double smoothed_g(const SplitPart& P, double m, double sigma) {
  const double k = sigma > 0.0 ? P.kappa / std::sqrt(1.0 + 2.0 * P.kappa * P.kappa * sigma * sigma) : P.kappa;
  double v = P.A;
  if (P.B != 0.0) v += P.B * std::erf(k * m);
  if (P.C != 0.0) v += P.C * s_kappa(k, m);
  return v;
}
// E[G(u) G(v)]: with the arcsin terms x, h_i, r_i of kappa,
//   E[erf erf] = (2/pi) asin x,  E[S_kappa(u)] = h1 / (2 kappa sqrt(pi)),
//   E[erf(kappa u) S_kappa(v)] = s2 rho r1 / sqrt(2 pi)            (d/dc of it is constant: Price),
//   E[S_kappa(u) S_kappa(v)] = s1 s2 rho / 4 + h1 h2 (x asin x + sqrt(1 - x^2)) / (4 pi kappa^2)
// (integrate E[F(u) F(v)] = 1/4 + asin(x) / (2 pi), F = S_kappa', over c = s1 s2 rho; the
// constant is E[S(u)] E[S(v)] at c = 0; as kappa -> infinity this is the arc-cosine kernel).
inline double split_closed(const SplitPart& P, double s1, double s2, double rho, double om, double op) {
  if (P.B == 0.0 && P.C == 0.0) return P.A * P.A;
  const auto a = arcsin_terms(P.kappa, s1, s2, rho, om, op);
  const double asn = a.asin_x(), k = P.kappa;
  double v = P.A * P.A;
  if (P.B != 0.0) v += P.B * P.B * (2.0 / M_PI) * asn;
  if (P.C != 0.0) {
    v += P.A * P.C * (a.h1 + a.h2) / (2.0 * k * kSqrtPi);
    v += P.C * P.C * (s1 * s2 * rho / 4.0 + a.h1 * a.h2 * ((a.x * asn + a.sqrt_1mx2()) / (4.0 * M_PI * k * k)));
  }
  if (P.B != 0.0 && P.C != 0.0) v += P.B * P.C * rho * (s2 * a.r1 + s1 * a.r2) / kSqrt2Pi;
  return v;
}

inline double tanh_minus_erf(double t) {  // tanh(t) - erf(sqrt(pi) t / 2) = erfc(.) - (1 - tanh) for t >= 0
  const double a = std::abs(t), v = std::erfc(0.5 * kSqrtPi * a) - 2.0 / (std::exp(2.0 * a) + 1.0);
  return t < 0.0 ? -v : v;
}
inline double sech2(double t) {
  const double e = std::exp(-2.0 * std::abs(t));
  return 4.0 * e / ((1.0 + e) * (1.0 + e));
}
inline double dsigmoid(double t) {
  const double e = std::exp(-std::abs(t));
  return e / ((1.0 + e) * (1.0 + e));
}
inline double softplus_minus_s(double t) {  // log(1 + e^t) - S_kappa(t), kappa = sqrt(pi)/4: an even function
  constexpr double k = 0.25 * kSqrtPi;
  const double a = std::abs(t);
  return std::log1p(std::exp(-a)) + 0.5 * a * std::erfc(k * a) - std::exp(-k * k * a * a) / (2.0 * k * kSqrtPi);
}
}  // namespace detail

template <class Act> struct SaturatingSplit {
  static constexpr bool available = false;
};
template <> struct SaturatingSplit<Tanh> {  // tanh = erf(sqrt(pi) t / 2) + e;  tanh' = sech^2 (G = 0)
  static constexpr bool available = true;
  static constexpr SplitPart f{0.0, 1.0, 0.0, 0.5 * detail::kSqrtPi, 20.0, 0.5 * M_PI};
  static constexpr SplitPart d{0.0, 0.0, 0.0, 1.0, 20.0, 0.5 * M_PI};
  static double ef(double t) { return detail::tanh_minus_erf(t); }
  static double ed(double t) { return detail::sech2(t); }
};
template <> struct SaturatingSplit<Sigmoid> {  // sigmoid(t) = (1 + tanh(t/2)) / 2
  static constexpr bool available = true;
  static constexpr SplitPart f{0.5, 0.5, 0.0, 0.25 * detail::kSqrtPi, 40.0, M_PI};
  static constexpr SplitPart d{0.0, 0.0, 0.0, 1.0, 40.0, M_PI};
  static double ef(double t) { return 0.5 * detail::tanh_minus_erf(0.5 * t); }
  static double ed(double t) { return detail::dsigmoid(t); }
};
template <> struct SaturatingSplit<Softplus> {  // softplus = S_kappa + e;  softplus' = sigmoid
  static constexpr bool available = true;
  static constexpr SplitPart f{0.0, 0.0, 1.0, 0.25 * detail::kSqrtPi, 40.0, M_PI};
  static constexpr SplitPart d = SaturatingSplit<Sigmoid>::f;
  static double ef(double t) { return detail::softplus_minus_s(t); }
  static double ed(double t) { return SaturatingSplit<Sigmoid>::ef(t); }
};
template <> struct SaturatingSplit<Erf> {  // erf itself (e = 0); erf' = (2/sqrt(pi)) exp(-t^2) (G = 0)
  static constexpr bool available = true;
  static constexpr SplitPart f{0.0, 1.0, 0.0, 1.0, 0.0, 1.0};
  static constexpr SplitPart d{0.0, 0.0, 0.0, 1.0, 6.5, 3.0};
  static double ef(double) { return 0.0; }
  static double ed(double t) { return (2.0 / detail::kSqrtPi) * std::exp(-t * t); }
};

// Relative accuracy of a directly integrated entry (the rules below; measured against adaptive
// quadrature over s in [1e-3, 1e4] and rho up to 1 with a margin of 10), and of E[g(s Z)^2]
// from the coefficient rule.
constexpr double kDirectAccuracy = 1e-13;
constexpr double kEnergyAccuracy = 1e-14;

// E[g(u) g(v)] for g = G + e (one SplitPart), u, v of standard deviations s1, s2 > 0 and
// correlation rho (om = 1 - rho, op = 1 + rho):
//   E[G(u) G(v)]                                   closed form (split_closed)
// + E[G(u) e(v)] = int e(t) p_v(t) E[G(u) | v = t] dt            graded Gauss-Legendre in t,
//       refined towards 0 where E[G(u) | v = t] = smoothed G at rho (s1/s2) t turns over
// + E[e(u) (G(v) + e(v))] = int e(t) p_u(t) (E[G(v) | u = t] + E[e(v) | u = t]) dt
//       trapezoidal rule in t (step <= h = 2 pi strip / 48: its error ~ (2 pi / h)^3 exp(-48) for
//       the double poles of sech^2 at the edge of the strip, < 1e-16), with
//       E[e(v) | u = t] = int e(t') N(t'; rho (s2/s1) t, (s2 beta)^2) dt', beta^2 = 1 - rho^2,
//       by the trapezoidal rule on the grid of e (step h) when s2 beta >= 2.5 h, else on a grid
//       of step 0.4 s2 beta around the conditional mean.
// u is the variable of the larger standard deviation, so that rho (s2/s1) has modulus <= 1.
struct RemainderGrid {  // e(k h) for |k| <= J
  double h = 1.0;
  Index J = 0;
  std::vector<double> e;
};
template <class E> RemainderGrid remainder_grid(const SplitPart& P, E e) {
  RemainderGrid g;
  if (!(P.reach > 0.0)) return g;
  g.h = 2.0 * M_PI * P.strip / 48.0;
  g.J = static_cast<Index>(std::floor(P.reach / g.h));
  g.e.resize(2 * g.J + 1);
  for (Index k = -g.J; k <= g.J; ++k) g.e[k + g.J] = e(k * g.h);
  return g;
}

template <class E>
double direct_moment(const SplitPart& P, E e, const RemainderGrid& grid, double s1, double s2, double rho, double om,
                     double op) {
  if (s1 < s2) std::swap(s1, s2);
  double v = detail::split_closed(P, s1, s2, rho, om, op);
  if (!(P.reach > 0.0) || !(s2 > 0.0)) return v;
  const double beta = std::sqrt(om * op), sig1 = s1 * beta, sig2 = s2 * beta;
  const double lam1 = rho * (s1 / s2), lam2 = rho * (s2 / s1);
  // E[G(u) e(v)]
  if (P.B != 0.0 || P.C != 0.0 || P.A != 0.0) {
    const double L = std::min(P.reach, 9.5 * s2), wide = std::min(P.strip, s2);
    double w0 = wide;
    if ((P.B != 0.0 || P.C != 0.0) && lam1 != 0.0) {
      const double kap = P.kappa / std::sqrt(1.0 + 2.0 * P.kappa * P.kappa * sig1 * sig1);
      w0 = std::min(wide, 1.0 / (kap * std::abs(lam1)));
    }
    w0 = std::max(w0, 1e-17 * L);
    v += detail::graded_integral(L, w0, wide, [&](double t) {
      return e(t) * (detail::normal_pdf(t / s2) / s2) * detail::smoothed_g(P, lam1 * t, sig1);
    });
  }
  // E[e(u) (G(v) + e(v))]
  const double h1 = std::min(grid.h, s1 / 2.5);
  const Index J1 = static_cast<Index>(std::floor(std::min(P.reach, 9.5 * s1) / h1));
  const bool broad = sig2 >= 2.5 * grid.h;
  double outer = 0.0;
  for (Index j = -J1; j <= J1; ++j) {
    const double t = j * h1, eu = e(t);
    if (eu == 0.0) continue;
    const double m = lam2 * t;
    double inner = detail::smoothed_g(P, m, sig2), ce = 0.0;
    if (broad) {  // on the grid of e: k h in [m - 9.5 sig2, m + 9.5 sig2]
      const Index lo = std::max(-grid.J, static_cast<Index>(std::ceil((m - 9.5 * sig2) / grid.h)));
      const Index hi = std::min(grid.J, static_cast<Index>(std::floor((m + 9.5 * sig2) / grid.h)));
      if (lo <= hi) {
        // g = exp(-x_k^2 / 2), x_k = (k h - m) / sig2, by its ratio recurrence, restarted every 8
        // steps (the recurrence's rounding grows like the square of its length)
        const double del = grid.h / sig2, q = std::exp(-del * del);
        double g = 0.0, r = 0.0;
        for (Index k = lo; k <= hi; ++k) {
          if ((k - lo) % 8 == 0) {
            const double x = (k * grid.h - m) / sig2;
            g = std::exp(-0.5 * x * x);
            r = std::exp(-x * del - 0.5 * del * del);
          }
          ce += grid.e[k + grid.J] * g;
          g *= r;
          r *= q;
        }
        ce *= del / detail::kSqrt2Pi;
      }
    } else if (sig2 > 0.0) {  // narrow: nodes m + 0.4 j sig2, |j| <= 24, weights 0.4 phi(0.4 j) (sum 1)
      constexpr int nj = 24;
      static const std::array<double, 2 * nj + 1> wts = [] {
        std::array<double, 2 * nj + 1> w{};
        double tot = 0.0;
        for (int i = -nj; i <= nj; ++i) tot += (w[i + nj] = std::exp(-0.5 * (0.4 * i) * (0.4 * i)));
        for (double& x : w) x /= tot;
        return w;
      }();
      for (int i = -nj; i <= nj; ++i) ce += wts[i + nj] * e(m + 0.4 * i * sig2);
    } else {
      ce = e(m);
    }
    inner += ce;
    outer += h1 * (detail::normal_pdf(t / s1) / s1) * eu * inner;
  }
  return v + outer;
}

// ------------------------------------------------------------------------------------------
// The points, in scaled form.
// ------------------------------------------------------------------------------------------
struct AnalyticParams {
  KernelKind kind = parse_kernel_kind("ntk");
  double w_std = 1.0, a_std = 1.0, b_std = 0.0;
  bool bias = false;
  bool want_f() const { return kind.second_layer; }
  bool want_d() const { return kind.first_layer; }
};

// Per point: |x| (a scaled norm: no under/overflow of |x|^2), the unit direction x / |x|,
// s = sqrt(w^2 |x|^2 + b^2) (hypot) and the unit augmented vector (w x, b) / s = (al u, be).
struct AnalyticPoints {
  Index n = 0, d = 0;
  RowMat<double> U;
  Vec<double> nrm, s, al, be;
};

template <class T> AnalyticPoints analytic_points(const T* X, Index n, Index d, const AnalyticParams& p) {
  AnalyticPoints P;
  P.n = n;
  P.d = d;
  P.U.resize(n, d);
  P.nrm.resize(n);
  P.s.resize(n);
  P.al.resize(n);
  P.be.resize(n);
  for (Index i = 0; i < n; ++i) {
    const T* x = X + i * d;
    double big = 0.0;
    for (Index k = 0; k < d; ++k) big = std::max(big, std::abs(double(x[k])));
    double nrm = 0.0;
    if (big > 0.0) {
      double ss = 0.0;
      for (Index k = 0; k < d; ++k) {
        const double y = double(x[k]) / big;
        ss += y * y;
      }
      const double r = std::sqrt(ss);
      nrm = big * r;
      for (Index k = 0; k < d; ++k) P.U(i, k) = (double(x[k]) / big) / r;
    } else {
      P.U.row(i).setZero();
    }
    const double wn = p.w_std * nrm, s = std::hypot(wn, p.b_std);
    P.nrm[i] = nrm;
    P.s[i] = s;
    P.al[i] = s > 0.0 ? wn / s : 0.0;
    P.be[i] = s > 0.0 ? p.b_std / s : 0.0;
  }
  return P;
}

namespace detail {
// rho, 1 - rho, 1 + rho and <x, x'> of point i of P1 and point j of P2 from gu = <u_i, u_j>.
// Near rho = +-1 (and <u, u'> = +-1), 1 -+ rho is |a_i -+ a_j|^2 / 2 of the unit augmented
// vectors, exact for identical points.
constexpr double kNearParallel = 1e-3;
struct PairGeometry {
  double rho, om, op, dot;
};
inline PairGeometry pair_geometry(const AnalyticPoints& P1, Index i, const AnalyticPoints& P2, Index j, double gu) {
  const double a1 = P1.al[i], a2 = P2.al[j], b1 = P1.be[i], b2 = P2.be[j];
  const double* u1 = &P1.U(i, 0);
  const double* u2 = &P2.U(j, 0);
  const Index d = P1.d;
  PairGeometry g;
  double rho = std::clamp(a1 * a2 * gu + b1 * b2, -1.0, 1.0);
  if (rho > 1.0 - kNearParallel || rho < -1.0 + kNearParallel) {
    const double sg = rho > 0.0 ? -1.0 : 1.0;  // |a1 u1 - a2 u2|^2 near +1, |a1 u1 + a2 u2|^2 near -1
    double dd = 0.0;
    for (Index k = 0; k < d; ++k) {
      const double t = a1 * u1[k] + sg * a2 * u2[k];
      dd += t * t;
    }
    const double tb = b1 + sg * b2;
    const double half = std::min(0.5 * (dd + tb * tb), 1.0);
    if (rho > 0.0) {
      g.om = half;
      g.rho = 1.0 - half;
      g.op = 1.0 + g.rho;
    } else {
      g.op = half;
      g.rho = half - 1.0;
      g.om = 1.0 - g.rho;
    }
  } else {
    g.rho = rho;
    g.om = 1.0 - rho;
    g.op = 1.0 + rho;
  }
  if (gu > 1.0 - kNearParallel || gu < -1.0 + kNearParallel) {
    const double sg = gu > 0.0 ? -1.0 : 1.0;
    double dd = 0.0;
    for (Index k = 0; k < d; ++k) {
      const double t = u1[k] + sg * u2[k];
      dd += t * t;
    }
    gu = gu > 0.0 ? 1.0 - 0.5 * dd : 0.5 * dd - 1.0;
  }
  g.dot = P1.nrm[i] * P2.nrm[j] * gu;
  return g;
}

// pair_geometry of point i of P1 and points c0, ..., c0 + m - 1 of P2: the common case in one
// vectorised loop (the same operations), then the entries near rho = +-1 or <u, u'> = +-1
// recomputed through pair_geometry.
inline void pair_geometry_row(const AnalyticPoints& P1, Index i, const AnalyticPoints& P2, Index c0, Index m,
                              const double* gu, PairGeometry* geo) {
  const double a1 = P1.al[i], b1 = P1.be[i], n1 = P1.nrm[i];
  const double* a2 = P2.al.data() + c0;
  const double* b2 = P2.be.data() + c0;
  const double* n2 = P2.nrm.data() + c0;
  MFNTK_SIMD8
  for (Index j = 0; j < m; ++j) {
    const double rho = std::clamp(a1 * a2[j] * gu[j] + b1 * b2[j], -1.0, 1.0);
    geo[j] = {rho, 1.0 - rho, 1.0 + rho, n1 * n2[j] * gu[j]};
  }
  for (Index j = 0; j < m; ++j)
    if (std::fabs(geo[j].rho) > 1.0 - kNearParallel || std::fabs(gu[j]) > 1.0 - kNearParallel)
      geo[j] = pair_geometry(P1, i, P2, c0 + j, gu[j]);
}

// Copies the upper triangle of the row-major (n, n) matrix K onto its lower triangle, tile by
// tile (each pair of 64 x 64 tiles stays in cache).
template <class T> void mirror_upper(T* K, Index n, int threads, Index bs = 64) {
  const Index nb = num_tiles(n, bs);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index bi = 0; bi < nb; ++bi)
    for (Index bj = 0; bj <= bi; ++bj)
      for (Index i = bi * bs; i < std::min(n, (bi + 1) * bs); ++i)
        for (Index c = bj * bs; c < std::min(i, (bj + 1) * bs); ++c) K[i * n + c] = K[c * n + i];
}
}  // namespace detail

// What the entries of a call met: the largest relative error bound of the rf and nt moments
// (relative to sqrt(E[g(u)^2] E[g(v)^2]), g = sigma resp. sigma') and how many entries were
// integrated directly.
struct EntryStats {
  double bound_f = 0.0, bound_d = 0.0;
  Index direct_f = 0, direct_d = 0;
  void merge(const EntryStats& o) {
    bound_f = std::max(bound_f, o.bound_f);
    bound_d = std::max(bound_d, o.bound_d);
    direct_f += o.direct_f;
    direct_d += o.direct_d;
  }
};

// One row segment: entries (r, c0 + j), j < m, from their geometry, into out (double).
struct RowSegment {
  Index r, c0, m;
  const detail::PairGeometry* geo;
  double* out;
};

// Closed forms.
template <class Act> struct ClosedEvaluator {
  Act act;
  const AnalyticPoints* P1;
  const AnalyticPoints* P2;
  void operator()(const AnalyticParams& p, const RowSegment& seg, EntryStats&) const {
    const bool rf = p.want_f(), nt = p.want_d();
    const double a2 = p.a_std * p.a_std, bias = p.bias ? 1.0 : 0.0, s1 = P1->s[seg.r];
    for (Index j = 0; j < seg.m; ++j) {
      const auto& g = seg.geo[j];
      const double s2 = P2->s[seg.c0 + j];
      double k = rf ? GaussianMoments<Act>::ff(act, s1, s2, g.rho, g.om, g.op) : 0.0;
      if (nt) k += a2 * (g.dot + bias) * GaussianMoments<Act>::dd(act, s1, s2, g.rho, g.om, g.op);
      seg.out[j] = k;
    }
  }
};

// relu's row as one vectorised loop (the same numbers as ff and dd above): sin theta and
// pi - theta once per entry for both terms.
template <> struct ClosedEvaluator<Relu> {
  Relu act;
  const AnalyticPoints* P1;
  const AnalyticPoints* P2;
  void operator()(const AnalyticParams& p, const RowSegment& seg, EntryStats&) const {
    const double rf = p.want_f() ? 1.0 : 0.0, nt = p.want_d() ? 1.0 : 0.0;
    const double a2 = p.a_std * p.a_std, bias = p.bias ? 1.0 : 0.0, s1 = P1->s[seg.r];
    const double* s2 = P2->s.data() + seg.c0;
    const detail::PairGeometry* geo = seg.geo;
    double* out = seg.out;
    MFNTK_SIMD8
    for (Index j = 0; j < seg.m; ++j) {
      const double rho = geo[j].rho, sn = std::sqrt(geo[j].om * geo[j].op);
      const double psi = detail::atan2_upper(sn, -rho);
      const double k = rf * (s1 * s2[j] * ((sn + psi * rho) / (2.0 * M_PI))) +
                       nt * (a2 * (geo[j].dot + bias) * (psi / (2.0 * M_PI)));
      out[j] = s1 > 0.0 && s2[j] > 0.0 ? k : 0.0;
    }
  }
};

// ------------------------------------------------------------------------------------------
// Hermite coefficients on the composite rule.
// ------------------------------------------------------------------------------------------
// E over N(0, 1) as sum_a w_a f(z_a) (w_a includes the density): 16-point Gauss-Legendre panels
// on [-13, 13] of width <= min(1, 6 / sqrt(K)) (He_k, k < K, oscillates with wavenumber
// <= sqrt(K): <= 3 radians per half panel), refined geometrically towards 0 down to
// min(width, 1 / s_max), with a breakpoint at 0. Beyond |z| = 13, |He_k(z)| phi(z) / sqrt(k!)
// <= exp(-z^2 / 4) is below 1e-18.
constexpr double kZReach = 13.0;
struct CoefficientRule {
  std::vector<double> z, w;
  RowMat<double> H;  // H(k, a) = sqrt(w_a) He_k(z_a) / sqrt(k!), k < K
  Index K = 0;
  Index nodes() const { return static_cast<Index>(z.size()); }
};

inline CoefficientRule coefficient_rule(Index K, double s_max) {
  CoefficientRule R;
  R.K = K;
  const double wide = std::min(1.0, 6.0 / std::sqrt(static_cast<double>(K)));
  const double w0 = s_max > 0.0 ? std::clamp(1.0 / s_max, 1e-18, wide) : wide;
  const auto& gl = detail::gauss_legendre();
  std::vector<double> zp, wp;
  detail::graded_panels(kZReach, w0, wide, [&](double a, double b) {
    const double mid = 0.5 * (a + b), half = 0.5 * (b - a);
    for (int q = 0; q < detail::kGL; ++q) {
      const double z = mid + half * gl.x[q];
      zp.push_back(z);
      wp.push_back(half * gl.w[q] * detail::normal_pdf(z));
    }
  });
  const Index np = static_cast<Index>(zp.size());
  for (Index a = np - 1; a >= 0; --a) {
    R.z.push_back(-zp[a]);
    R.w.push_back(wp[a]);
  }
  R.z.insert(R.z.end(), zp.begin(), zp.end());
  R.w.insert(R.w.end(), wp.begin(), wp.end());
  const Index m = R.nodes();
  R.H.resize(K, m);
  for (Index a = 0; a < m; ++a) {
    const double x = R.z[a];
    double prev = 0.0, cur = std::sqrt(R.w[a]);
    for (Index k = 0; k < K; ++k) {
      R.H(k, a) = cur;
      const double next = (x * cur - std::sqrt(static_cast<double>(k)) * prev) / std::sqrt(static_cast<double>(k + 1));
      prev = cur;
      cur = next;
    }
  }
  return R;
}

// Hermite coefficients of sigma(s_i Z) (F) and sigma'(s_i Z) (D) of every point, their energies
// E[sigma(s_i Z)^2] (EF), E[sigma'(s_i Z)^2] (ED), and after truncate(): the number of terms
// used and t_i = sqrt(tail_i / E_i).
struct HermiteSet {
  RowMat<double> F, D;
  Vec<double> EF, ED, tf, td;
};

template <class Act>
HermiteSet hermite_set(const Act& act, const Vec<double>& s, const CoefficientRule& R, bool want_f, bool want_d,
                       int threads, Index row_tile = 64) {
  const Index n = s.size(), m = R.nodes();
  HermiteSet C;
  if (want_f) { C.F.resize(n, R.K); C.EF.resize(n); }
  if (want_d) { C.D.resize(n, R.K); C.ED.resize(n); }
  const Index tiles = num_tiles(n, row_tile);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n - i0);
    RowMat<double> Gf(want_f ? ni : 0, m), Gd(want_d ? ni : 0, m);
    for (Index r = 0; r < ni; ++r) {
      const double si = s[i0 + r];
      for (Index a = 0; a < m; ++a) {
        double f, df;
        act.f_df(si * R.z[a], f, df);
        const double sw = std::sqrt(R.w[a]);
        if (want_f) Gf(r, a) = sw * f;
        if (want_d) Gd(r, a) = sw * df;
      }
    }
    if (want_f) {
      C.F.middleRows(i0, ni).noalias() = Gf * R.H.transpose();
      C.EF.segment(i0, ni) = Gf.rowwise().squaredNorm();
    }
    if (want_d) {
      C.D.middleRows(i0, ni).noalias() = Gd * R.H.transpose();
      C.ED.segment(i0, ni) = Gd.rowwise().squaredNorm();
    }
  }
  return C;
}

// The smallest number of terms K such that every row has tail(K) = E - sum_{k<K} c_k^2 <= tol E
// (at most C.cols()).
inline Index series_terms(const RowMat<double>& C, const Vec<double>& E, double tol) {
  Index terms = 1;
  for (Index i = 0; i < C.rows(); ++i) {
    const double e = E[i];
    if (!(e > 0.0)) continue;
    double partial = 0.0;
    Index k = 0;
    while (k < C.cols()) {
      partial += C(i, k) * C(i, k);
      ++k;
      if (e - partial <= tol * e) break;
    }
    terms = std::max(terms, k);
  }
  return terms;
}

// The smallest relative tail that can be certified: E_i - sum c_ik^2 is a difference of sums of
// ~2000 rounded terms, with coefficients accurate to ~1e-16 sqrt(E_i), so a computed tail below
// ~1e-14 E_i is rounding noise, not evidence of convergence. Without this floor a converged point
// (t_j computed as 0) would certify the series against an unconverged one at rho = 1, where the
// true error sqrt(T_i T_j) can exceed the tolerance.
constexpr double kTailFloor = 1e-14;

// t_i = sqrt(max(E_i - sum_{k<terms} c_ik^2, kTailFloor E_i) / E_i) (0 where E_i = 0).
inline Vec<double> relative_tails(const RowMat<double>& C, const Vec<double>& E, Index terms) {
  Vec<double> t(C.rows());
  for (Index i = 0; i < C.rows(); ++i) {
    const double e = E[i];
    t[i] = e > 0.0 ? std::sqrt(std::max(e - C.row(i).head(terms).squaredNorm(), kTailFloor * e) / e) : 0.0;
  }
  return t;
}

// The Mehler series with its per-entry bound; where the bound exceeds tol and `direct` is set
// (a saturating activation, automatic order), the entry is integrated directly instead.
template <class Act> struct SeriesEvaluator {
  using Split = SaturatingSplit<Act>;
  const AnalyticPoints* P1;
  const AnalyticPoints* P2;
  const HermiteSet* C1;
  const HermiteSet* C2;
  RowMat<double> F2T, D2T;  // the coefficients of set 2, transposed (terms, n2)
  Index kf = 0, kd = 0;
  double tol = 0.0;
  bool direct = false;
  RemainderGrid grid_f, grid_d;

  SeriesEvaluator(const AnalyticPoints* p1, const AnalyticPoints* p2, const HermiteSet* c1, const HermiteSet* c2,
                  Index kf_, Index kd_, double tol_, bool direct_, bool rf, bool nt)
      : P1(p1), P2(p2), C1(c1), C2(c2), kf(kf_), kd(kd_), tol(tol_), direct(direct_) {
    if (rf) F2T = C2->F.leftCols(kf).transpose();
    if (nt) D2T = C2->D.leftCols(kd).transpose();
    if constexpr (Split::available) {
      if (direct) {
        grid_f = remainder_grid(Split::f, [](double t) { return Split::ef(t); });
        grid_d = remainder_grid(Split::d, [](double t) { return Split::ed(t); });
      }
    } else {
      direct = false;
    }
  }

  // The moment of entry (r, c) from its series value; updates the bound and the count.
  double checked(bool is_f, double series, Index r, Index c, const detail::PairGeometry& g, double& bound,
                 Index& count) const {
    const Vec<double>& t1 = is_f ? C1->tf : C1->td;
    const Vec<double>& t2 = is_f ? C2->tf : C2->td;
    const Index K = is_f ? kf : kd;
    double b = t1[r] * t2[c];
    if (b > tol && std::abs(g.rho) < 1.0) b *= std::pow(std::abs(g.rho), static_cast<double>(K));
    const double s1 = P1->s[r], s2 = P2->s[c];
    if (b > tol && direct && s1 > 0.0 && s2 > 0.0) {
      if constexpr (Split::available) {
        ++count;
        if (g.rho == 1.0 && s1 == s2) {  // an identical pair: E[g(u)^2]
          bound = std::max(bound, kEnergyAccuracy);
          return is_f ? C1->EF[r] : C1->ED[r];
        }
        bound = std::max(bound, kDirectAccuracy);
        return is_f ? direct_moment(Split::f, [](double t) { return Split::ef(t); }, grid_f, s1, s2, g.rho, g.om, g.op)
                    : direct_moment(Split::d, [](double t) { return Split::ed(t); }, grid_d, s1, s2, g.rho, g.om, g.op);
      }
    }
    bound = std::max(bound, b);
    return series;
  }

  void operator()(const AnalyticParams& p, const RowSegment& seg, EntryStats& st) const {
    using Arr = Eigen::Array<double, Eigen::Dynamic, 1>;
    const bool rf = p.want_f(), nt = p.want_d();
    const double a2 = p.a_std * p.a_std, bias = p.bias ? 1.0 : 0.0;
    const Index m = seg.m, r = seg.r, cs = seg.c0;
    Arr rho(m), vf, vd, acc;
    for (Index j = 0; j < m; ++j) rho[j] = seg.geo[j].rho;
    if (rf) {  // Horner across the columns: independent chains the compiler vectorises
      acc.setZero(m);
      for (Index k = kf - 1; k >= 0; --k) acc = acc * rho + C1->F(r, k) * F2T.row(k).segment(cs, m).transpose().array();
      vf = acc;
    }
    if (nt) {
      acc.setZero(m);
      for (Index k = kd - 1; k >= 0; --k) acc = acc * rho + C1->D(r, k) * D2T.row(k).segment(cs, m).transpose().array();
      vd = acc;
    }
    for (Index j = 0; j < m; ++j) {
      const auto& g = seg.geo[j];
      double k = 0.0;
      if (rf) k = checked(true, vf[j], r, cs + j, g, st.bound_f, st.direct_f);
      if (nt) k += a2 * (g.dot + bias) * checked(false, vd[j], r, cs + j, g, st.bound_d, st.direct_d);
      seg.out[j] = k;
    }
  }
};

// ------------------------------------------------------------------------------------------
// Drivers.
// ------------------------------------------------------------------------------------------
// K (n1, n2), row-major; P2 == nullptr means the symmetric K(X1, X1) (upper triangle evaluated,
// then mirrored). <u_i, u_j> by row panels of a GEMM in double (whatever T), then the
// elementwise formula; the evaluator is called on row segments of at most `col_tile` entries.
template <class T, class Eval>
EntryStats analytic_gram(const Eval& ev, const AnalyticParams& p, const AnalyticPoints& P1, const AnalyticPoints* P2in,
                         T* K, int threads, Index row_tile = 64, Index col_tile = 1024) {
  const bool sym = P2in == nullptr;
  const AnalyticPoints& P2 = sym ? P1 : *P2in;
  const Index n1 = P1.n, n2 = P2.n;
  const Index tiles = num_tiles(n1, row_tile);
  std::vector<EntryStats> per_tile(tiles);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n1 - i0);
    RowMat<double> Gu;
    std::vector<detail::PairGeometry> geo(col_tile);
    std::vector<double> out(col_tile);
    EntryStats st;
    for (Index cb = sym ? i0 : 0; cb < n2; cb += col_tile) {
      const Index nc = std::min(col_tile, n2 - cb);
      Gu.noalias() = P1.U.middleRows(i0, ni) * P2.U.middleRows(cb, nc).transpose();
      for (Index r = i0; r < i0 + ni; ++r) {
        const Index cs = sym ? std::max(cb, r) : cb, m = cb + nc - cs;
        if (m <= 0) continue;
        detail::pair_geometry_row(P1, r, P2, cs, m, &Gu(r - i0, cs - cb), geo.data());
        ev(p, RowSegment{r, cs, m, geo.data(), out.data()}, st);
        T* row = K + r * n2 + cs;
        for (Index j = 0; j < m; ++j) row[j] = static_cast<T>(out[j]);
      }
    }
    per_tile[it] = st;
  }
  EntryStats total;
  for (const auto& st : per_tile) total.merge(st);
  if (sym) detail::mirror_upper(K, n1, threads);
  return total;
}

// diag K(x_i, x_i), shape (n,): the same geometry and evaluator as the diagonal of analytic_gram.
template <class T, class Eval>
EntryStats analytic_diag(const Eval& ev, const AnalyticParams& p, const AnalyticPoints& P, T* out, int threads,
                         Index tile = 256) {
  const Index n = P.n, tiles = num_tiles(n, tile);
  std::vector<EntryStats> per_tile(tiles);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    EntryStats st;
    for (Index i = it * tile; i < std::min(n, (it + 1) * tile); ++i) {
      const double gu = P.U.row(i).squaredNorm();
      const detail::PairGeometry geo = detail::pair_geometry(P, i, P, i, gu);
      double v;
      ev(p, RowSegment{i, i, 1, &geo, &v}, st);
      out[i] = static_cast<T>(v);
    }
    per_tile[it] = st;
  }
  EntryStats total;
  for (const auto& st : per_tile) total.merge(st);
  return total;
}

enum class MomentMethod { automatic, closed, quadrature };

inline MomentMethod parse_moment_method(std::string_view name) {
  constexpr std::array<const char*, 3> names = {"auto", "closed", "quadrature"};
  constexpr MomentMethod methods[] = {MomentMethod::automatic, MomentMethod::closed, MomentMethod::quadrature};
  for (std::size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return methods[i];
  unknown_name("method", name, names);
}

// What a call did: closed form or quadrature; for quadrature, the rule-equivalent order (twice
// the number of Hermite coefficients per point), the nodes of the coefficient rule, the number
// of Mehler terms for sigma and sigma', the largest relative error bounds of the entries, and
// how many entries were integrated directly.
struct AnalyticInfo {
  bool quadrature = false;
  int order = 0;
  Index nodes = 0;
  Index terms_f = 0, terms_d = 0;
  double bound_f = 0.0, bound_d = 0.0;
  Index direct_f = 0, direct_d = 0;
};

// The number of Hermite coefficients per point tried by the automatic order: 32, 64, ..., this.
constexpr Index kAutoHermiteTermsMax = 512;

// The points of a call and, for quadrature, the Hermite sets of the Mehler series: everything
// the entries of K(X1, X2) (cross) or K(X1, X1) share. The evaluators point into it.
struct AnalyticSetup {
  AnalyticPoints P1, P2;
  HermiteSet C1, C2;
  bool cross = false;
  AnalyticInfo info;
  const AnalyticPoints& second() const { return cross ? P2 : P1; }
  const HermiteSet& second_set() const { return cross ? C2 : C1; }
};

template <class T>
void analytic_setup_points(AnalyticSetup& S, const AnalyticParams& p, const T* X1, Index n1, const T* X2, Index n2,
                           Index d) {
  S.cross = X2 != nullptr;
  S.P1 = analytic_points(X1, n1, d, p);
  if (S.cross) S.P2 = analytic_points(X2, n2, d, p);
}

inline void record_entry_stats(AnalyticInfo& info, const EntryStats& st) {
  info.bound_f = std::max(info.bound_f, st.bound_f);
  info.bound_d = std::max(info.bound_d, st.bound_d);
  info.direct_f += st.direct_f;
  info.direct_d += st.direct_d;
}

// Chooses the method and calls fn(ev) with its evaluator: closed form when one exists and not
// `quadrature`; otherwise the Mehler series. quad_order > 0: (quad_order + 1) / 2 terms, series
// only (its bound reported); quad_order <= 0 (automatic): 32, 64, ..., kAutoHermiteTermsMax
// terms until every point's relative tail is <= quad_tol, and for a saturating activation direct
// integration of the entries whose series bound is still above quad_tol. The Hermite sets and
// S.info (without the entries' stats, which the caller adds) are stored in S; the evaluator
// points into S, which must outlive it.
template <class Fn>
void with_analytic_evaluator(AnalyticSetup& S, ActivationId id, double c0, MomentMethod method, int quad_order,
                             double quad_tol, const AnalyticParams& p, int threads, Fn&& fn) {
  S.info = AnalyticInfo{};
  with_activation(id, c0, [&](auto act) {
    using Act = decltype(act);
    if constexpr (GaussianMoments<Act>::closed_form) {
      if (method != MomentMethod::quadrature) {
        fn(ClosedEvaluator<Act>{act, &S.P1, &S.second()});
        return;
      }
    } else {
      if (method == MomentMethod::closed)
        throw std::invalid_argument("method: 'closed' is not available for this activation (no closed form); "
                                    "use 'auto' or 'quadrature'");
    }
    const bool wf = p.want_f(), wd = p.want_d(), fixed = quad_order > 0, cross = S.cross;
    AnalyticInfo& info = S.info;
    double s_max = S.P1.s.size() ? S.P1.s.maxCoeff() : 0.0;
    if (cross && S.P2.s.size()) s_max = std::max(s_max, S.P2.s.maxCoeff());
    const Index cap = fixed ? (quad_order + 1) / 2 : kAutoHermiteTermsMax;
    Index K = fixed ? cap : std::min<Index>(32, cap);
    for (;;) {
      const CoefficientRule R = coefficient_rule(K, s_max);
      S.C1 = hermite_set(act, S.P1.s, R, wf, wd, threads);
      if (cross) S.C2 = hermite_set(act, S.P2.s, R, wf, wd, threads);
      info = AnalyticInfo{};
      info.quadrature = true;
      info.order = fixed ? quad_order : static_cast<int>(2 * K);
      info.nodes = R.nodes();
      bool met = true;
      auto terms = [&](const RowMat<double>& A, const Vec<double>& EA, const RowMat<double>* B, const Vec<double>* EB) {
        Index k = series_terms(A, EA, quad_tol);
        if (B) k = std::max(k, series_terms(*B, *EB, quad_tol));
        Vec<double> ta = relative_tails(A, EA, k);
        double worst = ta.size() ? ta.maxCoeff() : 0.0;
        if (B) {
          const Vec<double> tb = relative_tails(*B, *EB, k);
          if (tb.size()) worst = std::max(worst, tb.maxCoeff());
        }
        if (worst * worst > quad_tol) met = false;
        return k;
      };
      if (wf) info.terms_f = terms(S.C1.F, S.C1.EF, cross ? &S.C2.F : nullptr, cross ? &S.C2.EF : nullptr);
      if (wd) info.terms_d = terms(S.C1.D, S.C1.ED, cross ? &S.C2.D : nullptr, cross ? &S.C2.ED : nullptr);
      if (fixed || met || K >= cap) break;
      K = std::min(2 * K, cap);
    }
    auto tails = [&](HermiteSet& C) {
      if (wf) C.tf = relative_tails(C.F, C.EF, info.terms_f);
      if (wd) C.td = relative_tails(C.D, C.ED, info.terms_d);
    };
    tails(S.C1);
    if (cross) tails(S.C2);
    fn(SeriesEvaluator<Act>(&S.P1, &S.second(), &S.C1, &S.second_set(), info.terms_f, info.terms_d, quad_tol, !fixed,
                            wf, wd));
  });
}

// The full computation: K(X1, X2) (X2 null: symmetric) or, with diag_only, diag K(X1, X1)
// into `out`, by the method of with_analytic_evaluator.
template <class T>
AnalyticInfo analytic_kernel(ActivationId id, double c0, MomentMethod method, int quad_order, double quad_tol,
                             const AnalyticParams& p, const T* X1, Index n1, const T* X2, Index n2, Index d,
                             bool diag_only, T* out, int threads) {
  AnalyticSetup S;
  analytic_setup_points(S, p, X1, n1, X2, n2, d);
  EntryStats st;
  with_analytic_evaluator(S, id, c0, method, quad_order, quad_tol, p, threads, [&](const auto& ev) {
    st = diag_only ? analytic_diag(ev, p, S.P1, out, threads)
                   : analytic_gram(ev, p, S.P1, S.cross ? &S.P2 : nullptr, out, threads);
  });
  record_entry_stats(S.info, st);
  return S.info;
}

// ------------------------------------------------------------------------------------------
// The matrix-free product out = K(Xr, Xc) V (Xr null: K(Xc, Xc) V), V (nc, m) and out (nr, m)
// row-major, in square blocks of `tile` points: B = K(I, J) by the GEMM of the unit vectors and
// the evaluator, as in analytic_gram, then R_J = B V_J, all in double. Row block I of the result
// is the sum of its R_J in the order of J. The symmetric product evaluates only the blocks
// J >= I (the diagonal block's upper triangle, mirrored): block (I, J > I) also adds B^T V_I to
// the rows of block J (C_J), and the rows of block I receive C_I, complete once the block rows
// above are done. The units of work are the blocks, row by row (J >= I when symmetric); the
// blocks of one call's part of a row run in parallel, each on one thread with its own R_J or C_J,
// so every number is the same for any thread count and any grouping of the units into calls.
// Memory O((nr + nc) d + threads tile^2 + (nr + nc) m), with no nr x nc matrix.
// ------------------------------------------------------------------------------------------
template <class T> class AnalyticMatvec {
 public:
  AnalyticMatvec(ActivationId id, double c0, MomentMethod method, int quad_order, double quad_tol,
                 const AnalyticParams& p, const T* Xr, Index nr, const T* Xc, Index nc, Index d, const T* V, Index m,
                 T* out, int threads, Index tile = 256)
      : p_(p), sym_(Xr == nullptr), m_(m), out_(out), threads_(threads), tile_(tile) {
    if (threads < 1) throw std::invalid_argument("threads: must be at least 1");
    if (tile < 1) throw std::invalid_argument("tile: must be at least 1");
    // P1 (rows) is Xr, P2 (columns) Xc; symmetric: P1 only.
    if (sym_)
      analytic_setup_points(S_, p, Xc, nc, static_cast<const T*>(nullptr), 0, d);
    else
      analytic_setup_points(S_, p, Xr, nr, Xc, nc, d);
    nr_ = S_.P1.n;
    nc_ = S_.second().n;
    rb_ = num_tiles(nr_, tile_);
    cb_ = num_tiles(nc_, tile_);
    V_.resize(nc_, m_);
    for (Index i = 0; i < nc_; ++i)
      for (Index c = 0; c < m_; ++c) V_(i, c) = static_cast<double>(V[i * m_ + c]);
    R_.setZero(cb_ * tile_, m_);
    if (sym_) C_.setZero(nc_, m_);
    with_analytic_evaluator(S_, id, c0, method, quad_order, quad_tol, p, threads, [&](const auto& ev) {
      using Eval = std::decay_t<decltype(ev)>;
      auto held = std::make_shared<const Eval>(ev);
      blocks_ = [this, held](Index I, Index j0, Index j1) { return this->run_blocks(*held, I, j0, j1); };
    });
    info_ = S_.info;
    J_ = first_block(0);
  }
  AnalyticMatvec(const AnalyticMatvec&) = delete;  // the evaluator points into S_
  AnalyticMatvec& operator=(const AnalyticMatvec&) = delete;

  Index units() const { return sym_ ? rb_ * (rb_ + 1) / 2 : rb_ * cb_; }
  Index done() const { return done_; }
  // The method and the largest error bounds of the entries evaluated so far.
  const AnalyticInfo& info() const { return info_; }

  // Process the next `count` units (fewer when fewer remain).
  void advance(Index count) {
    while (count > 0 && done_ < units()) {
      const Index j1 = std::min(cb_, J_ + count);
      record_entry_stats(info_, blocks_(I_, J_, j1));
      count -= j1 - J_;
      done_ += j1 - J_;
      J_ = j1;
      if (J_ == cb_) {
        finish_row(I_);
        ++I_;
        J_ = first_block(I_);
      }
    }
  }

 private:
  Index first_block(Index I) const { return sym_ ? I : 0; }

  // Blocks (I, J), j0 <= J < j1, in parallel: R_J = B V_J and, symmetric with J > I, C_J += B^T V_I.
  template <class Eval> EntryStats run_blocks(const Eval& ev, Index I, Index j0, Index j1) {
    const AnalyticPoints &P1 = S_.P1, &P2 = S_.second();
    const Index i0 = I * tile_, ni = std::min(tile_, nr_ - i0);
    std::vector<EntryStats> per_block(j1 - j0);
#pragma omp parallel num_threads(threads_)
    {
      RowMat<double> Gu, B(tile_, tile_);
      std::vector<detail::PairGeometry> geo(tile_);
#pragma omp for schedule(dynamic, 1)
      for (Index J = j0; J < j1; ++J) {
        const Index c0 = J * tile_, nc = std::min(tile_, nc_ - c0);
        const bool diagonal = sym_ && J == I;
        EntryStats st;
        Gu.noalias() = P1.U.middleRows(i0, ni) * P2.U.middleRows(c0, nc).transpose();
        auto Bb = B.topLeftCorner(ni, nc);
        for (Index r = 0; r < ni; ++r) {
          const Index cs = diagonal ? r : 0, len = nc - cs;
          detail::pair_geometry_row(P1, i0 + r, P2, c0 + cs, len, &Gu(r, cs), geo.data());
          ev(p_, RowSegment{i0 + r, c0 + cs, len, geo.data(), &B(r, cs)}, st);
        }
        if (diagonal)
          for (Index r = 1; r < ni; ++r)
            for (Index c = 0; c < r; ++c) B(r, c) = B(c, r);
        R_.middleRows(c0, ni).noalias() = Bb * V_.middleRows(c0, nc);
        if (sym_ && !diagonal) C_.middleRows(c0, nc).noalias() += Bb.transpose() * V_.middleRows(i0, ni);
        per_block[J - j0] = st;
      }
    }
    EntryStats total;
    for (const auto& st : per_block) total.merge(st);
    return total;
  }

  // Row block I of the result: its R_J in the order of J (and C_I), rounded to T.
  void finish_row(Index I) {
    const Index i0 = I * tile_, ni = std::min(tile_, nr_ - i0);
    for (Index r = 0; r < ni; ++r)
      for (Index c = 0; c < m_; ++c) {
        double acc = 0.0;
        for (Index J = first_block(I); J < cb_; ++J) acc += R_(J * tile_ + r, c);
        if (sym_) acc += C_(i0 + r, c);
        out_[(i0 + r) * m_ + c] = static_cast<T>(acc);
      }
  }

  AnalyticParams p_;
  bool sym_;
  Index m_;
  T* out_;
  int threads_;
  Index tile_;
  AnalyticSetup S_;
  AnalyticInfo info_;
  Index nr_ = 0, nc_ = 0, rb_ = 0, cb_ = 0, I_ = 0, J_ = 0, done_ = 0;
  RowMat<double> V_, R_, C_;
  std::function<EntryStats(Index, Index, Index)> blocks_;
};

}  // namespace mfntk
