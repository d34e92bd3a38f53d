// The empirical tangent kernel K_mu of the particles (SPEC 4). With k outputs it is matrix-valued,
// one k x k block per pair of points:
//   K_pq(x, x') = (1/N) sum_j [ delta_pq s_j(x) s_j(x') + a_jp a_jq s'_j(x) s'_j(x') (<x, x'> + [bias]) ]
// kinds (kKernelKinds): rf (first term), nt (second term), ntk (both).
// outputs (kKernelOutputs):
//   mean   : the (n1, n2) kernel (1/k) sum_p K_pp
//              = (1/N) sum_j [ s_j(x) s_j(x') + (|a_j|^2 / k) s'_j(x) s'_j(x') (<x, x'> + [bias]) ],
//            the kernel of one output; as N -> infinity (components of a_j independent, E a_p^2 = a_std^2)
//            K_pq -> delta_pq K_inf, and this is K_inf's estimate. For k = 1 it is K itself.
//   matrix : the (n1 k, n2 k) matrix with entry (i k + p, l k + q) = K_pq(x_i, x'_l), the kernel of the
//            residual dynamics and of the linearized model. For k = 1 it is `mean`, computed the same way.
//
// Both computations run in units of work that any sequence of advance() calls goes through in one fixed
// order, each unit's arithmetic independent of how the units are grouped into calls and of the thread
// count: a caller can stop between calls (Ctrl-C) and the result is bit-identical to one call.
//   EmpiricalGram   : units (particle tile, row of output blocks); every output block is summed over the
//                     particle tiles in order by one thread. Symmetric case: only blocks on or above the
//                     diagonal, mirrored at the end. Memory O(n1 n2 k^2 + (n1 + n2) tile), no n x N matrix.
//                     The mean output's products run in the packed SIMD kernel (simd.hpp) where there is
//                     one, each tile's factors packed once; the matrix output's in Eigen's GEMM.
//   EmpiricalMatvec : K(Xr, Xc) V without forming K, column by column: g = J_c^T v over particle tiles,
//                     then J_r g over sample tiles; O((nr + nc) N d) per column. For K(X, X) with the
//                     sign-mask passes (relu, one output per product) a caller may keep the signs of
//                     X W^T (n N bits) between products: then each pass is one GEMM, not two.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "network.hpp"
#include "policy_list.hpp"
#include "simd.hpp"

