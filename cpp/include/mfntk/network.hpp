// The three tiled passes every computation is made of. For particles theta and inputs X (n, d),
// with z_ij = <w_j, x_i> + b_j:
//   forward : F_i = sum_j a_j sigma(z_ij)                                    (n, k)
//   vjp     : gA_j = sum_i R_i sigma(z_ij)                                   (N, k)
//             gW_j = sum_i <R_i, a_j> sigma'(z_ij) x_i, gb_j = sum_i <R_i, a_j> sigma'(z_ij)
//   jvp     : O_i = sum_j [ tA_j sigma(z_ij) + a_j sigma'(z_ij) (<tW_j, x_i> + tb_j) ]   (n, k)
// i.e. vjp = J^T R and jvp = J t for the Jacobian J of F with respect to theta.
// No n x N matrix is ever formed: work goes through (samples x particles) tiles held per
// thread, each inner product a small GEMM. forward and jvp are parallel over sample tiles,
// vjp over particle tiles; every output is reduced by one thread in a fixed order.
#pragma once

#include <omp.h>

#include <algorithm>

#include "types.hpp"

namespace mfntk {

// Per-thread scratch space for one tile, allocated once and reused by every pass.
template <class T> struct TileWorkspace {
  RowMat<T> Z, D, U, acc, acc2;
  void reserve(const Tiling& t, Index k) {
    if (Z.rows() < t.samples || Z.cols() < t.particles) {
      Z.resize(t.samples, t.particles);
      D.resize(t.samples, t.particles);
      U.resize(t.samples, t.particles);
    }
    if (acc.rows() < t.samples || acc.cols() < k) {
      acc.resize(t.samples, std::max<Index>(k, 1));
      acc2.resize(t.samples, std::max<Index>(k, 1));
    }
  }
};

template <class T> struct Workspaces {
  std::vector<TileWorkspace<T>> per_thread;
  Tiling tiling;
  void reserve(int threads, Index k) {
    if (static_cast<int>(per_thread.size()) < threads) per_thread.resize(threads);
    for (auto& w : per_thread) w.reserve(tiling, k);
  }
};

namespace detail {

// Z = X_I W_J^T (+ b_J) for rows [i0, i0 + ni) of X and particles [j0, j0 + nj).
template <class T, class Out>
void preactivation(Out&& Z, const T* X, const T* W, const T* b, Index d, Index i0, Index ni, Index j0, Index nj) {
  CMapMat<T> XI(X + i0 * d, ni, d);
  CMapMat<T> WJ(W + j0 * d, nj, d);
  Z.noalias() = XI * WJ.transpose();
  if (b) Z.rowwise() += CMapVec<T>(b + j0, nj).transpose();
}

}  // namespace detail

// The sum over particles is taken over the two halves [0, N/2) and [N/2, N) separately, each
// tiled from its own start, and the halves are added last. A symmetric initialisation (the
// second half the first with a negated) then gives F = 0 exactly: rounding is odd under negation.
template <class T, class Act>
void forward(const Act& act, const Particles<T>& p, const T* X, Index n, T* F, Workspaces<T>& ws, int threads) {
  const Tiling tl = ws.tiling;
  ws.reserve(threads, p.k);
  const Index tiles = num_tiles(n, tl.samples);
  const Index half = p.N % 2 == 0 ? p.N / 2 : p.N;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (tiles > 1)
  for (Index it = 0; it < tiles; ++it) {
    auto& w = ws.per_thread[omp_get_thread_num()];
    const Index i0 = it * tl.samples, ni = std::min(tl.samples, n - i0);
    auto acc = w.acc.topLeftCorner(ni, p.k);
    auto acc2 = w.acc2.topLeftCorner(ni, p.k);
    acc.setZero();
    acc2.setZero();
    for (Index j0 = 0; j0 < p.N;) {
      const Index end = j0 < half ? half : p.N;
      const Index nj = std::min(tl.particles, end - j0);
      auto Z = w.Z.topLeftCorner(ni, nj);
      detail::preactivation<T>(Z, X, p.W, p.b, p.d, i0, ni, j0, nj);
      for (Index r = 0; r < ni; ++r) {
        T* z = &Z(r, 0);
        for (Index c = 0; c < nj; ++c) z[c] = act.f(z[c]);
      }
      (j0 < half ? acc : acc2).noalias() += Z * CMapMat<T>(p.a + j0 * p.k, nj, p.k);
      j0 += nj;
    }
    MapMat<T>(F + i0 * p.k, ni, p.k) = acc + acc2;
  }
}

// gA, gW, gb receive J^T R; gb may be null (then the bias part is skipped).
template <class T, class Act>
void vjp(const Act& act, const Particles<T>& p, const T* X, Index n, const T* R, const ParticleVec<T>& g,
         Workspaces<T>& ws, int threads) {
  const Tiling tl = ws.tiling;
  ws.reserve(threads, p.k);
  const Index tiles = num_tiles(p.N, tl.particles);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (tiles > 1)
  for (Index jt = 0; jt < tiles; ++jt) {
    auto& w = ws.per_thread[omp_get_thread_num()];
    const Index j0 = jt * tl.particles, nj = std::min(tl.particles, p.N - j0);
    MapMat<T> gA(g.a + j0 * p.k, nj, p.k);
    MapMat<T> gW(g.W + j0 * p.d, nj, p.d);
    CMapMat<T> AJ(p.a + j0 * p.k, nj, p.k);
    gA.setZero();
    gW.setZero();
    if (g.b) MapVec<T>(g.b + j0, nj).setZero();
    for (Index i0 = 0; i0 < n; i0 += tl.samples) {
      const Index ni = std::min(tl.samples, n - i0);
      auto Z = w.Z.topLeftCorner(ni, nj);
      auto D = w.D.topLeftCorner(ni, nj);
      detail::preactivation<T>(Z, X, p.W, p.b, p.d, i0, ni, j0, nj);
      CMapMat<T> RI(R + i0 * p.k, ni, p.k);
      CMapMat<T> XI(X + i0 * p.d, ni, p.d);
      auto RA = w.U.topLeftCorner(ni, nj);
      RA.noalias() = RI * AJ.transpose();  // <R_i, a_j>
      for (Index r = 0; r < ni; ++r) {
        T* z = &Z(r, 0);
        T* dd = &D(r, 0);
        const T* ra = &RA(r, 0);
        for (Index c = 0; c < nj; ++c) {
          T s, ds;
          act.f_df(z[c], s, ds);
          z[c] = s;
          dd[c] = ds * ra[c];
        }
      }
      gA.noalias() += Z.transpose() * RI;
      gW.noalias() += D.transpose() * XI;
      if (g.b) MapVec<T>(g.b + j0, nj) += D.colwise().sum().transpose();
    }
  }
}

// O = J t. Parts of the tangent may be null: t.a null skips the second-layer part,
// t.W null skips the first-layer part (t.b is read only with t.W).
template <class T, class Act>
void jvp(const Act& act, const Particles<T>& p, const T* X, Index n, const Particles<T>& t, T* O, Workspaces<T>& ws,
         int threads) {
  const Tiling tl = ws.tiling;
  ws.reserve(threads, p.k);
  const Index tiles = num_tiles(n, tl.samples);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (tiles > 1)
  for (Index it = 0; it < tiles; ++it) {
    auto& w = ws.per_thread[omp_get_thread_num()];
    const Index i0 = it * tl.samples, ni = std::min(tl.samples, n - i0);
    auto acc = w.acc.topLeftCorner(ni, p.k);
    acc.setZero();
    for (Index j0 = 0; j0 < p.N; j0 += tl.particles) {
      const Index nj = std::min(tl.particles, p.N - j0);
      auto Z = w.Z.topLeftCorner(ni, nj);
      auto D = w.D.topLeftCorner(ni, nj);
      auto U = w.U.topLeftCorner(ni, nj);
      detail::preactivation<T>(Z, X, p.W, p.b, p.d, i0, ni, j0, nj);
      if (t.W) detail::preactivation<T>(U, X, t.W, p.b ? t.b : nullptr, p.d, i0, ni, j0, nj);
      for (Index r = 0; r < ni; ++r) {
        T* z = &Z(r, 0);
        T* dd = &D(r, 0);
        const T* u = t.W ? &U(r, 0) : nullptr;
        for (Index c = 0; c < nj; ++c) {
          T s, ds;
          act.f_df(z[c], s, ds);
          z[c] = s;
          dd[c] = u ? ds * u[c] : T(0);
        }
      }
      if (t.a) acc.noalias() += Z * CMapMat<T>(t.a + j0 * p.k, nj, p.k);
      if (t.W) acc.noalias() += D * CMapMat<T>(p.a + j0 * p.k, nj, p.k);
    }
    MapMat<T>(O + i0 * p.k, ni, p.k) = acc;
  }
}

}  // namespace mfntk
