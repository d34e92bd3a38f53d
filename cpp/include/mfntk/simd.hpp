// Hand-written SIMD micro-kernels of the sign-mask passes (relu, one output; network.hpp) and of
// the empirical Gram's products (empirical_kernel.hpp), chosen at run time from the CPU: AVX-512
// or AVX2 + FMA, each compiled for its instruction set whatever the build's flags, so a portable
// build (MFNTK_NATIVE=OFF) runs them too. Elsewhere, and when set_simd(Simd::portable) asks for
// it, they take the portable Eigen path.
//
// A forward tile is one fused kernel: the pre-activations of (rows x a panel of particles) stay
// in registers, from W packed once per pass, and the epilogue takes relu, the a-weighted row sums
// and the sign bits; Z is never stored. The backward kernel reads the sign bits and X only: V_j =
// sum_i r_i m_ij x_i and s_j = sum_i r_i m_ij, no n x N matrix of masked residuals.
// The Gram's product C += A B^T keeps (rows x a panel of points) of sums in registers over packed
// factors (simd_product_kernels.inc).
// The AVX2 and AVX-512 kernels give the same numbers (simd_sign_kernels.inc); the portable path
// sums in another order (Eigen's GEMM, other lanes), so it differs in the last bits.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "types.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#define MFNTK_X86_SIMD 1
#include <immintrin.h>
#else
#define MFNTK_X86_SIMD 0
#endif

#define MFNTK_ALWAYS_INLINE inline __attribute__((always_inline))

namespace mfntk {

enum class Simd : int { portable = 0, avx2 = 1, avx512 = 2 };

inline const char* simd_name(Simd s) {
  switch (s) {
    case Simd::avx512: return "avx512";
    case Simd::avx2: return "avx2";
    default: return "portable";
  }
}

// The kernels of one instruction set for scalar T (simd_sign_kernels.inc). The forward-shaped
// kernels take a particle tile packed by `pack` (packed_size elements, 64-byte aligned) and
// `lanes`, room for ni x 16 values.
template <class T> struct SignKernels {
  const char* name;
  Index (*packed_size)(Index nj, Index d);
  // W (nj x d), a and b (either may be null) of a particle tile into P.
  void (*pack)(const T* W, const T* a, const T* b, Index nj, Index d, T* P);
  // out_r = sum_j a_j max(z_rj, 0) over the tile; the sign bits into bits (rows of `words`) if not null.
  void (*relu_forward)(const T* X, Index ni, Index d, const T* P, Index nj, bool bias, T* out, std::uint64_t* bits,
                       Index words, T* lanes);
  // The sign bits 1[z_rj > 0] alone.
  void (*signs)(const T* X, Index ni, Index d, const T* P, Index nj, bool bias, std::uint64_t* bits, Index words);
  // out_r = sum_j m_rj (<u_j, x_r> + c_j), m from the bits, (u, c) packed as (W, b).
  void (*masked_sum)(const T* X, Index ni, Index d, const T* P, Index nj, bool bias, const std::uint64_t* bits,
                     Index words, T* out, T* lanes);
  // VT[e][j] += sum_r m_rj r_r X[r][e], s[j] += sum_r m_rj r_r (VT: d x ldv, ldv >= nj rounded up to 32).
  void (*backward)(const T* X, Index ni, Index d, const T* r, const std::uint64_t* bits, Index words, Index nj, T* VT,
                   Index ldv, T* s);
};

// The packed product C += A B^T of the empirical Gram (simd_product_kernels.inc): B's rows packed
// in panels of `panel` rows by `pack` (packed_size elements), A's in blocks of the register tile's
// rows by `pack_rows` (rows_size elements).
template <class T> struct ProductKernels {
  const char* name;
  Index panel;
  Index (*packed_size)(Index rows, Index k);
  // B (rows x k, row stride ldb) into P.
  void (*pack)(const T* B, Index ldb, Index rows, Index k, T* P);
  Index (*rows_size)(Index rows, Index k);
  // A (rows x k, row stride lda) into Q.
  void (*pack_rows)(const T* A, Index lda, Index rows, Index k, T* Q);
  // C (ni x nc, row stride ldc) += A B^T from Q and P; upper: only C's entries on and above its
  // diagonal are needed (a diagonal block of a symmetric result).
  void (*product)(const T* Q, Index ni, Index k, const T* P, Index nc, T* C, Index ldc, bool upper);
};

// Room for the kernels' row lanes of ni samples.
inline Index lanes_size(Index ni) { return 16 * ni; }

// The particle stride of the backward kernel's VT and s: nj rounded up to the widest panel.
inline Index backward_stride(Index nj) { return (nj + 31) / 32 * 32; }

#if MFNTK_X86_SIMD

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace simd_avx2 {

// A 64-byte vector as two 32-byte halves, so that the lanes are those of the AVX-512 kernels.
struct VD {
  using T = double;
  struct R { __m256d lo, hi; };
  static constexpr int L = 8;
  static MFNTK_ALWAYS_INLINE R zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static MFNTK_ALWAYS_INLINE R set1(T x) { const __m256d v = _mm256_set1_pd(x); return {v, v}; }
  static MFNTK_ALWAYS_INLINE R load(const T* p) { return {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}; }
  static MFNTK_ALWAYS_INLINE void store(T* p, R v) { _mm256_storeu_pd(p, v.lo); _mm256_storeu_pd(p + 4, v.hi); }
  static MFNTK_ALWAYS_INLINE R fmadd(R a, R b, R c) { return {_mm256_fmadd_pd(a.lo, b.lo, c.lo), _mm256_fmadd_pd(a.hi, b.hi, c.hi)}; }
  static MFNTK_ALWAYS_INLINE R add(R a, R b) { return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)}; }
  static MFNTK_ALWAYS_INLINE R max0(R v) { return {_mm256_max_pd(v.lo, _mm256_setzero_pd()), _mm256_max_pd(v.hi, _mm256_setzero_pd())}; }
  static MFNTK_ALWAYS_INLINE std::uint32_t gt0(R v) {
    const __m256d z = _mm256_setzero_pd();
    return static_cast<std::uint32_t>(_mm256_movemask_pd(_mm256_cmp_pd(v.lo, z, _CMP_GT_OQ)) |
                                      _mm256_movemask_pd(_mm256_cmp_pd(v.hi, z, _CMP_GT_OQ)) << 4);
  }
  static MFNTK_ALWAYS_INLINE R select(std::uint32_t m, R v) {
    const __m256i bits = _mm256_set1_epi64x(m);
    const __m256i lo = _mm256_setr_epi64x(1, 2, 4, 8), hi = _mm256_setr_epi64x(16, 32, 64, 128);
    return {_mm256_and_pd(v.lo, _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(bits, lo), lo))),
            _mm256_and_pd(v.hi, _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(bits, hi), hi)))};
  }
};

