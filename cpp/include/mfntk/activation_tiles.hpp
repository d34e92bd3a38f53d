// Activations applied to a whole tile: S = sigma(Z), D = sigma'(Z). The generic path calls the
// policy's scalar f_df; tanh, sigmoid and erf have vectorised paths built on Eigen's packet exp
// (std::tanh costs ~20 ns per element and would dominate a step; this path ~2 ns; erf: fast_erf.hpp).
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <type_traits>

#include "activations.hpp"
#include "fast_erf.hpp"
#include "types.hpp"

namespace mfntk {

// Row-major dynamic blocks with an outer stride (tiles of the per-thread buffers or of the cache).
template <class T> using Tile = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T> using CTile = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;

namespace detail {

// One row of tanh for double, to a few ulp: e = exp(-2|u|) by Eigen's packet exp (into the
// scratch row), then (1 - e) / (1 + e) for |u| >= 0.2, where 1 - e >= 0.33 loses nothing, and
// the odd Taylor polynomial below (next term < 1e-16 relative). A plain loop, which the
// compiler vectorises (Eigen 3.4's select has no packet path).
inline void tanh_row(const double* z, double* s, double* scratch, Index cols) {
  Eigen::Map<Eigen::ArrayXd>(scratch, cols) = (-2.0 * Eigen::Map<const Eigen::ArrayXd>(z, cols).abs()).exp();
  // s may be z (in place): read through s then, so that the loop carries no possible overlap
  // and vectorises.
  double* __restrict out = s;
  const double* __restrict e = scratch;
  const double* in = z == s ? out : z;
  for (Index c = 0; c < cols; ++c) {
    const double u = in[c], p = u * u;
    const double big = std::copysign((1.0 - e[c]) / (1.0 + e[c]), u);
    const double poly =
        1.0 + p * (-1.0 / 3 + p * (2.0 / 15 + p * (-17.0 / 315 + p * (62.0 / 2835 + p * (-1382.0 / 155925 +
        p * (21844.0 / 6081075 + p * (-929569.0 / 638512875 + p * (6404582.0 / 10854718875.0))))))));
    out[c] = std::fabs(u) < 0.2 ? u * poly : big;
  }
}

}  // namespace detail

// Activations whose derivative the tiles compute from the value, by derivative_from_value_row
// (tanh: 1 - s^2, sigmoid: s (1 - s)). The passes' cache holds sigma(Z) for them instead of Z
// (network.hpp), so that vjp and jvp evaluate no activation, with the same numbers.
template <class Act> constexpr bool derivative_from_value = std::is_same_v<Act, Tanh> || std::is_same_v<Act, Sigmoid>;

template <class Act, class T> void derivative_from_value_row(const T* s, T* ds, Index cols) {
  static_assert(derivative_from_value<Act>);
  if constexpr (std::is_same_v<Act, Tanh>)
    for (Index c = 0; c < cols; ++c) ds[c] = T(1) - s[c] * s[c];
  else
    for (Index c = 0; c < cols; ++c) ds[c] = s[c] * (T(1) - s[c]);
}

// One row: s = sigma(z), and ds = sigma'(z) when `derivative` (otherwise ds is scratch).
// z may alias s.
template <class T, class Act>
void activate_row(const Act& act, const T* z, T* s, T* ds, Index cols, bool derivative) {
  if constexpr (std::is_same_v<Act, Tanh>) {
    if constexpr (std::is_same_v<T, double>) detail::tanh_row(z, s, ds, cols);
    else Eigen::Map<Eigen::ArrayXf>(s, cols) = Eigen::Map<const Eigen::ArrayXf>(z, cols).tanh();
    if (derivative) derivative_from_value_row<Act>(s, ds, cols);
  } else if constexpr (std::is_same_v<Act, Sigmoid>) {
    using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
    Eigen::Map<Arr>(s, cols) = T(1) / (T(1) + (-Eigen::Map<const Arr>(z, cols)).exp());
    if (derivative) derivative_from_value_row<Act>(s, ds, cols);
  } else if constexpr (std::is_same_v<Act, Erf>) {
    detail::erf_row(z, s, derivative ? ds : nullptr, cols);
  } else {
    // Restrict-qualified pointers, with the in-place case (z == s) read through s, so that the
    // compiler need not guard against partial overlap and vectorises the loop.
    T* __restrict sv = s;
    T* __restrict dv = ds;
    if (z == s) {
      if (derivative)
        for (Index c = 0; c < cols; ++c) { const T u = sv[c]; act.f_df(u, sv[c], dv[c]); }
      else
        for (Index c = 0; c < cols; ++c) sv[c] = act.f(sv[c]);
    } else {
      const T* __restrict zv = z;
      if (derivative)
        for (Index c = 0; c < cols; ++c) act.f_df(zv[c], sv[c], dv[c]);
      else
        for (Index c = 0; c < cols; ++c) sv[c] = act.f(zv[c]);
    }
  }
}

// ds = sigma'(z) alone; s is scratch (erf skips sigma, the others compute it on the way).
template <class T, class Act>
void activate_derivative_row(const Act& act, const T* z, T* s, T* ds, Index cols) {
  if constexpr (std::is_same_v<Act, Erf>) detail::erf_row(z, static_cast<T*>(nullptr), ds, cols);
  else activate_row<T>(act, z, s, ds, cols, true);
}

// S = sigma(Zin), and D = sigma'(Zin) when `derivative`; otherwise D is only scratch space.
// Zin may alias S.
template <class T, class Act, class In>
void activate(const Act& act, const In& Zin, Tile<T> S, Tile<T> D, bool derivative) {
  for (Index r = 0; r < S.rows(); ++r)
    activate_row<T>(act, Zin.data() + r * Zin.outerStride(), &S(r, 0), &D(r, 0), S.cols(), derivative);
}

}  // namespace mfntk
