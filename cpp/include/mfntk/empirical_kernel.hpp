// The empirical tangent kernel K_mu of the particles (SPEC 4), scalar form:
//   K(x, x') = (1/N) sum_j [ s_j(x) s_j(x') + |a_j|^2 s'_j(x) s'_j(x') (<x, x'> + [bias]) ]
// kinds: rf (first term), nt (second term), ntk (both); see kKernelKinds.
//   gram   : the (n1, n2) matrix, accumulated over particle tiles in a fixed order; the
//            symmetric case computes the upper block triangle only. Memory O(n1 n2 + (n1 + n2) tile).
//   matvec : K V without forming K, O(n N d) per column, from one vjp and one jvp.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "activations.hpp"
#include "network.hpp"
#include "policy_list.hpp"

namespace mfntk {

// The kinds of tangent kernel (SPEC 4), by the terms they keep. `kKernelKinds` is the registry.
struct KernelKind {
  const char* name;
  bool second_layer;  // s(x) s(x'): the random-features kernel
  bool first_layer;   // |a|^2 s'(x) s'(x') (<x, x'> + [bias]): the neural-tangent part
};

inline constexpr KernelKind kKernelKinds[] = {
    {"rf", true, false},
    {"nt", false, true},
    {"ntk", true, true},
};

inline KernelKind parse_kernel_kind(std::string_view name) {
  constexpr std::size_t count = std::size(kKernelKinds);
  std::array<const char*, count> names{};
  for (std::size_t i = 0; i < count; ++i) {
    if (name == kKernelKinds[i].name) return kKernelKinds[i];
    names[i] = kKernelKinds[i].name;
  }
  unknown_name("kind", name, names);
}

namespace detail {

// For one particle tile: S = sigma(X W_J^T + b_J), D = sigma'(...), and, when DA is given,
// DA = D diag(|a_j|^2).
template <class T, class Act>
void features_tile(const Act& act, const Particles<T>& p, const T* a2, const T* X, Index n, Index j0, Index nj,
                   RowMat<T>& S, RowMat<T>& D, RowMat<T>* DA, Index row_tile, int threads) {
  const Index tiles = num_tiles(n, row_tile);
  const Eigen::OuterStride<> stride(S.cols());
#pragma omp parallel for schedule(static) num_threads(threads) if (tiles > 1)
  for (Index it = 0; it < tiles; ++it) {
    const Index i0 = it * row_tile, ni = std::min(row_tile, n - i0);
    Tile<T> St(S.data() + i0 * S.cols(), ni, nj, stride);
    Tile<T> Dt(D.data() + i0 * D.cols(), ni, nj, stride);
    preactivation<T>(St, X, p.W, p.b, p.d, i0, ni, j0, nj);
    activate<T>(act, CTile<T>(St.data(), ni, nj, stride), St, Dt, true);
    if (DA)
      Tile<T>(DA->data() + i0 * DA->cols(), ni, nj, stride) =
          Dt * CMapVec<T>(a2 + j0, nj).asDiagonal();
  }
}

}  // namespace detail

template <class T, class Act>
void empirical_gram(const Act& act, const Particles<T>& p, const T* X1, Index n1, const T* X2, Index n2,
                    KernelKind kind, T* K, int threads, Index particle_tile = 256, Index out_tile = 256) {
  const bool sym = X2 == nullptr;
  if (sym) { X2 = X1; n2 = n1; }
  const bool rf = kind.second_layer, nt = kind.first_layer;
  Vec<T> a2 = CMapMat<T>(p.a, p.N, p.k).rowwise().squaredNorm();
  MapMat<T> Kout(K, n1, n2);
  RowMat<T> Knt;
  Kout.setZero();
  if (nt) Knt = RowMat<T>::Zero(n1, n2);
  RowMat<T> S1(n1, particle_tile), D1(n1, particle_tile), DA1, S2, D2;
  if (nt) DA1.resize(n1, particle_tile);
  if (!sym) { S2.resize(n2, particle_tile); D2.resize(n2, particle_tile); }
  const Index t1 = num_tiles(n1, out_tile), t2 = num_tiles(n2, out_tile);
  // Output blocks; in the symmetric case only those on or above the diagonal.
  std::vector<std::pair<Index, Index>> blocks;
  for (Index bi = 0; bi < t1; ++bi)
    for (Index bj = sym ? bi : 0; bj < t2; ++bj) blocks.emplace_back(bi, bj);
  const Index nblocks = static_cast<Index>(blocks.size());

  for (Index j0 = 0; j0 < p.N; j0 += particle_tile) {
    const Index nj = std::min(particle_tile, p.N - j0);
    detail::features_tile(act, p, a2.data(), X1, n1, j0, nj, S1, D1, nt ? &DA1 : nullptr, out_tile, threads);
    if (!sym) detail::features_tile<T>(act, p, nullptr, X2, n2, j0, nj, S2, D2, nullptr, out_tile, threads);
    const RowMat<T>& S2r = sym ? S1 : S2;
    const RowMat<T>& D2r = sym ? D1 : D2;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nblocks > 1)
    for (Index b = 0; b < nblocks; ++b) {
      const Index i0 = blocks[b].first * out_tile, ni = std::min(out_tile, n1 - i0);
      const Index k0 = blocks[b].second * out_tile, nk = std::min(out_tile, n2 - k0);
      if (rf)
        Kout.block(i0, k0, ni, nk).noalias() += S1.block(i0, 0, ni, nj) * S2r.block(k0, 0, nk, nj).transpose();
      if (nt)
        Knt.block(i0, k0, ni, nk).noalias() += DA1.block(i0, 0, ni, nj) * D2r.block(k0, 0, nk, nj).transpose();
    }
  }
  const T invN = T(1) / static_cast<T>(p.N);
  const T bias = p.bias() ? T(1) : T(0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nblocks > 1)
  for (Index b = 0; b < nblocks; ++b) {
    const Index i0 = blocks[b].first * out_tile, ni = std::min(out_tile, n1 - i0);
    const Index k0 = blocks[b].second * out_tile, nk = std::min(out_tile, n2 - k0);
    auto Kb = Kout.block(i0, k0, ni, nk);
    if (nt) {
      RowMat<T> G = CMapMat<T>(X1 + i0 * p.d, ni, p.d) * CMapMat<T>(X2 + k0 * p.d, nk, p.d).transpose();
      G.array() += bias;
      Kb.array() += G.array() * Knt.block(i0, k0, ni, nk).array();
    }
    Kb *= invN;
  }
  if (sym)
    for (Index i = 0; i < n1; ++i)
      for (Index c = 0; c < i; ++c) Kout(i, c) = Kout(c, i);
}