struct VF {
  using T = float;
  struct R { __m256 lo, hi; };
  static constexpr int L = 16;
  static MFNTK_ALWAYS_INLINE R zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static MFNTK_ALWAYS_INLINE R set1(T x) { const __m256 v = _mm256_set1_ps(x); return {v, v}; }
  static MFNTK_ALWAYS_INLINE R load(const T* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static MFNTK_ALWAYS_INLINE void store(T* p, R v) { _mm256_storeu_ps(p, v.lo); _mm256_storeu_ps(p + 8, v.hi); }
  static MFNTK_ALWAYS_INLINE R fmadd(R a, R b, R c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
  static MFNTK_ALWAYS_INLINE R add(R a, R b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static MFNTK_ALWAYS_INLINE R max0(R v) { return {_mm256_max_ps(v.lo, _mm256_setzero_ps()), _mm256_max_ps(v.hi, _mm256_setzero_ps())}; }
  static MFNTK_ALWAYS_INLINE std::uint32_t gt0(R v) {
    const __m256 z = _mm256_setzero_ps();
    return static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v.lo, z, _CMP_GT_OQ)) |
                                      _mm256_movemask_ps(_mm256_cmp_ps(v.hi, z, _CMP_GT_OQ)) << 8);
  }
  static MFNTK_ALWAYS_INLINE R select(std::uint32_t m, R v) {
    const __m256i bits = _mm256_set1_epi32(static_cast<int>(m));
    const __m256i lo = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i hi = _mm256_setr_epi32(256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    return {_mm256_and_ps(v.lo, _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(bits, lo), lo))),
            _mm256_and_ps(v.hi, _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(bits, hi), hi)))};
  }
};

// 16 registers: 6 rows x one 64-byte vector (2 halves) of accumulators, 6 features in the backward.
constexpr int kRows = 6, kPanelVectors = 1, kFeatures = 6;
#include "simd_sign_kernels.inc"
#include "simd_product_kernels.inc"

}  // namespace simd_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace simd_avx512 {

// max0 by a compare and a masked move (_mm512_max_pd trips GCC 12's -Wmaybe-uninitialized).
struct VD {
  using T = double;
  using R = __m512d;
  static constexpr int L = 8;
  static MFNTK_ALWAYS_INLINE R zero() { return _mm512_setzero_pd(); }
  static MFNTK_ALWAYS_INLINE R set1(T x) { return _mm512_set1_pd(x); }
  static MFNTK_ALWAYS_INLINE R load(const T* p) { return _mm512_loadu_pd(p); }
  static MFNTK_ALWAYS_INLINE void store(T* p, R v) { _mm512_storeu_pd(p, v); }
  static MFNTK_ALWAYS_INLINE R fmadd(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static MFNTK_ALWAYS_INLINE R add(R a, R b) { return _mm512_add_pd(a, b); }
  static MFNTK_ALWAYS_INLINE R max0(R v) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ), v); }
  static MFNTK_ALWAYS_INLINE std::uint32_t gt0(R v) { return _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ); }
  static MFNTK_ALWAYS_INLINE R select(std::uint32_t m, R v) { return _mm512_maskz_mov_pd(static_cast<__mmask8>(m), v); }
};

