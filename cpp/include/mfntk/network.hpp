// The three tiled passes every computation is made of. For particles theta and inputs X (n, d),
// with z_ij = <w_j, x_i> + b_j:
//   forward : F_i = sum_j a_j sigma(z_ij)                                    (n, k)
//   vjp     : gA_j = sum_i R_i sigma(z_ij)                                   (N, k)
//             gW_j = sum_i <R_i, a_j> sigma'(z_ij) x_i, gb_j = sum_i <R_i, a_j> sigma'(z_ij)
//   jvp     : O_i = sum_j [ tA_j sigma(z_ij) + a_j sigma'(z_ij) (<tW_j, x_i> + tb_j) ]   (n, k)
// i.e. vjp = J^T R and jvp = J t for the Jacobian J of F with respect to theta.
//
// No n x N matrix is formed unless asked for: work goes through (samples x particles) tiles held
// per thread, each inner product a small GEMM. forward and jvp are parallel over sample tiles x
// groups of particle tiles (TilePlan), vjp over particle tiles; every output is reduced in a fixed
// order, so results are bit-identical for any thread count.
//
// Optionally forward stores the pre-activations Z in a cache (n N values, taken only when
// it fits the caller's memory budget) which vjp and jvp at the same particles and inputs then
// read instead of recomputing X W^T: a step costs 4 n N d flops instead of 6 n N d. For tanh
// and sigmoid (derivative_from_value) the cache holds sigma(Z), and sigma'(Z) follows from it:
// vjp and jvp evaluate no activation.
//
// Sign-mask passes (relu with one output, uses_sign_mask): sigma'(z) = m = 1[z > 0] and
// sigma(z) = z m, so with V_j = sum_i r_i m_ij x_i and s_j = sum_i r_i m_ij
//   gA_j = <w_j, V_j> + b_j s_j,   gW_j = a_j V_j,   gb_j = a_j s_j
//   O_i  = sum_j m_ij (<tA_j w_j + a_j tW_j, x_i> + tA_j b_j + a_j tb_j)
// vjp is then one GEMM (D^T X with D_ij = r_i m_ij) and no activation, jvp one GEMM, and both
// need only the signs of Z: the cache holds one bit per (i, j) instead of Z (64 times smaller
// in float64). With k outputs V_j would be k products, more than reading Z, so k > 1 keeps Z.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "activation_tiles.hpp"
#include "simd.hpp"
#include "types.hpp"

namespace mfntk {

// The fixed partition of samples and particles into tiles. Particles are tiled over the halves
// [0, N/2) and [N/2, N) separately (N even, Tiling::halves), so that the two halves of a symmetric
// initialisation are summed in mirrored order (see forward).
struct TilePlan {
  Index n = 0, N = 0, sample_tile = 0;
  std::vector<std::pair<Index, Index>> particle_tiles;  // (start, size)
  Index first_of_second_half = 0;

  // Sign masks: each particle tile's row of bits takes sign_words(nj) words, the tile's first
  // word in a sample's row is sign_word_start[jt], and a sample's row takes sign_words_per_sample.
  std::vector<Index> sign_word_start;
  Index sign_words_per_sample = 0;

  TilePlan(Index n_, Index N_, const Tiling& t, Index k = 1) : n(n_), N(N_), sample_tile(t.samples) {
    const Index half = t.halves && N % 2 == 0 ? N / 2 : N;
    for (Index j0 = 0; j0 < half; j0 += t.particles) particle_tiles.emplace_back(j0, std::min(t.particles, half - j0));
    first_of_second_half = static_cast<Index>(particle_tiles.size());
    for (Index j0 = half; j0 < N; j0 += t.particles) particle_tiles.emplace_back(j0, std::min(t.particles, N - j0));
    for (const auto& tile : particle_tiles) {
      sign_word_start.push_back(sign_words_per_sample);
      sign_words_per_sample += sign_words(tile.second);
    }
    const Index tiles = static_cast<Index>(particle_tiles.size());
    const Index per_half = std::max(first_of_second_half, tiles - first_of_second_half);
    // at most kMaxGroupsPerHalf groups, fewer when n k is large: the groups' sums (G n k values)
    // stay within 2 kGroupSumsPerHalf values
    const Index max_groups = std::clamp<Index>(kGroupSumsPerHalf / std::max<Index>(1, n * k), 1, kMaxGroupsPerHalf);
    group_tiles = std::max(kGroupTiles, (per_half + max_groups - 1) / max_groups);
    add_groups(forward_groups, 0, first_of_second_half);
    first_group_of_second_half = static_cast<Index>(forward_groups.size());
    add_groups(forward_groups, first_of_second_half, tiles);
    add_groups(jvp_groups, 0, tiles);
  }

