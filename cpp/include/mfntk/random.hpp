// Counter-based Gaussian noise: the draw for (seed, step, index) is a pure function of the
// three, so Langevin noise is the same whatever the thread count or the chunking of a run.
#pragma once

#include <cmath>
#include <cstdint>

namespace mfntk {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Key of one step's stream: every index of that step is hashed with it.
inline std::uint64_t noise_key(std::uint64_t seed, std::uint64_t step) {
  return splitmix64(splitmix64(seed) ^ splitmix64(step ^ 0x632be59bd9b4e019ULL));
}

// Standard normal by Box-Muller from two 53-bit uniforms hashed from (key, index).
inline double standard_normal(std::uint64_t key, std::uint64_t index) {
  const std::uint64_t h1 = splitmix64(key + 2 * index);
  const std::uint64_t h2 = splitmix64(key + 2 * index + 1);
  const double u1 = (static_cast<double>(h1 >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(h2 >> 11) * 0x1.0p-53;          // [0, 1)
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace mfntk
