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
// The two Gaussian expectations E[sigma sigma] and E[sigma' sigma'] depend on (q1, q2, c) only.
// GaussianMoments<Act> gives them in closed form where one exists (Relu, Erf, Quadratic,
// Identity). Every activation (these included, on request) can instead use Gauss-Hermite
// quadrature on the bivariate Gaussian, organised through Mehler's formula
//   phi_rho(z1, z2) = phi(z1) phi(z2) sum_k rho^k He_k(z1) He_k(z2) / k!,
// which makes the two-dimensional integral separable:
//   E[g(s1 z1) h(s2 z2)] = sum_k rho^k g_k(s1) h_k(s2),  g_k(s) = E[g(s Z) He_k(Z)] / sqrt(k!),
// with (z1, z2) standard normals of correlation rho = c / sqrt(q1 q2). The Hermite coefficients
// g_k of every input point come from one M-point Gauss-Hermite rule (a small GEMM per point);
// a pair then costs O(K) (Horner in rho) instead of the M^2 of a tensor rule. The number of
// terms K is the smallest for which, at every point, the discarded energy
//   tail_i(K) = sum_{k >= K} g_k(s_i)^2  <=  tol * E[g(s_i Z)^2]      (Parseval),
// so by Cauchy-Schwarz the truncation error of every entry is at most
//   tol * sqrt(E[g(u)^2] E[g(v)^2])   (relative to the geometric mean of the two diagonal terms).
// K is capped at M / 2, where the coefficients of the M-point rule are still accurate to the
// same order (its aliasing error concerns degrees near 2M); the bound actually reached is
// returned, so that a caller can warn when the cap was hit (large variances, non-smooth sigma).
//
// analytic_gram: the Gram part X1 X2^T is a GEMM, split into row panels over the threads and
// written straight into the output; the rest is elementwise in place (in double precision
// whatever T). Memory O(n1 n2 + (n1 + n2) (d + M)).
//
// References: Cho & Saul (2009), arc-cosine kernels (their eq. 6 with J_0, J_1 of eq. 7);
// Williams (1997), the arcsin kernel of erf (his eq. 11); Jacot, Gabriel & Hongler (2018), NTK;
// Mehler's formula, e.g. DLMF 18.18.28 (physicists' Hermite polynomials).
#pragma once

#include <omp.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "activations.hpp"
#include "empirical_kernel.hpp"  // KernelKind, parse_kernel_kind
#include "types.hpp"

