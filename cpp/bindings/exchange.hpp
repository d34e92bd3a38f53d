// The Exchange of a sharded run (mfntk/shard.hpp) implemented by a Python object: the MPI
// backend's gather of the chunks' sums and its agreement of the ranks.
#pragma once

#include <algorithm>
#include <memory>
#include <utility>

#include "arrays.hpp"
#include "mfntk/shard.hpp"

namespace mfntk::py_arrays {

// An Exchange whose gather(partials (local chunks, m)) -> (chunks, m) and all(bool) -> bool are a
// Python object's (called with the GIL taken).
template <class T> class PyExchange final : public Exchange<T> {
 public:
  explicit PyExchange(py::object impl) : impl_(std::move(impl)) {}
  void gather(const Shard& shard, const T* local, Index m, T* all) override {
    py::gil_scoped_acquire acquire;
    Array<T> mine({static_cast<py::ssize_t>(shard.local_chunks()), static_cast<py::ssize_t>(m)});
    std::copy(local, local + shard.local_chunks() * m, mine.mutable_data());
    Array<T> out = impl_.attr("gather")(mine).template cast<Array<T>>();
    expect_shape(out, "gathered partials", {shard.count(), m});
    std::copy(out.data(), out.data() + shard.count() * m, all);
  }
  bool all(bool ok) override {
    py::gil_scoped_acquire acquire;
    return impl_.attr("all")(ok).template cast<bool>();
  }

 private:
  py::object impl_;
};

// The exchange of a Python object, or none (None: this process holds every chunk).
template <class T> std::unique_ptr<Exchange<T>> exchange_of(const py::object& impl) {
  if (impl.is_none()) return nullptr;
  return std::make_unique<PyExchange<T>>(impl);
}

}  // namespace mfntk::py_arrays
