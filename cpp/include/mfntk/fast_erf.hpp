// erf and its derivative over a row, vectorised: the tile path of the Erf activation
// (activation_tiles.hpp). std::erf costs ~20 ns per element and would dominate a step.
//
// The approximation is the one of Sun's fdlibm (W. J. Cody-style rational approximations, as in
// FreeBSD msun s_erf.c; the coefficients below are that file's), evaluated branch-free: every
// piece is computed for every element and the right one selected, so that the loops vectorise.
// With x = |u|:
//   x < 0.84375            erf = u + u R(x^2)                  (R a (4, 5) rational, |err| < 2^-57.9)
//   0.84375 <= x < 1.25    erf = sign(u) (c + P(x - 1))        (c = erf(1) rounded to float, (6, 6))
//   1.25 <= x < 1/0.35     erfc = exp(-x^2 - 0.5625 + R(1/x^2)) / x   ((7, 8), |err| < 2^-62.6)
//   1/0.35 <= x < 6        the same with a (6, 7) rational          (|err| < 2^-61.5)
//   x >= 6                 erf = sign(u)                          (1 - erf(6) < 2^-55)
// and erf = sign(u) (1 - erfc) in the two erfc pieces. The exponential is Eigen's packet exp.
// The pieces share one division: the numerator and denominator are selected first.
// fdlibm splits -x^2 exactly to keep erfc itself accurate; erf = 1 - erfc damps that error by
// erfc / erf <= 0.084, so a single exp with the rounding error of x^2 folded in is enough here.
//
// Accuracy over the whole real line: double within 1 ulp of the exact erf (0.85 ulp at most
// against long-double erfl on 2.6 * 10^6 points of [-9, 9]), float within 0.5 ulp (evaluated
// in double, then rounded once); tests/test_erf_tiles.py bounds both against scipy. NaN propagates,
// erf(+-inf) = +-1, erf(-0) = -0. sigma'(u) = (2 / sqrt(pi)) exp(-u^2) uses the same packet exp,
// with the rounding error of u^2 corrected to first order (exp(-(h + l)) = exp(-h) (1 - l),
// h + l = u^2 exactly): within ~3 ulp, subnormal results included.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "types.hpp"

// The loops below are arithmetic-bound: eight doubles per step (one 512-bit register where the
// CPU has them; GCC otherwise keeps to 256 bits) make them ~30% faster. `omp simd` is OpenMP 4.0.
#if defined(_OPENMP) && _OPENMP >= 201307
#define MFNTK_SIMD8 _Pragma("omp simd simdlen(8)")
#else
#define MFNTK_SIMD8
#endif