namespace mfntk {

// ------------------------------------------------------------------------------------------
// Gauss-Hermite rule for the standard normal law: E[g(Z)] ~= sum_a w_a g(z_a), exact for
// polynomials of degree <= 2M - 1. Golub-Welsch (eigenvalues of the Jacobi matrix of the
// probabilists' Hermite polynomials), then Newton steps on psi_M = He_M / sqrt(M!) and the
// weights w_a = 1 / (M psi_{M-1}(z_a)^2), accurate to rounding even for the smallest weights.
// ------------------------------------------------------------------------------------------
struct HermiteRule {
  std::vector<double> z, w;
  int order() const { return static_cast<int>(z.size()); }
};

constexpr int kMaxHermiteOrder = 2048;
constexpr int kAutoHermiteOrderMax = 1024;  // the largest rule tried by the automatic order

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

// The rule and the first kmax = ceil(M / 2) normalised Hermite functions on its nodes,
// H(k, a) = sqrt(w_a) psi_k(z_a) (rows orthonormal: the discrete orthogonality of the rule).
struct HermiteBasis {
  HermiteRule rule;
  RowMat<double> H;
  Index kmax = 0;
};

inline HermiteBasis hermite_basis(int m) {
  HermiteBasis B;
  B.rule = hermite_rule(m);
  B.kmax = (m + 1) / 2;
  B.H.resize(B.kmax, m);
  for (int a = 0; a < m; ++a) {
    const double x = B.rule.z[a];
    double prev = 0.0, cur = std::sqrt(B.rule.w[a]);  // sqrt(w) psi_{-1}, sqrt(w) psi_0
    for (Index k = 0; k < B.kmax; ++k) {
      B.H(k, a) = cur;
      const double next = (x * cur - std::sqrt(static_cast<double>(k)) * prev) / std::sqrt(static_cast<double>(k + 1));
      prev = cur;
      cur = next;
    }
  }
  return B;
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
  static double s_of(double q1, double q2, double& s) { return s = std::sqrt(q1 * q2); }
  static double theta(double q1, double q2, double c, double& s) {
    return std::acos(std::clamp(c / s_of(q1, q2, s), -1.0, 1.0));
  }
  static double ff(const Relu&, double q1, double q2, double c) {
    if (q1 <= 0.0 || q2 <= 0.0) return 0.0;
    double s;
    const double rho = std::clamp(c / s_of(q1, q2, s), -1.0, 1.0);
    // sin(theta) = sqrt(1 - rho^2), cos(theta) = rho: one acos per entry.
    return s * (std::sqrt((1.0 - rho) * (1.0 + rho)) + (M_PI - std::acos(rho)) * rho) / (2.0 * M_PI);
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

// Moment evaluators: m(i, j, q1, q2, c, want_f, want_d, ef, ed) for row i of the first
// input set and row j of the second.
template <class Act> struct ClosedMoments {
  Act act;
  void operator()(Index, Index, double q1, double q2, double c, bool want_f, bool want_d, double& ef,
                  double& ed) const {
    ef = want_f ? GaussianMoments<Act>::ff(act, q1, q2, c) : 0.0;
    ed = want_d ? GaussianMoments<Act>::dd(act, q1, q2, c) : 0.0;
  }
};

// Hermite coefficients of sigma(s_i Z) (F) and sigma'(s_i Z) (D) for every point, first kmax of them,
// and their energies E[sigma(s_i Z)^2], E[sigma'(s_i Z)^2] under the same rule.
struct HermiteCoefficients {
  RowMat<double> F, D;
  Vec<double> EF, ED;
};

template <class Act>
HermiteCoefficients hermite_coefficients(const Act& act, const Vec<double>& q, const HermiteBasis& B, bool want_f,
                                         bool want_d, int threads, Index row_tile = 64) {
  const Index n = q.size(), m = B.rule.order();
  HermiteCoefficients C;
  if (want_f) { C.F.resize(n, B.kmax); C.EF.resize(n); }
  if (want_d) { C.D.resize(n, B.kmax); C.ED.resize(n); }
  const Index tiles = num_tiles(n, row_tile);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n - i0);
    RowMat<double> Gf(want_f ? ni : 0, m), Gd(want_d ? ni : 0, m);
    for (Index r = 0; r < ni; ++r) {
      const double s = std::sqrt(std::max(q[i0 + r], 0.0));
      for (Index a = 0; a < m; ++a) {
        double f, df;
        act.f_df(s * B.rule.z[a], f, df);
        const double sw = std::sqrt(B.rule.w[a]);
        if (want_f) Gf(r, a) = sw * f;
        if (want_d) Gd(r, a) = sw * df;
      }
    }
    if (want_f) {
      C.F.middleRows(i0, ni).noalias() = Gf * B.H.transpose();
      C.EF.segment(i0, ni) = Gf.rowwise().squaredNorm();
    }
    if (want_d) {
      C.D.middleRows(i0, ni).noalias() = Gd * B.H.transpose();
      C.ED.segment(i0, ni) = Gd.rowwise().squaredNorm();
    }
  }
  return C;
}

// Truncation of a Hermite series. series_terms: the smallest number of terms K such that every
// row has tail(K) = E - sum_{k<K} c_k^2 <= tol E (at most kmax = C.cols()).
// series_bound: the relative tail max_i tail_i(K) / E_i reached with K terms.
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

inline double series_bound(const RowMat<double>& C, const Vec<double>& E, Index terms) {
  double bound = 0.0;
  for (Index i = 0; i < C.rows(); ++i) {
    const double e = E[i];
    if (!(e > 0.0)) continue;
    bound = std::max(bound, std::max(e - C.row(i).head(terms).squaredNorm(), 0.0) / e);
  }
  return bound;
}

// The Mehler series sum_{k<K} rho^k g_k(s_i) g_k(s_j), by Horner.
struct SeriesMoments {
  const HermiteCoefficients* c1;
  const HermiteCoefficients* c2;
  Index kf = 0, kd = 0;
  static double horner(const double* a, const double* b, Index K, double rho) {
    double acc = 0.0;
    for (Index k = K - 1; k >= 0; --k) acc = acc * rho + a[k] * b[k];
    return acc;
  }
  void operator()(Index i, Index j, double q1, double q2, double c, bool want_f, bool want_d, double& ef,
                  double& ed) const {
    const double s = std::sqrt(std::max(q1, 0.0) * std::max(q2, 0.0));
    const double rho = s > 0.0 ? std::clamp(c / s, -1.0, 1.0) : 0.0;
    ef = want_f ? horner(&c1->F(i, 0), &c2->F(j, 0), kf, rho) : 0.0;
    ed = want_d ? horner(&c1->D(i, 0), &c2->D(j, 0), kd, rho) : 0.0;
  }
};

// ------------------------------------------------------------------------------------------
// The kernel itself.
// ------------------------------------------------------------------------------------------
struct AnalyticParams {
  KernelKind kind = parse_kernel_kind("ntk");
  double w_std = 1.0, a_std = 1.0, b_std = 0.0;
  bool bias = false;
  bool want_f() const { return kind.second_layer; }
  bool want_d() const { return kind.first_layer; }
};

namespace detail {

// |x|^2 in double; the variances and the diagonal of a symmetric Gram matrix both use it, so
// that at x = x' the correlation is exactly 1 (the arc-cosine kernels have an infinite slope
// there: an O(eps) error in rho would cost O(sqrt(eps)) in K).
template <class T> double sqnorm(const T* x, Index d) {
  double s = 0.0;
  for (Index k = 0; k < d; ++k) s += double(x[k]) * double(x[k]);
  return s;
}

template <class T> Vec<double> input_variances(const T* X, Index n, Index d, const AnalyticParams& p) {
  const double w2 = p.w_std * p.w_std, b2 = p.b_std * p.b_std;
  Vec<double> q(n);
  for (Index i = 0; i < n; ++i) q[i] = w2 * sqnorm(X + i * d, d) + b2;
  return q;
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

// The kernel value from the Gram entry g = <x_i, x'_j> and the variances.
template <class Moments>
inline double kernel_entry(const Moments& mom, const AnalyticParams& p, Index i, Index j, double q1, double q2,
                           double g) {
  const bool rf = p.want_f(), nt = p.want_d();
  const double c = p.w_std * p.w_std * g + p.b_std * p.b_std;
  double ef, ed;
  mom(i, j, q1, q2, c, rf, nt, ef, ed);
  double k = rf ? ef : 0.0;
  if (nt) k += p.a_std * p.a_std * (g + (p.bias ? 1.0 : 0.0)) * ed;
  return k;
}

}  // namespace detail

// K (n1, n2), row-major. X2 == nullptr means X2 = X1 (only the upper triangle is evaluated,
// then mirrored). q1, q2 are the variances of the two sets (detail::input_variances).
template <class T, class Moments>
void analytic_gram(const Moments& mom, const AnalyticParams& p, const T* X1, const Vec<double>& q1, Index n1,
                   const T* X2, const Vec<double>& q2, Index n2, Index d, T* K, int threads, Index row_tile = 64) {
  const bool sym = X2 == nullptr;
  if (sym) { X2 = X1; n2 = n1; }
  const Vec<double>& qq2 = sym ? q1 : q2;
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
        row[col] = static_cast<T>(detail::kernel_entry(mom, p, r, col, q1[r], qq2[col],
                                                       sym && col == r ? detail::sqnorm(X1 + r * d, d)
                                                                       : double(row[col])));
    }
  }
  if (sym) detail::mirror_upper(K, n1, threads);
}

