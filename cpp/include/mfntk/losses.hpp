// Losses and their residuals r = -dl/df (SPEC 2).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "types.hpp"

namespace mfntk {

enum class Loss { squared, logistic };

inline Loss parse_loss(const std::string& name) {
  if (name == "squared") return Loss::squared;
  if (name == "logistic") return Loss::logistic;
  throw std::invalid_argument("loss: unknown name '" + name + "'; expected 'squared' or 'logistic'");
}

// R = -dl/df at F for targets Y, all (n, k) row-major: squared r = y - f; logistic
// r = y / (1 + exp(y f)), written so that exp never overflows.
template <class T> void residual(Loss loss, const T* F, const T* Y, Index size, T* R) {
  if (loss == Loss::squared) {
    for (Index i = 0; i < size; ++i) R[i] = Y[i] - F[i];
  } else {
    for (Index i = 0; i < size; ++i) {
      const T m = Y[i] * F[i];
      R[i] = m > T(0) ? Y[i] * std::exp(-m) / (T(1) + std::exp(-m)) : Y[i] / (T(1) + std::exp(m));
    }
  }
}

}  // namespace mfntk
