// Particles cut into fixed chunks, so that a run gives the same numbers whether one process
// holds every particle or several processes (MPI ranks) each hold some of the chunks.
//
// The chunks depend on the width N and the chunk size only: a network of at most `chunk`
// particles is one chunk (the whole network, its passes exactly those of network.hpp); a
// larger one is cut into pieces of `chunk` particles taken from the start of each half
// [0, N/2) and [N/2, N) (N even; else of [0, N)), the halves of a symmetric initialisation.
// The chunk size is a multiple of the particle tile, so a chunk's tiles are the whole
// network's tiles and the per-particle pass (vjp) gives the same numbers chunked or not.
//
// A process holds a contiguous range of chunks (a shard). Every sum over particles (forward,
// jvp) is taken per chunk; the partial sums of all chunks are gathered on every process
// (Exchange) and combined in one fixed order: a pairwise tree over the chunks of each half,
// then the first half's sum plus the second's. The order depends on neither the number of
// processes nor of threads, and a symmetric initialisation still gives f = 0 exactly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "network.hpp"
#include "types.hpp"

namespace mfntk {

// The fixed chunks of N particles and the range [begin, end) of them this process holds.
struct Shard {
  Index N = 0, chunk = 0;
  std::vector<std::pair<Index, Index>> chunks;  // (global start, size)
  Index first_of_second_half = 0;               // chunks [0, this) form the first half's sum
  Index begin = 0, end = 0;                     // the chunks held here

  Shard() = default;
  // end < 0: to the last chunk.
  Shard(Index N_, Index chunk_, Index begin_ = 0, Index end_ = -1) : N(N_), chunk(chunk_) {
    const Index tile = Tiling{}.particles;
    if (N <= 0) throw std::invalid_argument("width: must be positive");
    if (chunk <= 0 || chunk % tile != 0)
      throw std::invalid_argument("particle_chunk: must be a positive multiple of " + std::to_string(tile));
    if (N <= chunk) {
      chunks.emplace_back(0, N);
      first_of_second_half = 1;
    } else {
      const Index half = N % 2 == 0 ? N / 2 : N;
      for (Index j0 = 0; j0 < half; j0 += chunk) chunks.emplace_back(j0, std::min(chunk, half - j0));
      first_of_second_half = static_cast<Index>(chunks.size());
      for (Index j0 = half; j0 < N; j0 += chunk) chunks.emplace_back(j0, std::min(chunk, N - j0));
    }
    const Index count = static_cast<Index>(chunks.size());
    begin = begin_;
    end = end_ < 0 ? count : end_;
    if (begin < 0 || begin > end || end > count)
      throw std::invalid_argument("shard: chunks [" + std::to_string(begin) + ", " + std::to_string(end) +
                                  ") outside the " + std::to_string(count) + " chunks");
  }

  Index count() const { return static_cast<Index>(chunks.size()); }
  Index local_chunks() const { return end - begin; }
  bool whole() const { return count() == 1; }  // one chunk: the passes of the whole network
  // The particles held here: global [particle_begin(), particle_end()).
  Index particle_begin() const { return begin < count() ? chunks[begin].first : N; }
  Index particle_end() const { return end > begin ? chunks[end - 1].first + chunks[end - 1].second : particle_begin(); }
  Index local_width() const { return particle_end() - particle_begin(); }

  // The tiling of a chunk's passes: a whole network tiles its halves separately (network.hpp),
  // a chunk lies in one half.
  Tiling tiling(Tiling t) const {
    t.halves = whole();
    return t;
  }

  // The start of each held chunk's sign words in a sample's row of the relu pre-activation
  // cache, and (last entry) the words of a row: local_chunks() + 1 values.
  std::vector<Index> sign_word_offsets(const Tiling& t) const {
    std::vector<Index> offsets{0};
    for (Index c = begin; c < end; ++c)
      offsets.push_back(offsets.back() + TilePlan(0, chunks[c].second, tiling(t)).sign_words_per_sample);
    return offsets;
  }

  // out = the fixed-order sum of the partials of every chunk (count() blocks of m values).
  template <class T> void combine(const T* partials, Index m, T* out, int threads) const {
    const Index h = first_of_second_half, C = count();
#pragma omp parallel for schedule(static) num_threads(threads) if (m * C > kParallelMin)
    for (Index e = 0; e < m; ++e) {
      T s = tree_sum(partials, m, e, 0, h);
      if (h < C) s = s + tree_sum(partials, m, e, h, C);
      out[e] = s;
    }
  }