  // Groups of consecutive particle tiles: forward and jvp run (sample tile x group) pieces in
  // parallel, each group's sum apart, and add the groups' sums in order, so that more threads than
  // sample tiles share the work. The groups never depend on the thread count.
  // forward's groups never straddle the halves; a network of at most kGroupTiles tiles per half
  // (N <= 4096) has one group per half, and the order of sums of a single pass over the tiles.
  // The groups depend on n k too, which bounds their sums' memory.
  static constexpr Index kGroupTiles = 16, kMaxGroupsPerHalf = 64, kGroupSumsPerHalf = Index(1) << 22;
  Index group_tiles = 0, first_group_of_second_half = 0;
  std::vector<std::pair<Index, Index>> forward_groups, jvp_groups;  // [first tile, end tile)
  void add_groups(std::vector<std::pair<Index, Index>>& groups, Index begin, Index end) const {
    for (Index g0 = begin; g0 < end; g0 += group_tiles) groups.emplace_back(g0, std::min(end, g0 + group_tiles));
  }
  Index sample_tiles() const { return num_tiles(n, sample_tile); }
  // The cached tile of samples [i0, i0 + ni) x particles [j0, j0 + nj): contiguous, row-major.
  template <class T> static T* cache_tile(T* cache, Index i0, Index ni, Index j0, Index N) {
    return cache + i0 * N + j0 * ni;
  }
  static Index sign_words(Index nj) { return (nj + 63) / 64; }
  // The sign bits of tile (samples [i0, i0 + ni), particle tile jt): ni rows of sign_words(nj) words.
  std::uint64_t* sign_tile(std::uint64_t* signs, Index i0, Index ni, Index jt) const {
    return signs + i0 * sign_words_per_sample + sign_word_start[jt] * ni;
  }
};

// Whether the passes of activation Act with k outputs take the sign-mask path (see above).
template <class Act> constexpr bool uses_sign_mask(Index k) { return Act::homogeneous && Act::step_derivative && k == 1; }

// Per-thread scratch space for one tile, allocated once and reused by every pass.
template <class T> struct TileWorkspace {
  RowMat<T> Z, D, U, acc;
  Vec<T> tangent, tangent_bias;  // the sign-mask jvp's combined tangent of a particle tile (nj x d, nj)
  Vec<T> column_sum;
  // The SIMD kernels' buffers (simd.hpp): a packed tile, row sums and lanes, V transposed and s,
  // sign bits.
  Vec<T> simd_packed, simd_out, simd_lanes, simd_vt, simd_s;
  std::vector<std::uint64_t> simd_bits;
  void reserve(const Tiling& t, Index k) {
    if (Z.rows() < t.samples || Z.cols() < t.particles) {
      Z.resize(t.samples, t.particles);
      D.resize(t.samples, t.particles);
      U.resize(t.samples, t.particles);
      column_sum.resize(t.particles);
    }
    if (acc.rows() < t.samples || acc.cols() < k) acc.resize(t.samples, std::max<Index>(k, 1));
  }
  Tile<T> tile(RowMat<T>& M, Index rows, Index cols) {
    return Tile<T>(M.data(), rows, cols, Eigen::OuterStride<>(M.cols()));
  }
};

// At least `size` elements of `buffer`, grown if needed (aligned: from the first 64-byte boundary).
template <class T, class Buffer> T* sized(Buffer& buffer, Index size, bool aligned = false) {
  const Index slack = aligned ? 64 / static_cast<Index>(sizeof(T)) : 0;
  if (static_cast<Index>(buffer.size()) < size + slack) buffer.resize(size + slack);
  T* data = buffer.data();
  if (aligned) data += (slack - reinterpret_cast<std::uintptr_t>(data) / sizeof(T) % slack) % slack;
  return data;
}

template <class T> struct Workspaces {
  std::vector<TileWorkspace<T>> per_thread;
  Vec<T> packed, group_sums;  // the SIMD passes' packed particle tiles; the sums of the tile groups
  Tiling tiling;
  void reserve(int threads, Index k) {
    if (static_cast<int>(per_thread.size()) < threads) per_thread.resize(threads);
    for (auto& w : per_thread) w.reserve(tiling, k);
  }
};

// Pre-activation cache: `write` makes forward store Z (sigma(Z) for derivative_from_value
// activations); `read` makes vjp / jvp use it. The
// sign-mask passes store and read only the signs of Z, in `signs` (TilePlan::sign_tile layout,
// n sign_words_per_sample words); the other passes use `data` (n N values).
template <class T> struct ZCache {
  T* data = nullptr;
  std::uint64_t* signs = nullptr;
  bool write = false, read = false;
};

namespace detail {

// Z = X_I W_J^T (+ b_J) for rows [i0, i0 + ni) of X and particles [j0, j0 + nj).
template <class T>
void preactivation(Tile<T> Z, const T* X, const T* W, const T* b, Index d, Index i0, Index ni, Index j0, Index nj) {
  CMapMat<T> XI(X + i0 * d, ni, d);
  CMapMat<T> WJ(W + j0 * d, nj, d);
  Z.noalias() = XI * WJ.transpose();
  if (b) Z.rowwise() += CMapVec<T>(b + j0, nj).transpose();
}

// The tile's pre-activations: from the cache when it holds them, else computed into Z (and
// stored when the cache holds Z).
template <class T>
CTile<T> preactivation_tile(const ZCache<T>& cache, Tile<T> Z, const Particles<T>& p, const T* X, Index i0, Index ni,
                            Index j0, Index nj) {
  if (cache.read && cache.data)
    return CTile<T>(TilePlan::cache_tile(cache.data, i0, ni, j0, p.N), ni, nj, Eigen::OuterStride<>(nj));
  preactivation<T>(Z, X, p.W, p.b, p.d, i0, ni, j0, nj);
  if (cache.write && cache.data) Tile<T>(TilePlan::cache_tile(cache.data, i0, ni, j0, p.N), ni, nj, Eigen::OuterStride<>(nj)) = Z;
  return CTile<T>(Z.data(), ni, nj, Eigen::OuterStride<>(Z.outerStride()));
}

// The tile's values sigma(Z) (in S, or the cache's tile) and, when `derivative`, sigma'(Z) in D:
// from the cache of values of a derivative_from_value activation, else by activating the
// pre-activations (cached or computed). With cache.write, the values (or Z) go to the cache.
template <class T, class Act>
CTile<T> activated_tile(const Act& act, const ZCache<T>& cache, Tile<T> S, Tile<T> D, const Particles<T>& p,
                        const T* X, Index i0, Index ni, Index j0, Index nj, bool derivative) {
  if constexpr (derivative_from_value<Act>) {
    if (cache.data && (cache.read || cache.write)) {
      T* tile = TilePlan::cache_tile(cache.data, i0, ni, j0, p.N);
      if (cache.read) {
        if (derivative)
          for (Index r = 0; r < ni; ++r) derivative_from_value_row<Act>(tile + r * nj, &D(r, 0), nj);
        return CTile<T>(tile, ni, nj, Eigen::OuterStride<>(nj));
      }
      ZCache<T> no_cache;
      activate<T>(act, preactivation_tile(no_cache, S, p, X, i0, ni, j0, nj), S, D, derivative);
      Tile<T>(tile, ni, nj, Eigen::OuterStride<>(nj)) = S;
      return CTile<T>(S.data(), ni, nj, Eigen::OuterStride<>(S.outerStride()));
    }
  }
  activate<T>(act, preactivation_tile(cache, S, p, X, i0, ni, j0, nj), S, D, derivative);
  return CTile<T>(S.data(), ni, nj, Eigen::OuterStride<>(S.outerStride()));
}

// out += the column sums of D, each taken in the order of Eigen's vectorised colwise().sum():
// row 0, then groups of four rows added pairwise, then the rows left, one by one. Eigen itself
// sums the columns before the output's first aligned packet in another order (its scalar
// path), so that its result depends on where the output lies in memory; this does not.
template <class T> void add_column_sums(const Tile<T>& D, T* out, T* sum) {
  const Index rows = D.rows(), cols = D.cols(), groups_end = (rows - 1) & ~Index(3);
  for (Index c = 0; c < cols; ++c) sum[c] = D(0, c);
  Index r = 1;
  for (; r < groups_end; r += 4)
    for (Index c = 0; c < cols; ++c) sum[c] += (D(r, c) + D(r + 1, c)) + (D(r + 2, c) + D(r + 3, c));
  for (; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) sum[c] += D(r, c);
  for (Index c = 0; c < cols; ++c) out[c] += sum[c];
}

// The bits 1[z_c > 0] of a row of nj values, bit c % 64 of word c / 64.
template <class T> void pack_signs(const T* z, Index nj, std::uint64_t* bits) {
  for (Index w0 = 0; w0 < nj; w0 += 64) {
    const Index m = std::min<Index>(64, nj - w0);
    std::uint64_t word = 0;
    for (Index c = 0; c < m; ++c) word |= static_cast<std::uint64_t>(z[w0 + c] > T(0)) << c;
    bits[w0 / 64] = word;
  }
}

// out_c = 1[z_c > 0] v for a row, the signs from the bits of pack_signs or, with bits null, from z.
template <class T> void masked_row(const std::uint64_t* bits, const T* z, T v, Index nj, T* __restrict out) {
  if (bits)
    for (Index c = 0; c < nj; ++c) out[c] = (bits[c >> 6] >> (c & 63)) & 1u ? v : T(0);
  else
    for (Index c = 0; c < nj; ++c) out[c] = z[c] > T(0) ? v : T(0);
}

// Sums over particles in kLanes interleaved partial sums (element c into lane c % kLanes), added
// in a fixed order at the end: the loop vectorises and the result does not depend on threads.
constexpr int kLanes = 8;
template <class T> T sum_lanes(const T (&lane)[kLanes]) {
  return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

// sum_c a_c max(z_c, 0) (relu's forward row).
template <class T> T relu_dot(const T* __restrict z, const T* __restrict a, Index nj) {
  T lane[kLanes] = {};
  Index c = 0;
  for (; c + kLanes <= nj; c += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += (z[c + l] > T(0) ? z[c + l] : T(0)) * a[c + l];
  for (int l = 0; l < kLanes; ++l)
    if (c + l < nj) lane[l] += (z[c + l] > T(0) ? z[c + l] : T(0)) * a[c + l];
  return sum_lanes(lane);
}

// sum_c 1[z_c > 0] u_c, the signs from bits or, with bits null, from z (the sign-mask jvp's row).
template <class T> T masked_sum(const std::uint64_t* bits, const T* __restrict z, const T* __restrict u, Index nj) {
  T lane[kLanes] = {};
  Index c = 0;
  if (bits) {
    for (; c + kLanes <= nj; c += kLanes)
      for (int l = 0; l < kLanes; ++l) lane[l] += (bits[(c + l) >> 6] >> ((c + l) & 63)) & 1u ? u[c + l] : T(0);
    for (int l = 0; l < kLanes; ++l)
      if (c + l < nj) lane[l] += (bits[(c + l) >> 6] >> ((c + l) & 63)) & 1u ? u[c + l] : T(0);
  } else {
    // u times 0 or 1 (a select here is miscompiled by GCC 12's loop vectoriser, -O3 -march=native)
    for (; c + kLanes <= nj; c += kLanes)
      for (int l = 0; l < kLanes; ++l) lane[l] += u[c + l] * static_cast<T>(z[c + l] > T(0));
    for (int l = 0; l < kLanes; ++l)
      if (c + l < nj) lane[l] += u[c + l] * static_cast<T>(z[c + l] > T(0));
  }
  return sum_lanes(lane);
}

// The signs of samples [i0, i0 + ni) x particle tile jt: the cached bits when the cache holds
// them, else the pre-activations (from the cache or computed into w.Z) with their row stride.
template <class T> struct TileSigns {
  const std::uint64_t* bits = nullptr;
  const T* z = nullptr;
  Index z_stride = 0;
};

template <class T>
TileSigns<T> tile_signs(const Particles<T>& p, const T* X, const TilePlan& plan, Index i0, Index ni, Index jt,
                        TileWorkspace<T>& w, const ZCache<T>& cache) {
  TileSigns<T> m;
  m.bits = cache.read && cache.signs ? plan.sign_tile(cache.signs, i0, ni, jt) : nullptr;
  if (!m.bits) {
    const auto [j0, nj] = plan.particle_tiles[jt];
    const CTile<T> Z = preactivation_tile(cache, w.tile(w.Z, ni, nj), p, X, i0, ni, j0, nj);
    m.z = Z.data();
    m.z_stride = Z.outerStride();
  }
  return m;
}

// The sign-mask vjp of particle tile jt (k = 1): V_j and s_j summed over the sample tiles in
// order, V in gW and s in gA, then gA_j = <w_j, V_j> + b_j s_j, gb_j = a_j s_j, gW_j = a_j V_j.
// With SIMD kernels K, V and s come from the sign bits and X without a tile of masked residuals.
template <class T>
void sign_mask_vjp_tile(const Particles<T>& p, const T* X, Index n, const T* R, const ParticleVec<T>& g,
                        const TilePlan& plan, Index jt, TileWorkspace<T>& w, const ZCache<T>& cache,
                        const SignKernels<T>* K) {
  const auto [j0, nj] = plan.particle_tiles[jt];
  const Index words = TilePlan::sign_words(nj);
  MapMat<T> V(g.W + j0 * p.d, nj, p.d);
  T* s = g.a + j0;
  if (K) {
    const Index ldv = backward_stride(nj);
    T* VT = sized<T>(w.simd_vt, p.d * ldv);
    T* sums = sized<T>(w.simd_s, ldv);
    std::fill(VT, VT + p.d * ldv, T(0));
    std::fill(sums, sums + ldv, T(0));
    const bool cached = cache.read && cache.signs;
    T* packed = nullptr;  // W's tile, packed for the signs when the cache does not hold them
    if (!cached) {
      packed = sized<T>(w.simd_packed, K->packed_size(nj, p.d), true);
      K->pack(p.W + j0 * p.d, nullptr, p.b ? p.b + j0 : nullptr, nj, p.d, packed);
    }
    for (Index i0 = 0; i0 < n; i0 += plan.sample_tile) {
      const Index ni = std::min(plan.sample_tile, n - i0);
      const std::uint64_t* bits = cached ? plan.sign_tile(cache.signs, i0, ni, jt) : nullptr;
      if (!bits) {
        std::uint64_t* own = sized<std::uint64_t>(w.simd_bits, ni * words);
        K->signs(X + i0 * p.d, ni, p.d, packed, nj, p.b != nullptr, own, words);
        bits = own;
      }
      K->backward(X + i0 * p.d, ni, p.d, R + i0, bits, words, nj, VT, ldv, sums);
    }
    for (Index c = 0; c < nj; ++c) {
      s[c] = sums[c];
      for (Index e = 0; e < p.d; ++e) V(c, e) = VT[e * ldv + c];
    }
  } else {
    for (Index i0 = 0; i0 < n; i0 += plan.sample_tile) {
      const Index ni = std::min(plan.sample_tile, n - i0);
      Tile<T> D = w.tile(w.D, ni, nj);
      const auto m = tile_signs(p, X, plan, i0, ni, jt, w, cache);
      for (Index r = 0; r < ni; ++r) {
        T* dr = &D(r, 0);
        masked_row(m.bits ? m.bits + r * words : nullptr, m.z + r * m.z_stride, R[i0 + r], nj, dr);
        for (Index c = 0; c < nj; ++c) s[c] += dr[c];
      }
      V.noalias() += D.transpose() * CMapMat<T>(X + i0 * p.d, ni, p.d);
    }
  }
  for (Index c = 0; c < nj; ++c) {
    const T sc = s[c], aj = p.a[j0 + c];
    const T* wj = p.W + (j0 + c) * p.d;
    T* vj = g.W + (j0 + c) * p.d;
    T dot = T(0);  // in index order (Eigen's dot would order by the rows' alignment)
    for (Index e = 0; e < p.d; ++e) dot += wj[e] * vj[e];
    s[c] = dot + (p.b ? p.b[j0 + c] * sc : T(0));
    if (g.b) g.b[j0 + c] = aj * sc;
    for (Index e = 0; e < p.d; ++e) vj[e] *= aj;
  }
}

// The sign-mask jvp's combined tangent u_j = tA_j w_j + a_j tW_j, c_j = tA_j b_j + a_j tb_j, for
// the portable and the SIMD paths, with std::fma so that every build rounds it alike.
template <class T>
void sum_tangent(const Particles<T>& p, const Particles<T>& t, Index j0, Index nj, T* U, T* c) {
  for (Index j = 0; j < nj; ++j) {
    const T ta = t.a ? t.a[j0 + j] : T(0), aj = p.a[j0 + j];
    const T* wj = p.W + (j0 + j) * p.d;
    const T* twj = t.W ? t.W + (j0 + j) * p.d : nullptr;
    for (Index e = 0; e < p.d; ++e) U[j * p.d + e] = twj ? std::fma(aj, twj[e], ta * wj[e]) : ta * wj[e];
    if (p.b) c[j] = t.W && t.b ? std::fma(aj, t.b[j0 + j], ta * p.b[j0 + j]) : ta * p.b[j0 + j];
  }
}

// The sign-mask jvp of samples [i0, i0 + ni) and particle tile jt (k = 1): acc_i += sum_j m_ij
// (<u_j, x_i> + c_j) with the combined tangent u_j = tA_j w_j + a_j tW_j, c_j = tA_j b_j + a_j tb_j.
template <class T, class Acc>
void sign_mask_jvp_tile(const Particles<T>& p, const T* X, const Particles<T>& t, const TilePlan& plan, Index i0,
                        Index ni, Index jt, TileWorkspace<T>& w, const ZCache<T>& cache, Acc& acc) {
  const auto [j0, nj] = plan.particle_tiles[jt];
  const Index words = TilePlan::sign_words(nj);
  T* U = sized<T>(w.tangent, nj * p.d);
  T* ub = sized<T>(w.tangent_bias, nj);
  sum_tangent(p, t, j0, nj, U, ub);
  const auto m = tile_signs(p, X, plan, i0, ni, jt, w, cache);
  Tile<T> G = w.tile(w.D, ni, nj);
  preactivation<T>(G, X, U, p.b ? ub : nullptr, p.d, i0, ni, 0, nj);
  for (Index r = 0; r < ni; ++r)
    acc(r, 0) += masked_sum(m.bits ? m.bits + r * words : nullptr, m.z + r * m.z_stride, &G(r, 0), nj);
}

// The sums over particles of forward and jvp (out, n x k): body(it, g, acc, w, packed) adds the
// tiles of group g for sample tile it into acc (ni x k, zero), for every (it, g) in parallel;
// then out_i = the sums of groups [0, second) added in order, plus those of [second, G).
// With per_tile > 0 each particle tile is first packed once by pack(jt, P, w) into per_tile
// elements, in blocks of whole groups of at most kPackedBlockBytes (at least one group), and
// packed(jt) gives its tile while its block runs.
constexpr Index kPackedBlockBytes = Index(16) << 20;

template <class T, class Pack, class Body>
void grouped_pass(const TilePlan& plan, const std::vector<std::pair<Index, Index>>& groups, Index second, Index n,
                  Index k, T* out, Workspaces<T>& ws, int threads, Index per_tile, Pack pack, Body body) {
  const Index G = static_cast<Index>(groups.size()), sample_tiles = plan.sample_tiles();
  T* sums = sized<T>(ws.group_sums, G * n * k);
  const Index tiles_per_block = per_tile > 0 ? std::max<Index>(plan.group_tiles, kPackedBlockBytes /
                                    (per_tile * static_cast<Index>(sizeof(T))) / plan.group_tiles * plan.group_tiles)
                                             : static_cast<Index>(plan.particle_tiles.size());
  T* packed = per_tile > 0 ? sized<T>(ws.packed, std::min<Index>(tiles_per_block, static_cast<Index>(plan.particle_tiles.size())) * per_tile, true) : nullptr;
  for (Index g0 = 0; g0 < G;) {  // one block of whole groups
    Index g1 = g0 + 1;
    while (g1 < G && groups[g1].second - groups[g0].first <= tiles_per_block) ++g1;
    const Index first_tile = groups[g0].first, end_tile = groups[g1 - 1].second;
    const auto packed_tile = [&](Index jt) { return packed + (jt - first_tile) * per_tile; };
    const Index items = sample_tiles * (g1 - g0);
#pragma omp parallel num_threads(threads) if (threads > 1 && (items > 1 || per_tile > 0))
    {
      auto& w = ws.per_thread[omp_get_thread_num()];
      if (per_tile > 0) {
#pragma omp for schedule(static)
        for (Index jt = first_tile; jt < end_tile; ++jt) pack(jt, packed_tile(jt), w);
      }
#pragma omp for schedule(dynamic, 1)
      for (Index item = 0; item < items; ++item) {
        const Index g = g0 + item / sample_tiles, it = item % sample_tiles;
        const Index i0 = it * plan.sample_tile, ni = std::min(plan.sample_tile, n - i0);
        auto acc = w.acc.topLeftCorner(ni, k);
        acc.setZero();
        body(it, g, acc, w, packed_tile);
        MapMat<T>(sums + (g * n + i0) * k, ni, k) = acc;
      }
    }
    g0 = g1;
  }
  const Index nk = n * k;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && nk * G > kParallelMin)
  for (Index i = 0; i < nk; ++i) {
    T first = T(0), rest = T(0);
    for (Index g = 0; g < second; ++g) first += sums[g * nk + i];
    for (Index g = second; g < G; ++g) rest += sums[g * nk + i];
    out[i] = first + rest;
  }
}

// No packing.
struct NoPack {
  template <class... Args> void operator()(Args&&...) const {}
};

// The sign-mask forward and jvp with SIMD kernels (simd.hpp), each particle tile packed once per
// pass; the groups and their order as in the portable passes.
template <class T>
void simd_forward(const SignKernels<T>& K, const Particles<T>& p, const T* X, Index n, T* F, const TilePlan& plan,
                  Workspaces<T>& ws, int threads, const ZCache<T>& cache) {
  grouped_pass<T>(
      plan, plan.forward_groups, plan.first_group_of_second_half, n, 1, F, ws, threads,
      K.packed_size(ws.tiling.particles, p.d),
      [&](Index jt, T* P, TileWorkspace<T>&) {
        const auto [j0, nj] = plan.particle_tiles[jt];
        K.pack(p.W + j0 * p.d, p.a + j0, p.b ? p.b + j0 : nullptr, nj, p.d, P);
      },
      [&](Index it, Index g, auto& acc, TileWorkspace<T>& w, const auto& packed) {
        const Index i0 = it * plan.sample_tile, ni = acc.rows();
        T* out = sized<T>(w.simd_out, ni);
        T* lanes = sized<T>(w.simd_lanes, lanes_size(ni));
        for (Index jt = plan.forward_groups[g].first; jt < plan.forward_groups[g].second; ++jt) {
          const Index nj = plan.particle_tiles[jt].second;
          std::uint64_t* bits = cache.write && cache.signs ? plan.sign_tile(cache.signs, i0, ni, jt) : nullptr;
          K.relu_forward(X + i0 * p.d, ni, p.d, packed(jt), nj, p.b != nullptr, out, bits, TilePlan::sign_words(nj),
                         lanes);
          for (Index r = 0; r < ni; ++r) acc(r, 0) += out[r];
        }
      });
}

template <class T>
void simd_jvp(const SignKernels<T>& K, const Particles<T>& p, const T* X, Index n, const Particles<T>& t, T* O,
              const TilePlan& plan, Workspaces<T>& ws, int threads, const ZCache<T>& cache) {
  const bool cached = cache.read && cache.signs;
  const Index one = K.packed_size(ws.tiling.particles, p.d);  // the tangent's tile, then W's for the signs
  grouped_pass<T>(
      plan, plan.jvp_groups, static_cast<Index>(plan.jvp_groups.size()), n, 1, O, ws, threads,
      cached ? one : 2 * one,
      [&](Index jt, T* P, TileWorkspace<T>& w) {
        const auto [j0, nj] = plan.particle_tiles[jt];
        T* U = sized<T>(w.tangent, nj * p.d);
        T* c = sized<T>(w.tangent_bias, nj);
        sum_tangent(p, t, j0, nj, U, c);
        K.pack(U, nullptr, p.b ? c : nullptr, nj, p.d, P);
        if (!cached) K.pack(p.W + j0 * p.d, nullptr, p.b ? p.b + j0 : nullptr, nj, p.d, P + one);
      },
      [&](Index it, Index g, auto& acc, TileWorkspace<T>& w, const auto& packed) {
        const Index i0 = it * plan.sample_tile, ni = acc.rows();
        T* out = sized<T>(w.simd_out, ni);
        T* lanes = sized<T>(w.simd_lanes, lanes_size(ni));
        for (Index jt = plan.jvp_groups[g].first; jt < plan.jvp_groups[g].second; ++jt) {
          const Index nj = plan.particle_tiles[jt].second, words = TilePlan::sign_words(nj);
          const std::uint64_t* bits = cached ? plan.sign_tile(cache.signs, i0, ni, jt) : nullptr;
          if (!bits) {
            std::uint64_t* own = sized<std::uint64_t>(w.simd_bits, ni * words);
            K.signs(X + i0 * p.d, ni, p.d, packed(jt) + one, nj, p.b != nullptr, own, words);
            bits = own;
          }
          K.masked_sum(X + i0 * p.d, ni, p.d, packed(jt), nj, p.b != nullptr, bits, words, out, lanes);
          for (Index r = 0; r < ni; ++r) acc(r, 0) += out[r];
        }
      });
}

}  // namespace detail

// The sum over particles is taken over the two halves separately, each tiled from its own
// start, and the halves are added last. A symmetric initialisation (the second half the first
// with a negated) then gives F = 0 exactly: rounding is odd under negation.
template <class T, class Act>
void forward(const Act& act, const Particles<T>& p, const T* X, Index n, T* F, Workspaces<T>& ws, int threads,
             ZCache<T> cache = {}) {
  const TilePlan plan(n, p.N, ws.tiling, p.k);
  ws.reserve(threads, p.k);
  cache.read = false;
  if (const SignKernels<T>* K = uses_sign_mask<Act>(p.k) && !cache.data ? sign_kernels<T>() : nullptr) {
    detail::simd_forward(*K, p, X, n, F, plan, ws, threads, cache);
    return;
  }
  const auto body = [&](Index it, Index g, auto& sum, TileWorkspace<T>& w, const auto&) {
    const Index i0 = it * plan.sample_tile, ni = sum.rows();
    for (Index jt = plan.forward_groups[g].first; jt < plan.forward_groups[g].second; ++jt) {
      const auto [j0, nj] = plan.particle_tiles[jt];
      Tile<T> S = w.tile(w.Z, ni, nj);
      Tile<T> scratch = w.tile(w.D, ni, nj);
      if constexpr (uses_sign_mask<Act>(1)) {
        if (p.k == 1) {  // relu: the signs into the cache, sum_j a_j max(z_ij, 0) in lanes
          std::uint64_t* bits = cache.write && cache.signs ? plan.sign_tile(cache.signs, i0, ni, jt) : nullptr;
          const Index words = TilePlan::sign_words(nj);
          const CTile<T> Z = detail::preactivation_tile(cache, S, p, X, i0, ni, j0, nj);
          for (Index r = 0; r < ni; ++r) {
            const T* z = Z.data() + r * Z.outerStride();
            if (bits) detail::pack_signs(z, nj, bits + r * words);
            sum(r, 0) += detail::relu_dot(z, p.a + j0, nj);
          }
          continue;
        }
      }
      const CTile<T> V = detail::activated_tile(act, cache, S, scratch, p, X, i0, ni, j0, nj, false);
      if (p.k == 1) {  // one output: each row's dot product with a
        const T* a = p.a + j0;
        for (Index r = 0; r < ni; ++r) {
          const T* s = V.data() + r * V.outerStride();
          T dot = T(0);
          for (Index c = 0; c < nj; ++c) dot += s[c] * a[c];
          sum(r, 0) += dot;
        }
      } else {
        sum.noalias() += V * CMapMat<T>(p.a + j0 * p.k, nj, p.k);
      }
    }
  };
  detail::grouped_pass<T>(plan, plan.forward_groups, plan.first_group_of_second_half, n, p.k, F, ws, threads, 0,
                          detail::NoPack{}, body);
}

// gA, gW, gb receive J^T R; gb may be null (then the bias part is skipped). Only the particle tiles
// [tile_begin, tile_end) of the plan are computed (tile_end < 0: to the last), the others left as
// they are: a vjp in several calls over consecutive tile ranges gives the numbers of one call.
template <class T, class Act>
void vjp(const Act& act, const Particles<T>& p, const T* X, Index n, const T* R, const ParticleVec<T>& g,
         Workspaces<T>& ws, int threads, ZCache<T> cache = {}, Index tile_begin = 0, Index tile_end = -1) {
  const TilePlan plan(n, p.N, ws.tiling);
  ws.reserve(threads, p.k);
  const Index tiles = static_cast<Index>(plan.particle_tiles.size());
  const Index last = tile_end < 0 ? tiles : std::min(tile_end, tiles);
  cache.write = false;
  const SignKernels<T>* K = uses_sign_mask<Act>(p.k) && !cache.data ? sign_kernels<T>() : nullptr;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (last - tile_begin > 1)
  for (Index jt = tile_begin; jt < last; ++jt) {
    auto& w = ws.per_thread[omp_get_thread_num()];
    const auto [j0, nj] = plan.particle_tiles[jt];
    MapMat<T> gA(g.a + j0 * p.k, nj, p.k);
    MapMat<T> gW(g.W + j0 * p.d, nj, p.d);
    CMapMat<T> AJ(p.a + j0 * p.k, nj, p.k);
    gA.setZero();
    gW.setZero();
    if (g.b) MapVec<T>(g.b + j0, nj).setZero();
    if constexpr (uses_sign_mask<Act>(1)) {
      if (p.k == 1) {
        detail::sign_mask_vjp_tile(p, X, n, R, g, plan, jt, w, cache, K);
        continue;
      }
    }
    for (Index i0 = 0; i0 < n; i0 += plan.sample_tile) {
      const Index ni = std::min(plan.sample_tile, n - i0);
      Tile<T> S = w.tile(w.Z, ni, nj);
      Tile<T> D = w.tile(w.D, ni, nj);
      const CTile<T> V = detail::activated_tile(act, cache, S, D, p, X, i0, ni, j0, nj, true);
      CMapMat<T> RI(R + i0 * p.k, ni, p.k);
      CMapMat<T> XI(X + i0 * p.d, ni, p.d);
      if (p.k == 1) {  // one output: gA, gb and D = <R_i, a_j> sigma'(z_ij) row by row
        const T* a = p.a + j0;
        T* ga = g.a + j0;
        T* gb = g.b ? g.b + j0 : nullptr;
        for (Index r = 0; r < ni; ++r) {
          const T* s = V.data() + r * V.outerStride();
          T* dd = &D(r, 0);
          const T rr = R[i0 + r];
          for (Index c = 0; c < nj; ++c) {
            ga[c] += rr * s[c];
            dd[c] *= rr * a[c];
          }
          if (gb)
            for (Index c = 0; c < nj; ++c) gb[c] += dd[c];
        }
      } else {
        Tile<T> RA = w.tile(w.U, ni, nj);
        RA.noalias() = RI * AJ.transpose();  // <R_i, a_j>
        D.array() *= RA.array();
        gA.noalias() += V.transpose() * RI;
        if (g.b) detail::add_column_sums(D, g.b + j0, w.column_sum.data());
      }
      gW.noalias() += D.transpose() * XI;
    }
  }
}

// O = J t. Parts of the tangent may be null: t.a null skips the second-layer part,
// t.W null skips the first-layer part (t.b is read only with t.W).
template <class T, class Act>
void jvp(const Act& act, const Particles<T>& p, const T* X, Index n, const Particles<T>& t, T* O, Workspaces<T>& ws,
         int threads, ZCache<T> cache = {}) {
  const TilePlan plan(n, p.N, ws.tiling, p.k);
  ws.reserve(threads, p.k);
  cache.write = false;
  if (const SignKernels<T>* K = uses_sign_mask<Act>(p.k) && !cache.data ? sign_kernels<T>() : nullptr) {
    detail::simd_jvp(*K, p, X, n, t, O, plan, ws, threads, cache);
    return;
  }
  const auto body = [&](Index it, Index g, auto& acc, TileWorkspace<T>& w, const auto&) {
    const Index i0 = it * plan.sample_tile, ni = acc.rows();
    for (Index jt = plan.jvp_groups[g].first; jt < plan.jvp_groups[g].second; ++jt) {
      if constexpr (uses_sign_mask<Act>(1)) {
        if (p.k == 1) {
          detail::sign_mask_jvp_tile(p, X, t, plan, i0, ni, jt, w, cache, acc);
          continue;
        }
      }
      const auto [j0, nj] = plan.particle_tiles[jt];
      Tile<T> S = w.tile(w.Z, ni, nj);
      Tile<T> D = w.tile(w.D, ni, nj);
      Tile<T> U = w.tile(w.U, ni, nj);
      const CTile<T> V = detail::activated_tile(act, cache, S, D, p, X, i0, ni, j0, nj, t.W != nullptr);
      if (t.a) acc.noalias() += V * CMapMat<T>(t.a + j0 * p.k, nj, p.k);
      if (t.W) {
        detail::preactivation<T>(U, X, t.W, p.b ? t.b : nullptr, p.d, i0, ni, j0, nj);
        D.array() *= U.array();
        acc.noalias() += D * CMapMat<T>(p.a + j0 * p.k, nj, p.k);
      }
    }
  };
  detail::grouped_pass<T>(plan, plan.jvp_groups, static_cast<Index>(plan.jvp_groups.size()), n, p.k, O, ws, threads,
                          0, detail::NoPack{}, body);
}

}  // namespace mfntk