// The same for the Mehler series: per row, the O(K) Horner recurrences run across the columns
// of the panel at once (independent chains, contiguous coefficients of the second set stored
// transposed, (K, n2)), which the compiler vectorises.
template <class T>
void analytic_gram_series(const SeriesMoments& mom, const AnalyticParams& p, const T* X1, const Vec<double>& q1,
                          Index n1, const T* X2, const Vec<double>& q2, Index n2, Index d, T* K, int threads,
                          Index row_tile = 64) {
  using Arr = Eigen::Array<double, Eigen::Dynamic, 1>;
  const bool sym = X2 == nullptr;
  if (sym) { X2 = X1; n2 = n1; }
  const Vec<double>& qq2 = sym ? q1 : q2;
  const bool rf = p.want_f(), nt = p.want_d();
  const RowMat<double> F2T = rf ? RowMat<double>(mom.c2->F.leftCols(mom.kf).transpose()) : RowMat<double>();
  const RowMat<double> D2T = nt ? RowMat<double>(mom.c2->D.leftCols(mom.kd).transpose()) : RowMat<double>();
  const Arr s2 = qq2.array().max(0.0).sqrt();
  const double w2 = p.w_std * p.w_std, b2 = p.b_std * p.b_std, a2 = p.a_std * p.a_std, bias = p.bias ? 1.0 : 0.0;
  MapMat<T> Kout(K, n1, n2);
  CMapMat<T> A(X1, n1, d), B(X2, n2, d);
  const Index tiles = num_tiles(n1, row_tile);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n1 - i0);
    const Index c0 = sym ? i0 : 0, nc = n2 - c0;
    Kout.block(i0, c0, ni, nc).noalias() = A.middleRows(i0, ni) * B.middleRows(c0, nc).transpose();
    Arr g, rho, acc, out;
    for (Index r = i0; r < i0 + ni; ++r) {
      const Index cs = sym ? r : 0, m = n2 - cs;
      T* row = K + r * n2 + cs;
      g = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(row, m).template cast<double>();
      if (sym) g[0] = detail::sqnorm(X1 + r * d, d);  // the diagonal entry, exactly as in q1
      const double s1 = std::sqrt(std::max(q1[r], 0.0));
      const Arr s = s1 * s2.segment(cs, m);
      rho = (s > 0.0).select(((w2 * g + b2) / s.max(1e-300)).max(-1.0).min(1.0), 0.0);
      out.setZero(m);
      if (rf) {
        acc.setZero(m);
        for (Index k = mom.kf - 1; k >= 0; --k)
          acc = acc * rho + mom.c1->F(r, k) * F2T.row(k).segment(cs, m).transpose().array();
        out += acc;
      }
      if (nt) {
        acc.setZero(m);
        for (Index k = mom.kd - 1; k >= 0; --k)
          acc = acc * rho + mom.c1->D(r, k) * D2T.row(k).segment(cs, m).transpose().array();
        out += a2 * (g + bias) * acc;
      }
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(row, m) = out.template cast<T>();
    }
  }
  if (sym) detail::mirror_upper(K, n1, threads);
}