 private:
  template <class T> static T tree_sum(const T* partials, Index m, Index e, Index lo, Index hi) {
    if (hi - lo == 1) return partials[lo * m + e];
    const Index mid = lo + (hi - lo) / 2;
    return tree_sum(partials, m, e, lo, mid) + tree_sum(partials, m, e, mid, hi);
  }
};

// How the processes of a sharded run share what couples them. The default is one process
// holding every chunk.
template <class T> class Exchange {
 public:
  virtual ~Exchange() = default;
  // all (shard.count() blocks of m values, in chunk order) = every process's partials; `local`
  // holds this process's shard.local_chunks() blocks.
  virtual void gather(const Shard& shard, const T* local, Index m, T* all) {
    std::memcpy(all, local, sizeof(T) * static_cast<std::size_t>(shard.local_chunks() * m));
  }
  // Whether `ok` holds on every process.
  virtual bool all(bool ok) { return ok; }
};

// The passes of network.hpp over the chunks a shard holds. `p` holds the shard's particles
// (p.N = shard.local_width()); the caches, when given, hold each chunk's tiles in its own
// block (chunk_cache).
template <class T> class ShardedPasses {
 public:
  ShardedPasses(const Shard& shard, Exchange<T>* exchange, const Tiling& tiling = {})
      : shard_(shard), exchange_(exchange), sign_words_(shard.sign_word_offsets(tiling)) {}

  const Shard& shard() const { return shard_; }
  void set_exchange(Exchange<T>* exchange) { exchange_ = exchange; }
  // Words per sample of the relu pre-activation cache of the shard's chunks.
  Index sign_words_per_sample() const { return sign_words_.back(); }

  // F (n, k) = the fixed-order sum over all chunks of sum_j a_j sigma(z_ij).
  template <class Act>
  void forward(const Act& act, const Particles<T>& p, const T* X, Index n, T* F, Workspaces<T>& ws, int threads,
               ZCache<T> cache = {}) {
    reduce(n * p.k, F, threads, [&](Index c, const Particles<T>& q, T* out) {
      with_tiling(ws, [&] { mfntk::forward(act, q, X, n, out, ws, threads, chunk_cache(cache, c, n)); });
    }, p);
  }

  // O (n, k) = J t, summed as forward.
  template <class Act>
  void jvp(const Act& act, const Particles<T>& p, const T* X, Index n, const Particles<T>& t, T* O, Workspaces<T>& ws,
           int threads, ZCache<T> cache = {}) {
    reduce(n * p.k, O, threads, [&](Index c, const Particles<T>& q, T* out) {
      const Index j0 = local_start(c);
      const Particles<T> tc{t.a ? t.a + j0 * p.k : nullptr, t.W ? t.W + j0 * p.d : nullptr,
                            t.b ? t.b + j0 : nullptr, q.N, q.d, q.k};
      with_tiling(ws, [&] { mfntk::jvp(act, q, X, n, tc, out, ws, threads, chunk_cache(cache, c, n)); });
    }, p);
  }

  // g = J^T R on the shard's particles (no sum over particles: nothing to exchange).
  template <class Act>
  void vjp(const Act& act, const Particles<T>& p, const T* X, Index n, const T* R, const ParticleVec<T>& g,
           Workspaces<T>& ws, int threads, ZCache<T> cache = {}) {
    for (Index c = shard_.begin; c < shard_.end; ++c) {
      const Index j0 = local_start(c);
      const ParticleVec<T> gc{g.a + j0 * p.k, g.W + j0 * p.d, g.b ? g.b + j0 : nullptr, chunk_size(c), p.d, p.k};
      with_tiling(ws, [&] { mfntk::vjp(act, chunk(p, c), X, n, R, gc, ws, threads, chunk_cache(cache, c, n)); });
    }
  }

 private:
  Shard shard_;
  Exchange<T>* exchange_;
  std::vector<Index> sign_words_;  // Shard::sign_word_offsets
  Exchange<T> local_;
  std::vector<T> partials_, all_;

  Index local_start(Index c) const { return shard_.chunks[c].first - shard_.particle_begin(); }
  Index chunk_size(Index c) const { return shard_.chunks[c].second; }
  Particles<T> chunk(const Particles<T>& p, Index c) const {
    const Index j0 = local_start(c);
    return {p.a + j0 * p.k, p.W + j0 * p.d, p.b ? p.b + j0 : nullptr, chunk_size(c), p.d, p.k};
  }

  template <class Fn> void with_tiling(Workspaces<T>& ws, Fn&& fn) const {
    const Tiling saved = ws.tiling;
    ws.tiling = shard_.tiling(saved);
    fn();
    ws.tiling = saved;
  }

  // Chunk c's block of the cache: its n x size values, or its sign words, after those of the
  // chunks before it in the shard.
  ZCache<T> chunk_cache(ZCache<T> cache, Index c, Index n) const {
    if (cache.data) cache.data += n * local_start(c);
    if (cache.signs) cache.signs += n * sign_words_[c - shard_.begin];
    return cache;
  }

  // out (m values) = the combined sum of pass(c, chunk particles, partial) over all chunks.
  template <class Pass> void reduce(Index m, T* out, int threads, Pass&& pass, const Particles<T>& p) {
    const Index local = shard_.local_chunks();
    if (shard_.whole() && local == 1 && exchange_ == nullptr) {  // one process, one chunk: the network's own pass
      pass(shard_.begin, chunk(p, shard_.begin), out);
      return;
    }
    partials_.resize(static_cast<std::size_t>(std::max<Index>(local, 1) * m));
    for (Index c = shard_.begin; c < shard_.end; ++c) pass(c, chunk(p, c), partials_.data() + (c - shard_.begin) * m);
    all_.resize(static_cast<std::size_t>(shard_.count() * m));
    (exchange_ ? exchange_ : &local_)->gather(shard_, partials_.data(), m, all_.data());
    shard_.combine(all_.data(), m, out, threads);
  }
};

}  // namespace mfntk