namespace mfntk {

// The kinds of tangent kernel (SPEC 4), by the terms they keep. `kKernelKinds` is the registry.
struct KernelKind {
  const char* name;
  bool second_layer;  // s(x) s(x'): the random-features kernel
  bool first_layer;   // a_p a_q s'(x) s'(x') (<x, x'> + [bias]): the neural-tangent part
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

// The forms of a kernel's result for k outputs. `kKernelOutputs` is the registry.
struct KernelOutput {
  const char* name;
  bool matrix;  // the (n1 k, n2 k) matrix-valued kernel; otherwise the (n1, n2) mean over outputs
};

inline constexpr KernelOutput kKernelOutputs[] = {
    {"mean", false},
    {"matrix", true},
};

inline KernelOutput parse_kernel_output(std::string_view name) {
  constexpr std::size_t count = std::size(kKernelOutputs);
  std::array<const char*, count> names{};
  for (std::size_t i = 0; i < count; ++i) {
    if (name == kKernelOutputs[i].name) return kKernelOutputs[i];
    names[i] = kKernelOutputs[i].name;
  }
  unknown_name("output", name, names);
}

// Rows (or columns) of a kernel's result on n points.
inline Index kernel_rows(KernelOutput output, Index n, Index k) { return output.matrix ? n * k : n; }

namespace detail {

// For one particle tile: S = sigma(X W_J^T + b_J), D = sigma'(...), and, when DA is given,
// DA = D diag(a2_J).
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

// A(i k + p, c) = D(i0 + i, c) a(j0 + c, p) for i < ni, c < nj: the rows of the first-layer
// Jacobian factor of points [i0, i0 + ni), one per output.
template <class T>
void weighted_rows(const RowMat<T>& D, Index i0, Index ni, const T* a, Index j0, Index nj, Index k, RowMat<T>& A) {
  for (Index i = 0; i < ni; ++i) {
    const T* dr = D.data() + (i0 + i) * D.cols();
    for (Index p = 0; p < k; ++p) {
      T* ar = A.data() + (i * k + p) * A.cols();
      const T* ap = a + j0 * k + p;
      for (Index c = 0; c < nj; ++c) ar[c] = dr[c] * ap[c * k];
    }
  }
}

}  // namespace detail

// The empirical Gram matrix K(X1, X2) (X2 null: K(X1, X1), symmetric), written into K: (n1, n2) for the
// mean output, (n1 k, n2 k) for the matrix output. The particles, inputs and K must outlive the object.
template <class T> class EmpiricalGram {
 public:
  EmpiricalGram(ActivationId act, double c0, const Particles<T>& p, const T* X1, Index n1, const T* X2, Index n2,
                KernelKind kind, KernelOutput output, T* K, int threads, Index particle_tile = 256,
                Index out_tile = 256)
      : act_(act), c0_(c0), p_(p), X1_(X1), X2_(X2), n1_(n1), n2_(n2), kind_(kind), K_(K), threads_(threads),
        ptile_(particle_tile), sym_(X2 == nullptr), matrix_(output.matrix && p.k > 1) {
    if (threads < 1) throw std::invalid_argument("threads: must be at least 1");
    if (sym_) { X2_ = X1_; n2_ = n1_; }
    const Index k = matrix_ ? p.k : 1;
    rows_ = n1_ * k;
    cols_ = n2_ * k;
    // Blocks of points; with the matrix output a block of points is a (points k)-row block of K.
    otile_ = matrix_ ? std::max<Index>(1, out_tile / k) : out_tile;
    t1_ = num_tiles(n1_, otile_);
    const Index t2 = num_tiles(n2_, otile_);
    row_start_.assign(1, 0);
    for (Index bi = 0; bi < t1_; ++bi) {
      for (Index bj = sym_ ? bi : 0; bj < t2; ++bj) blocks_.emplace_back(bi, bj);
      row_start_.push_back(static_cast<Index>(blocks_.size()));
    }
    ptiles_ = num_tiles(p.N, ptile_);
    const bool rf = kind.second_layer, nt = kind.first_layer;
    zero(K_, rows_, cols_);
    if (matrix_) {
      // K accumulates the first-layer sums; the second-layer ones (one per pair of points) go to Kpart_.
      if (rf) zero(Kpart_, n1_, n2_);
      if (nt) {
        scratch_.resize(2 * threads);
        for (auto& A : scratch_) A.resize(otile_ * k, ptile_);
      }
    } else {
      // K accumulates the second-layer sums, Kpart_ the first-layer ones.
      a2_ = CMapMat<T>(p.a, p.N, p.k).rowwise().squaredNorm();
      if (p.k > 1) a2_ /= static_cast<T>(p.k);
      if (nt) zero(Kpart_, n1_, n2_);
      if (nt) DA1_.resize(n1_, ptile_);
    }
    S1_.resize(n1_, ptile_);
    D1_.resize(n1_, ptile_);
    if (!sym_) { S2_.resize(n2_, ptile_); D2_.resize(n2_, ptile_); }
    // The mean output's products by the packed SIMD kernel, when there is one and the blocks of
    // points are whole panels; fixed here so that every unit takes the same path.
    prod_ = matrix_ ? nullptr : product_kernels<T>();
    if (prod_ && otile_ % prod_->panel != 0) prod_ = nullptr;
    if (prod_) {
      if (rf) packS1_.resize(t1_ * prod_->rows_size(otile_, ptile_));
      if (nt) packDA1_.resize(t1_ * prod_->rows_size(otile_, ptile_));
      if (rf) packS2_.resize(prod_->packed_size(n2_, ptile_));
      if (nt) packD2_.resize(prod_->packed_size(n2_, ptile_));
    }
  }

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index units() const { return ptiles_ * t1_; }
  Index done() const { return done_; }
  bool finished() const { return finished_; }

  // Process the next `count` units (fewer when fewer remain).
  void advance(Index count) {
    if (finished_) throw std::logic_error("EmpiricalGram: already finished");
    with_activation(act_, c0_, [&](auto act) {
      while (count > 0 && done_ < units()) {
        const Index jt = done_ / t1_, bi0 = done_ % t1_, bi1 = std::min(t1_, bi0 + count);
        if (features_of_ != jt) features(act, jt);
        accumulate(jt, row_start_[bi0], row_start_[bi1]);
        count -= bi1 - bi0;
        done_ += bi1 - bi0;
      }
    });
  }

  // After the last unit: scale, add the parts, mirror. K then holds the kernel.
  void finish() {
    if (done_ != units()) throw std::logic_error("EmpiricalGram: finish before the last unit");
    if (finished_) return;
    if (matrix_) finish_matrix();
    else finish_mean();
    if (sym_) mirror_upper();
    finished_ = true;
  }

 private:
  ActivationId act_;
  double c0_;
  Particles<T> p_;
  const T *X1_, *X2_;
  Index n1_, n2_;
  KernelKind kind_;
  T* K_;
  int threads_;
  Index ptile_, otile_ = 0, t1_ = 0, ptiles_ = 0, rows_ = 0, cols_ = 0;
  bool sym_, matrix_, finished_ = false;
  Index done_ = 0, features_of_ = -1;
  std::vector<std::pair<Index, Index>> blocks_;  // (block row, block column), row by row
  std::vector<Index> row_start_;                 // blocks of row bi: [row_start_[bi], row_start_[bi + 1])
  Vec<T> a2_;                                    // mean output: |a_j|^2 / k
  RowMat<T> Kpart_, S1_, D1_, DA1_, S2_, D2_;
  std::vector<RowMat<T>> scratch_;               // matrix output: two factor tiles per thread
  const ProductKernels<T>* prod_ = nullptr;      // mean output: the SIMD products, or null (Eigen's)
  Vec<T> packS1_, packDA1_, packS2_, packD2_;   // with prod_: the factors packed (first by block of points)

  Index tile_size(Index jt) const { return std::min(ptile_, p_.N - jt * ptile_); }

  // Rows x cols zeros, rows shared among the threads (so are the pages, on first touch).
  void zero(T* A, Index rows, Index cols) const {
#pragma omp parallel for schedule(static) num_threads(threads_) if (rows * cols > (Index(1) << 16))
    for (Index i = 0; i < rows; ++i) std::fill_n(A + i * cols, cols, T(0));
  }
  void zero(RowMat<T>& A, Index rows, Index cols) const {
    A.resize(rows, cols);
    zero(A.data(), rows, cols);
  }

  // K's strict lower triangle from its upper one, in square blocks (both sides in cache).
  void mirror_upper() {
    constexpr Index B = 64;
    const Index tiles = num_tiles(rows_, B);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (tiles > 1)
    for (Index bi = 0; bi < tiles; ++bi)
      for (Index bc = 0; bc <= bi; ++bc)
        for (Index i = bi * B; i < std::min(rows_, (bi + 1) * B); ++i)
          for (Index c = bc * B; c < std::min(i, (bc + 1) * B); ++c) K_[i * cols_ + c] = K_[c * cols_ + i];
  }

  template <class Act> void features(const Act& act, Index jt) {
    const Index j0 = jt * ptile_, nj = tile_size(jt);
    const bool nt_mean = kind_.first_layer && !matrix_;
    detail::features_tile(act, p_, a2_.data(), X1_, n1_, j0, nj, S1_, D1_, nt_mean ? &DA1_ : nullptr, otile_,
                          threads_);
    if (!sym_) detail::features_tile<T>(act, p_, nullptr, X2_, n2_, j0, nj, S2_, D2_, nullptr, otile_, threads_);
    if (prod_) pack_factors(nj);
    features_of_ = jt;
  }

  // The factors of the current tile packed for prod_: S1 and DA1 by block of points, each in
  // blocks of rows; S2 and D2 in panels (a block of points is whole panels).
  void pack_factors(Index nj) {
    const RowMat<T>& S2r = sym_ ? S1_ : S2_;
    const RowMat<T>& D2r = sym_ ? D1_ : D2_;
    const Index t2 = num_tiles(n2_, otile_), first = prod_->rows_size(otile_, nj);
#pragma omp parallel for schedule(static) num_threads(threads_) if (t1_ + t2 > 1)
    for (Index t = 0; t < t1_ + t2; ++t) {
      if (t < t1_) {
        const Index i0 = t * otile_, ni = std::min(otile_, n1_ - i0);
        if (packS1_.size())
          prod_->pack_rows(S1_.data() + i0 * S1_.cols(), S1_.cols(), ni, nj, packS1_.data() + t * first);
        if (packDA1_.size())
          prod_->pack_rows(DA1_.data() + i0 * DA1_.cols(), DA1_.cols(), ni, nj, packDA1_.data() + t * first);
      } else {
        const Index k0 = (t - t1_) * otile_, nk = std::min(otile_, n2_ - k0);
        if (packS2_.size()) prod_->pack(S2r.data() + k0 * S2r.cols(), S2r.cols(), nk, nj, packS2_.data() + k0 * nj);
        if (packD2_.size()) prod_->pack(D2r.data() + k0 * D2r.cols(), D2r.cols(), nk, nj, packD2_.data() + k0 * nj);
      }
    }
  }

  void accumulate(Index jt, Index b0, Index b1) {
    const Index j0 = jt * ptile_, nj = tile_size(jt), nb = b1 - b0, k = p_.k;
    const bool rf = kind_.second_layer, nt = kind_.first_layer;
    const RowMat<T>& S2r = sym_ ? S1_ : S2_;
    const RowMat<T>& D2r = sym_ ? D1_ : D2_;
    MapMat<T> Kout(K_, rows_, cols_);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (nb > 1)
    for (Index b = b0; b < b1; ++b) {
      const Index i0 = blocks_[b].first * otile_, ni = std::min(otile_, n1_ - i0);
      const Index k0 = blocks_[b].second * otile_, nk = std::min(otile_, n2_ - k0);
      if (prod_) {
        const bool upper = sym_ && blocks_[b].first == blocks_[b].second;
        const Index first = blocks_[b].first * prod_->rows_size(otile_, nj);
        if (rf)
          prod_->product(packS1_.data() + first, ni, nj, packS2_.data() + k0 * nj, nk, K_ + i0 * cols_ + k0, cols_,
                         upper);
        if (nt)
          prod_->product(packDA1_.data() + first, ni, nj, packD2_.data() + k0 * nj, nk, Kpart_.data() + i0 * n2_ + k0,
                         n2_, upper);
        continue;
      }
      if (!matrix_) {
        if (rf)
          Kout.block(i0, k0, ni, nk).noalias() += S1_.block(i0, 0, ni, nj) * S2r.block(k0, 0, nk, nj).transpose();
        if (nt)
          Kpart_.block(i0, k0, ni, nk).noalias() += DA1_.block(i0, 0, ni, nj) * D2r.block(k0, 0, nk, nj).transpose();
        continue;
      }
      if (rf)
        Kpart_.block(i0, k0, ni, nk).noalias() += S1_.block(i0, 0, ni, nj) * S2r.block(k0, 0, nk, nj).transpose();
      if (nt) {
        RowMat<T>& A = scratch_[2 * omp_get_thread_num()];
        RowMat<T>& B = scratch_[2 * omp_get_thread_num() + 1];
        detail::weighted_rows(D1_, i0, ni, p_.a, j0, nj, k, A);
        detail::weighted_rows(D2r, k0, nk, p_.a, j0, nj, k, B);
        Kout.block(i0 * k, k0 * k, ni * k, nk * k).noalias() +=
            A.topLeftCorner(ni * k, nj) * B.topLeftCorner(nk * k, nj).transpose();
      }
    }
  }

  // A block's Gram part <x, x'> + [bias], (ni, nk).
  RowMat<T> gram_part(Index i0, Index ni, Index k0, Index nk) const {
    RowMat<T> G = CMapMat<T>(X1_ + i0 * p_.d, ni, p_.d) * CMapMat<T>(X2_ + k0 * p_.d, nk, p_.d).transpose();
    G.array() += p_.bias() ? T(1) : T(0);
    return G;
  }

  void finish_mean() {
    const T invN = T(1) / static_cast<T>(p_.N);
    const Index nblocks = static_cast<Index>(blocks_.size());
    MapMat<T> Kout(K_, rows_, cols_);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (nblocks > 1)
    for (Index b = 0; b < nblocks; ++b) {
      const Index i0 = blocks_[b].first * otile_, ni = std::min(otile_, n1_ - i0);
      const Index k0 = blocks_[b].second * otile_, nk = std::min(otile_, n2_ - k0);
      auto Kb = Kout.block(i0, k0, ni, nk);
      if (kind_.first_layer) Kb.array() += gram_part(i0, ni, k0, nk).array() * Kpart_.block(i0, k0, ni, nk).array();
      Kb *= invN;
    }
  }

  void finish_matrix() {
    const T invN = T(1) / static_cast<T>(p_.N);
    const Index nblocks = static_cast<Index>(blocks_.size()), k = p_.k;
    const bool rf = kind_.second_layer, nt = kind_.first_layer;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (nblocks > 1)
    for (Index b = 0; b < nblocks; ++b) {
      const Index i0 = blocks_[b].first * otile_, ni = std::min(otile_, n1_ - i0);
      const Index k0 = blocks_[b].second * otile_, nk = std::min(otile_, n2_ - k0);
      RowMat<T> G;
      if (nt) G = gram_part(i0, ni, k0, nk);
      for (Index i = 0; i < ni; ++i)
        for (Index p = 0; p < k; ++p) {
          T* row = K_ + ((i0 + i) * k + p) * cols_ + k0 * k;
          for (Index l = 0; l < nk; ++l)
            for (Index q = 0; q < k; ++q) {
              const T second = rf && p == q ? Kpart_(i0 + i, k0 + l) : T(0);
              const T first = nt ? G(i, l) * row[l * k + q] : T(0);
              row[l * k + q] = invN * (second + first);
            }
        }
    }
  }
};

// KV = K(Xr, Xc) V without forming K (Xr null: Xc): V is (nc, m) and KV (nr, m) for the mean output,
// (nc k, m) and (nr k, m) for the matrix output, rows ordered as the matrix kernel's (i k + p).
// Column by column, K v = (1/N) J_r (J_c^T v): for the matrix output J is the network's Jacobian; for
// the mean output J_c has a_j = 1 and J_r has a_j = |a_j|^2 / k (both with one output).
// Units: per column, the particle tiles of the vjp, then the sample tiles of the jvp.
// The sign cache (`signs`, sign_cache_words() words, or null): when `signs_ready` it holds the
// signs of X W^T (+ b) and both passes read them; otherwise a first pass over the sample tiles
// writes them (units before the first column's). Either way the result is the same, bit for bit.
template <class T> class EmpiricalMatvec {
 public:
  EmpiricalMatvec(ActivationId act, double c0, const Particles<T>& p, const T* Xr, Index nr, const T* Xc, Index nc,
                  const T* V, Index m, KernelKind kind, KernelOutput output, T* KV, int threads, Tiling tiling = {},
                  std::uint64_t* signs = nullptr, bool signs_ready = false)
      : act_(act), c0_(c0), p_(p), Xr_(Xr ? Xr : Xc), Xc_(Xc), nr_(Xr ? nr : nc), nc_(nc), V_(V), m_(m),
        kind_(kind), KV_(KV), threads_(threads), matrix_(output.matrix && p.k > 1) {
    if (threads < 1) throw std::invalid_argument("threads: must be at least 1");
    ws_.tiling = tiling;
    kk_ = matrix_ ? p.k : 1;
    if (signs) {
      if (Xr || sign_cache_words(act, p.N, p.k, output, nc, tiling) == 0)
        throw std::invalid_argument("signs: a sign cache needs K(X, X) with relu and one output per product");
      signs_ = signs;
      fill_tiles_ = signs_ready ? 0 : num_tiles(nc_, tiling.samples);
    }
    if (!matrix_) {
      ones_ = Vec<T>::Ones(p.N);
      a2_ = CMapMat<T>(p.a, p.N, p.k).rowwise().squaredNorm();
      if (p.k > 1) a2_ /= static_cast<T>(p.k);
    }
    vjp_tiles_ = static_cast<Index>(TilePlan(nc_, p.N, tiling).particle_tiles.size());
    jvp_tiles_ = num_tiles(nr_, tiling.samples);
    g_.resize(particle_size(p.N, p.d, kk_, p.bias()));
    v_.resize(nc_ * kk_);
    out_.resize(nr_ * kk_);
  }

  // Words of the sign cache of K(X, X) V on n points, or 0 where the passes do not take the sign-mask
  // path (then no cache applies).
  static Index sign_cache_words(ActivationId act, Index N, Index k, KernelOutput output, Index n,
                                Tiling tiling = {}) {
    const bool masked = with_activation(act, 0.0, [&](auto a) { return uses_sign_mask<decltype(a)>(output.matrix ? k : 1); });
    return masked ? n * TilePlan(n, N, tiling).sign_words_per_sample : 0;
  }

  Index units() const { return fill_tiles_ + m_ * (vjp_tiles_ + jvp_tiles_); }
  Index done() const { return done_; }

  void advance(Index count) {
    const Index per_column = vjp_tiles_ + jvp_tiles_;
    const T invN = T(1) / static_cast<T>(p_.N);
    const Index words = signs_ ? TilePlan(nc_, p_.N, ws_.tiling).sign_words_per_sample : 0;
    const Particles<T> pc = matrix_ ? p_ : Particles<T>{ones_.data(), p_.W, p_.b, p_.N, p_.d, 1};
    const Particles<T> pr = matrix_ ? p_ : Particles<T>{a2_.data(), p_.W, p_.b, p_.N, p_.d, 1};
    const ParticleVec<T> gv = particle_vec(g_.data(), p_.N, p_.d, kk_, p_.bias());
    const Particles<T> t{kind_.second_layer ? gv.a : nullptr, kind_.first_layer ? gv.W : nullptr, gv.b, p_.N,
                         p_.d, kk_};
    ZCache<T> read;
    read.signs = signs_;
    read.read = signs_ != nullptr;
    with_activation(act_, c0_, [&](auto act) {
      while (count > 0 && done_ < units()) {
        Index todo;
        if (done_ < fill_tiles_) {  // the signs of sample tiles [done_, done_ + todo), by a forward pass
          todo = std::min(count, fill_tiles_ - done_);
          const Index r0 = done_ * ws_.tiling.samples, r1 = std::min(nc_, (done_ + todo) * ws_.tiling.samples);
          ZCache<T> write;
          write.signs = signs_ + r0 * words;
          write.write = true;
          forward(act, pc, Xc_ + r0 * p_.d, r1 - r0, out_.data() + r0, ws_, threads_, write);
          count -= todo;
          done_ += todo;
          continue;
        }
        const Index c = (done_ - fill_tiles_) / per_column, u = (done_ - fill_tiles_) % per_column;
        if (u < vjp_tiles_) {  // g = J_c^T v on particle tiles [u, u + todo)
          if (u == 0)
            for (Index i = 0; i < nc_ * kk_; ++i) v_[i] = V_[i * m_ + c];
          todo = std::min(count, vjp_tiles_ - u);
          vjp(act, pc, Xc_, nc_, v_.data(), gv, ws_, threads_, read, u, u + todo);
        } else {  // J_r g on sample tiles [s, s + todo)
          const Index s = u - vjp_tiles_;
          todo = std::min(count, jvp_tiles_ - s);
          const Index r0 = s * ws_.tiling.samples, r1 = std::min(nr_, (s + todo) * ws_.tiling.samples);
          ZCache<T> rows = read;
          if (signs_) rows.signs = signs_ + r0 * words;
          jvp(act, pr, Xr_ + r0 * p_.d, r1 - r0, t, out_.data() + r0 * kk_, ws_, threads_, rows);
          for (Index i = r0 * kk_; i < r1 * kk_; ++i) KV_[i * m_ + c] = invN * out_[i];
        }
        count -= todo;
        done_ += todo;
      }
    });
  }

 private:
  ActivationId act_;
  double c0_;
  Particles<T> p_;
  const T *Xr_, *Xc_;
  Index nr_, nc_;
  const T* V_;
  Index m_;
  KernelKind kind_;
  T* KV_;
  int threads_;
  bool matrix_;
  Index kk_ = 1, vjp_tiles_ = 0, jvp_tiles_ = 0, fill_tiles_ = 0, done_ = 0;
  std::uint64_t* signs_ = nullptr;
  Vec<T> ones_, a2_, g_, v_, out_;
  Workspaces<T> ws_;
};

}  // namespace mfntk