struct VF {
  using T = float;
  using R = __m512;
  static constexpr int L = 16;
  static MFNTK_ALWAYS_INLINE R zero() { return _mm512_setzero_ps(); }
  static MFNTK_ALWAYS_INLINE R set1(T x) { return _mm512_set1_ps(x); }
  static MFNTK_ALWAYS_INLINE R load(const T* p) { return _mm512_loadu_ps(p); }
  static MFNTK_ALWAYS_INLINE void store(T* p, R v) { _mm512_storeu_ps(p, v); }
  static MFNTK_ALWAYS_INLINE R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static MFNTK_ALWAYS_INLINE R add(R a, R b) { return _mm512_add_ps(a, b); }
  static MFNTK_ALWAYS_INLINE R max0(R v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v); }
  static MFNTK_ALWAYS_INLINE std::uint32_t gt0(R v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ); }
  static MFNTK_ALWAYS_INLINE R select(std::uint32_t m, R v) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(m), v); }
};

// 32 registers: 8 rows x 2 vectors of accumulators forward, 12 features x 2 vectors backward.
constexpr int kRows = 8, kPanelVectors = 2, kFeatures = 12;
#include "simd_sign_kernels.inc"
#include "simd_product_kernels.inc"

}  // namespace simd_avx512
#pragma GCC pop_options

#endif  // MFNTK_X86_SIMD

// Whether this build and this CPU can run the kernels of s (the CPU's support of the state
// registers included: GCC's __builtin_cpu_supports asks the OS through XGETBV).
inline bool simd_supported(Simd s) {
  if (s == Simd::portable) return true;
#if MFNTK_X86_SIMD
  __builtin_cpu_init();
  if (s == Simd::avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (s == Simd::avx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return false;
}

inline Simd best_simd() {
  if (simd_supported(Simd::avx512)) return Simd::avx512;
  if (simd_supported(Simd::avx2)) return Simd::avx2;
  return Simd::portable;
}

// The process-wide choice, the best supported one until set_simd.
inline std::atomic<int>& simd_choice() {
  static std::atomic<int> choice{static_cast<int>(best_simd())};
  return choice;
}
inline Simd active_simd() { return static_cast<Simd>(simd_choice().load(std::memory_order_relaxed)); }

inline Simd simd_from_name(const std::string& name) {
  for (Simd s : {Simd::portable, Simd::avx2, Simd::avx512})
    if (name == simd_name(s)) return s;
  throw std::invalid_argument("simd: unknown instruction set '" + name + "' (portable, avx2, avx512)");
}

inline void set_simd(Simd s) {
  if (!simd_supported(s))
    throw std::invalid_argument(std::string("simd: this CPU or build cannot run '") + simd_name(s) + "' kernels");
  simd_choice().store(static_cast<int>(s), std::memory_order_relaxed);
}

// Every kernel table of one instruction set for T.
template <class T> struct SimdTables {
  SignKernels<T> sign;
  ProductKernels<T> product;
};

namespace detail {

// The tables of the active instruction set for T, null for the portable path.
template <class T> const SimdTables<T>* active_tables() {
#if MFNTK_X86_SIMD
  using V512 = std::conditional_t<std::is_same_v<T, double>, simd_avx512::VD, simd_avx512::VF>;
  using V2 = std::conditional_t<std::is_same_v<T, double>, simd_avx2::VD, simd_avx2::VF>;
  static const SimdTables<T> avx512{simd_avx512::table<V512>("avx512"), simd_avx512::product_table<V512>("avx512")};
  static const SimdTables<T> avx2{simd_avx2::table<V2>("avx2"), simd_avx2::product_table<V2>("avx2")};
  switch (active_simd()) {
    case Simd::avx512: return &avx512;
    case Simd::avx2: return &avx2;
    default: return nullptr;
  }
#else
  return nullptr;
#endif
}

}  // namespace detail

// The active kernels for T, null for the portable path.
template <class T> const SignKernels<T>* sign_kernels() {
  const SimdTables<T>* tables = detail::active_tables<T>();
  return tables ? &tables->sign : nullptr;
}

template <class T> const ProductKernels<T>* product_kernels() {
  const SimdTables<T>* tables = detail::active_tables<T>();
  return tables ? &tables->product : nullptr;
}

}  // namespace mfntk