// KV = K V for V of shape (n, m), column by column: K v = (1/N) J_{|a|^2} (J_1^T v), where J_1 is
// the Jacobian of the network with a = 1 and J_{|a|^2} the one with a_j = |a_j|^2.
template <class T, class Act>
void empirical_matvec(const Act& act, const Particles<T>& p, const T* X, Index n, const T* V, Index m,
                      KernelKind kind, T* KV, int threads, Tiling tiling = {}) {
  const Vec<T> ones = Vec<T>::Ones(p.N);
  const Vec<T> a2 = CMapMat<T>(p.a, p.N, p.k).rowwise().squaredNorm();
  const Particles<T> p1{ones.data(), p.W, p.b, p.N, p.d, 1};
  const Particles<T> pa2{a2.data(), p.W, p.b, p.N, p.d, 1};
  Vec<T> g(particle_size(p.N, p.d, 1, p.bias())), v(n), out(n);
  const ParticleVec<T> gv = particle_vec(g.data(), p.N, p.d, 1, p.bias());
  const Particles<T> t{kind.second_layer ? gv.a : nullptr, kind.first_layer ? gv.W : nullptr, gv.b, p.N, p.d, 1};
  Workspaces<T> ws;
  ws.tiling = tiling;
  const T invN = T(1) / static_cast<T>(p.N);
  for (Index c = 0; c < m; ++c) {
    for (Index i = 0; i < n; ++i) v[i] = V[i * m + c];
    vjp(act, p1, X, n, v.data(), gv, ws, threads);
    jvp(act, pa2, X, n, t, out.data(), ws, threads);
    for (Index i = 0; i < n; ++i) KV[i * m + c] = invN * out[i];
  }
}

}  // namespace mfntk
