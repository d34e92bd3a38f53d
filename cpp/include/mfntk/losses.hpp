// Losses and their residuals r = -dl/df (SPEC 2): one policy struct per loss, with its name
// and metadata:
//   name           the name users pass (loss="squared")
//   single_output  defined for k = 1 output only
//   pm1_labels     expects labels y in {-1, +1}
// `Losses` below is the registry.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

#include "policy_list.hpp"
#include "types.hpp"

namespace mfntk {

// l = 1/2 |y - f|^2, r = y - f.
struct Squared {
  static constexpr const char* name = "squared";
  static constexpr bool single_output = false, pm1_labels = false;
  template <class T> static void residual(const T* F, const T* Y, Index size, T* R) {
    for (Index i = 0; i < size; ++i) R[i] = Y[i] - F[i];
  }
};

// l = log(1 + exp(-y f)), r = y / (1 + exp(y f)), written so that exp never overflows.
struct Logistic {
  static constexpr const char* name = "logistic";
  static constexpr bool single_output = true, pm1_labels = true;
  template <class T> static void residual(const T* F, const T* Y, Index size, T* R) {
    for (Index i = 0; i < size; ++i) {
      const T m = Y[i] * F[i];
      R[i] = m > T(0) ? Y[i] * std::exp(-m) / (T(1) + std::exp(-m)) : Y[i] / (T(1) + std::exp(m));
    }
  }
};

// The registry of losses, in the order they are listed to users.
using Losses = PolicyList<Squared, Logistic>;
using Loss = Losses::Id;

inline Loss parse_loss(std::string_view name) { return Losses::parse("loss", name); }

inline bool single_output(Loss loss) {
  return Losses::visit(loss, [](auto tag) { return decltype(tag)::type::single_output; });
}

// R = -dl/df at F for targets Y, all (n, k) row-major.
template <class T> void residual(Loss loss, const T* F, const T* Y, Index size, T* R) {
  Losses::visit(loss, [&](auto tag) { decltype(tag)::type::residual(F, Y, size, R); });
}

}  // namespace mfntk