// diag K(x_i, x_i), shape (n,).
template <class T, class Moments>
void analytic_diag(const Moments& mom, const AnalyticParams& p, const T* X, const Vec<double>& q, Index n, Index d,
                   T* out, int threads) {
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
  for (Index i = 0; i < n; ++i) {
    out[i] = static_cast<T>(detail::kernel_entry(mom, p, i, i, q[i], q[i], detail::sqnorm(X + i * d, d)));
  }
}

enum class MomentMethod { automatic, closed, quadrature };

inline MomentMethod parse_moment_method(std::string_view name) {
  constexpr std::array<const char*, 3> names = {"auto", "closed", "quadrature"};
  constexpr MomentMethod methods[] = {MomentMethod::automatic, MomentMethod::closed, MomentMethod::quadrature};
  for (std::size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return methods[i];
  unknown_name("method", name, names);
}

// What a call did: closed form or quadrature; for quadrature, the rule's order, the number
// of Mehler terms for sigma and sigma' and the relative truncation bounds reached.
struct AnalyticInfo {
  bool quadrature = false;
  int order = 0;
  Index terms_f = 0, terms_d = 0;
  double bound_f = 0.0, bound_d = 0.0;
};

// The full computation: K(X1, X2) (X2 null: symmetric) or, with diag_only, diag K(X1, X1)
// into `out`. method: closed form when one exists and not `quadrature`; otherwise the
// Gauss-Hermite/Mehler series with a rule of order quad_order (<= 0: automatic, doubling from
// 128 up to kAutoHermiteOrderMax until the relative truncation bound is <= quad_tol).
template <class T>
AnalyticInfo analytic_kernel(ActivationId id, double c0, MomentMethod method, int quad_order, double quad_tol,
                             const AnalyticParams& p, const T* X1, Index n1, const T* X2, Index n2, Index d,
                             bool diag_only, T* out, int threads) {
  AnalyticInfo info;
  const Vec<double> q1 = detail::input_variances(X1, n1, d, p);
  const Vec<double> q2 = X2 ? detail::input_variances(X2, n2, d, p) : Vec<double>();
  with_activation(id, c0, [&](auto act) {
    using Act = decltype(act);
    auto run = [&](const auto& mom) {
      if (diag_only)
        analytic_diag(mom, p, X1, q1, n1, d, out, threads);
      else
        analytic_gram(mom, p, X1, q1, n1, X2, q2, n2, d, out, threads);
    };
    if constexpr (GaussianMoments<Act>::closed_form) {
      if (method != MomentMethod::quadrature) {
        run(ClosedMoments<Act>{act});
        return;
      }
    } else {
      if (method == MomentMethod::closed)
        throw std::invalid_argument("method: 'closed' is not available for this activation (no closed form); "
                                    "use 'auto' or 'quadrature'");
    }
    // quad_order > 0: that rule. quad_order <= 0: 128, 256, 512, 1024 until the bound is met.
    const bool wf = p.want_f(), wd = p.want_d();
    HermiteCoefficients C1, C2;
    int order = quad_order > 0 ? quad_order : 128;
    for (;;) {
      const HermiteBasis B = hermite_basis(order);
      C1 = hermite_coefficients(act, q1, B, wf, wd, threads);
      if (X2) C2 = hermite_coefficients(act, q2, B, wf, wd, threads);
      info = AnalyticInfo{};
      info.quadrature = true;
      info.order = order;
      if (wf) {
        info.terms_f = std::max(series_terms(C1.F, C1.EF, quad_tol), X2 ? series_terms(C2.F, C2.EF, quad_tol) : Index(1));
        info.bound_f = std::max(series_bound(C1.F, C1.EF, info.terms_f),
                                X2 ? series_bound(C2.F, C2.EF, info.terms_f) : 0.0);
      }
      if (wd) {
        info.terms_d = std::max(series_terms(C1.D, C1.ED, quad_tol), X2 ? series_terms(C2.D, C2.ED, quad_tol) : Index(1));
        info.bound_d = std::max(series_bound(C1.D, C1.ED, info.terms_d),
                                X2 ? series_bound(C2.D, C2.ED, info.terms_d) : 0.0);
      }
      const bool met = info.bound_f <= quad_tol && info.bound_d <= quad_tol;
      if (quad_order > 0 || met || order >= kAutoHermiteOrderMax) break;
      order *= 2;
    }
    SeriesMoments mom{&C1, X2 ? &C2 : &C1, info.terms_f, info.terms_d};
    if (diag_only)
      analytic_diag(mom, p, X1, q1, n1, d, out, threads);
    else
      analytic_gram_series(mom, p, X1, q1, n1, X2, q2, n2, d, out, threads);
  });
  return info;
}

}  // namespace mfntk