namespace mfntk {
namespace detail {

namespace erf_coef {
// erf(x) = x + x pp(x^2) / qq(x^2) on [0, 0.84375]
constexpr double pp[] = {1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
                         -5.77027029648944159157e-03, -2.37630166566501626084e-05};
constexpr double qq[] = {1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
                         1.32494738004321644526e-04, -3.96022827877536812320e-06};
// erf(1 + s) = erx + pa(s) / qa(s) on [0.84375, 1.25]
constexpr double erx = 8.45062911510467529297e-01;
constexpr double pa[] = {-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
                         3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
                         -2.16637559486879084300e-03};
constexpr double qa[] = {1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
                         1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02};
// log(x erfc(x)) + x^2 + 0.5625 = ra(z) / sa(z), z = 1 / x^2, on [1.25, 1/0.35]
constexpr double ra[] = {-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
                         -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
                         -8.12874355063065934246e+01, -9.81432934416914548592e+00};
constexpr double sa[] = {1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
                         6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
                         6.57024977031928170135e+00, -6.04244152148580987438e-02};
// the same on [1/0.35, 6]
constexpr double rb[] = {-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
                         -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
                         -4.83519191608651397019e+02};
constexpr double sb[] = {1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
                         3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
                         -2.24409524465858183362e+01};
constexpr double small = 0.84375, near_one = 1.25, far = 1.0 / 0.35, saturated = 6.0;
constexpr double two_over_sqrt_pi = 1.1283791670955126;
constexpr double exp_floor = 708.0;  // exp(-t) for t above this is left to squaring
}  // namespace erf_coef

// Horner's rule for c[0] + c[1] v + ... + c[K-1] v^(K-1), unrolled.
template <int K> inline double horner(const double (&c)[K], double v) {
  double r = c[K - 1];
  for (int i = K - 2; i >= 0; --i) r = r * v + c[i];
  return r;
}

// Rows are processed in chunks whose intermediate values live on the stack, aligned, and the
// exp runs over a whole number of packets (the padding is zero): every element then goes through
// the same packet code, wherever it sits in the row, and its result does not depend on the
// tiling (Eigen would finish an unaligned or ragged array with scalar std::exp).
constexpr Index erf_chunk = 256, erf_pad = 16;

inline void packet_exp(double* v, Index m) {
  const Index padded = (m + erf_pad - 1) / erf_pad * erf_pad;
  for (Index c = m; c < padded; ++c) v[c] = 0.0;
  Eigen::Map<Eigen::ArrayXd, Eigen::Aligned64> a(v, padded);
  a = a.exp();
}

// s = erf(z) unless s is null, and ds = erf'(z) unless ds is null; z may alias s.
inline void erf_row(const double* z, double* s, double* ds, Index cols) {
  namespace k = erf_coef;
  alignas(64) double qbuf[erf_chunk], ebuf[erf_chunk], ibuf[erf_chunk];
  for (Index c0 = 0; c0 < cols; c0 += erf_chunk) {
    const Index m = std::min(erf_chunk, cols - c0);
    double* __restrict out = s ? s + c0 : nullptr;
    double* __restrict q = qbuf;
    double* __restrict e = ebuf;
    double* __restrict inv = ibuf;
    // In place (z == s), read through `out`, so that the loops carry no possible overlap.
    const double* in = s && z == s ? out : z + c0;
    if (ds) {
      double* __restrict d = ds + c0;
      // Eigen's exp clamps its argument at -709.78, below which exp(-u^2) is subnormal; there
      // exp(-u^2 / 2) is squared instead (0 once u^2 / 2 > 709.78: |u| is capped at 40, where
      // exp(-u^2) is 0 anyway, so that exp never sees an infinity). NaN passes through.
      MFNTK_SIMD8
      for (Index c = 0; c < m; ++c) {
        const double x = std::fabs(in[c]), xc = x > 40.0 ? 40.0 : x, h = xc * xc;
        e[c] = h > k::exp_floor ? -0.5 * h : -h;
      }
      packet_exp(e, m);
      MFNTK_SIMD8
      for (Index c = 0; c < m; ++c) {
        const double x = std::fabs(in[c]), xc = x > 40.0 ? 40.0 : x, h = xc * xc;
        const double lo = std::fma(xc, xc, -h);
        d[c] = (e[c] * (k::two_over_sqrt_pi * (1.0 - lo))) * (h > k::exp_floor ? e[c] : 1.0);
      }
    }
    if (!out) continue;
    // The rational of each element's piece, and the argument of the exp of the erfc pieces.
    MFNTK_SIMD8
    for (Index c = 0; c < m; ++c) {
      const double x = std::fabs(in[c]);
      const double x2 = x * x, sm1 = x - 1.0;
      // The erfc pieces see x in [1.25, 6]: no infinities or zero divisions where unused.
      const double xt = x > k::saturated ? k::saturated : (x < k::near_one ? k::near_one : x);
      const double t2 = xt * xt, t2lo = std::fma(xt, xt, -t2), it = 1.0 / xt, w = it * it;
      const bool is_small = !(x >= k::small), is_near_one = x < k::near_one, is_far = xt >= k::far;
      const double num = is_small ? horner(k::pp, x2)
                         : is_near_one ? horner(k::pa, sm1)
                         : is_far ? horner(k::rb, w) : horner(k::ra, w);
      const double den = is_small ? horner(k::qq, x2)
                         : is_near_one ? horner(k::qa, sm1)
                         : is_far ? horner(k::sb, w) : horner(k::sa, w);
      const double r = num / den;
      q[c] = r;
      inv[c] = it;
      e[c] = ((r - 0.5625) - t2) - t2lo;
    }
    packet_exp(e, m);
    MFNTK_SIMD8
    for (Index c = 0; c < m; ++c) {
      const double u = in[c], x = std::fabs(u);
      const double tail = x < k::saturated ? 1.0 - e[c] * inv[c] : 1.0;
      const double big = std::copysign(x < k::near_one ? k::erx + q[c] : tail, u);
      // NaN fails every comparison and takes the first piece, which propagates it.
      out[c] = x >= k::small ? big : u + u * q[c];
    }
  }
}

// The float row is evaluated in double and rounded once: within 1 ulp, and one code path.
inline void erf_row(const float* z, float* s, float* ds, Index cols) {
  alignas(64) double zd[erf_chunk], sd[erf_chunk], dd[erf_chunk];
  for (Index c0 = 0; c0 < cols; c0 += erf_chunk) {
    const Index m = std::min(erf_chunk, cols - c0);
    for (Index c = 0; c < m; ++c) zd[c] = z[c0 + c];
    erf_row(zd, s ? sd : nullptr, ds ? dd : nullptr, m);
    if (s)
      for (Index c = 0; c < m; ++c) s[c0 + c] = static_cast<float>(sd[c]);
    if (ds)
      for (Index c = 0; c < m; ++c) ds[c0 + c] = static_cast<float>(dd[c]);
  }
}

}  // namespace detail
}  // namespace mfntk
