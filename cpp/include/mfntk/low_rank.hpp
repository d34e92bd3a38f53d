// The product of a low-rank preconditioner (_preconditioners.py): for U (n, r) and V (n, m),
//   out = V + U diag(scale) (U^T V),
// in two passes over fixed blocks of rows, parallel over the blocks: the blocks' products
// U_b^T V_b, added in block order (so the result is the same for any thread count), then
// out_b = V_b + U_b W. U is read twice, from memory: the product is bound by its bandwidth.
#pragma once

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "types.hpp"

namespace mfntk {

// Rows of a block: at least kLowRankRows, more when n would make more than kLowRankBlocks blocks
// (their partial products, blocks r m values, stay small).
constexpr Index kLowRankRows = 1024, kLowRankBlocks = 64;

template <class T>
void low_rank_update(const T* U, Index n, Index r, const T* scale, const T* V, Index m, T* out, int threads) {
  if (threads < 1) throw std::invalid_argument("threads: must be at least 1");
  if (n == 0 || m == 0) return;
  const Index rows = std::max(kLowRankRows, (n + kLowRankBlocks - 1) / kLowRankBlocks);
  const Index blocks = num_tiles(n, rows);
  std::vector<T> partial(static_cast<std::size_t>(blocks * r * m));
  RowMat<T> W(r, m);
#pragma omp parallel num_threads(threads) if (threads > 1 && blocks > 1)
  {
#pragma omp for schedule(static)
    for (Index bi = 0; bi < blocks; ++bi) {
      const Index i0 = bi * rows, ni = std::min(rows, n - i0);
      MapMat<T>(partial.data() + bi * r * m, r, m).noalias() =
          CMapMat<T>(U + i0 * r, ni, r).transpose() * CMapMat<T>(V + i0 * m, ni, m);
    }
#pragma omp for schedule(static)
    for (Index e = 0; e < r * m; ++e) {
      T sum = partial[e];
      for (Index bi = 1; bi < blocks; ++bi) sum += partial[bi * r * m + e];
      W.data()[e] = scale[e / m] * sum;
    }
#pragma omp for schedule(static)
    for (Index bi = 0; bi < blocks; ++bi) {
      const Index i0 = bi * rows, ni = std::min(rows, n - i0);
      MapMat<T> out_b(out + i0 * m, ni, m);
      out_b = CMapMat<T>(V + i0 * m, ni, m);
      out_b.noalias() += CMapMat<T>(U + i0 * r, ni, r) * W;
    }
  }
}

}  // namespace mfntk
