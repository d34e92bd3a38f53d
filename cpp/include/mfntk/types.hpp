// Shared array types and views. Every array is row-major and contiguous, so numpy arrays
// map onto these views without a copy.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

namespace mfntk {

using Index = Eigen::Index;

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T> using MapMat = Eigen::Map<RowMat<T>>;
template <class T> using CMapMat = Eigen::Map<const RowMat<T>>;
template <class T> using MapVec = Eigen::Map<Vec<T>>;
template <class T> using CMapVec = Eigen::Map<const Vec<T>>;

// The particles theta_j = (a_j in R^k, w_j in R^d, b_j): a is (N, k), W is (N, d), b is (N,) or null.
template <class T> struct Particles {
  const T* a;
  const T* W;
  const T* b;
  Index N, d, k;
  bool bias() const { return b != nullptr; }
};

// A mutable vector in particle space (a field, a gradient, a tangent), laid out like Particles.
template <class T> struct ParticleVec {
  T* a;
  T* W;
  T* b;
  Index N, d, k;
  Particles<T> view() const { return {a, W, b, N, d, k}; }
};

// Number of scalars in one particle-space vector: N k + N d (+ N with bias).
inline Index particle_size(Index N, Index d, Index k, bool bias) { return N * k + N * d + (bias ? N : 0); }

// Views into a flat buffer holding [a | W | b] in that order.
template <class T> ParticleVec<T> particle_vec(T* flat, Index N, Index d, Index k, bool bias) {
  return {flat, flat + N * k, bias ? flat + N * k + N * d : nullptr, N, d, k};
}
template <class T> Particles<T> particles(const T* flat, Index N, Index d, Index k, bool bias) {
  return {flat, flat + N * k, bias ? flat + N * k + N * d : nullptr, N, d, k};
}

// Fixed tile sizes. They never depend on the thread count, so every sum is taken in the
// same order whatever the number of threads: results are bit-identical.
struct Tiling {
  Index samples = 256;
  Index particles = 128;
  // Tile the halves [0, N/2) and [N/2, N) of an even N separately (network.hpp): the passes
  // of a whole network. A chunk of a sharded network (shard.hpp) lies in one half: false.
  bool halves = true;
};

inline Index num_tiles(Index n, Index tile) { return (n + tile - 1) / tile; }

// Element-wise loops shorter than this run on one thread: waking a team costs more.
constexpr Index kParallelMin = 1 << 15;

}  // namespace mfntk
