// Lists of policy types: the registry of one extension point (activations, losses,
// integrators). Every policy declares its own `static constexpr const char* name` and its
// metadata beside its code; the list is the only place that enumerates them, and parsing a
// name, dispatching on it and exporting the registry all read the list.
#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace mfntk {

// A type carried as a value, so that a generic lambda can receive the policy type itself.
template <class P> struct Tag {
  using type = P;
};

// The message of every unknown name, core and Python alike:
//   "<argument>: unknown value '<name>'; expected one of 'a', 'b', 'c'"
template <std::size_t N>
[[noreturn]] void unknown_name(const char* argument, std::string_view name, const std::array<const char*, N>& names) {
  std::string msg = std::string(argument) + ": unknown value '" + std::string(name) + "'; expected one of ";
  for (std::size_t i = 0; i < N; ++i) msg += (i ? ", '" : "'") + std::string(names[i]) + "'";
  throw std::invalid_argument(msg);
}

template <class List> struct PolicyId;

template <class... P> struct PolicyList {
  static constexpr std::size_t size = sizeof...(P);
  static constexpr std::array<const char*, size> names = {P::name...};
  using Id = PolicyId<PolicyList>;

  // The position of policy Q in the list (a compile-time error when Q is not in it).
  template <class Q> static constexpr std::size_t index_of() {
    constexpr bool same[] = {std::is_same_v<Q, P>...};
    for (std::size_t i = 0; i < size; ++i)
      if (same[i]) return i;
    return size;
  }

  // The id of `name`; std::invalid_argument naming `argument` and listing the names otherwise.
  static Id parse(const char* argument, std::string_view name) {
    for (std::size_t i = 0; i < size; ++i)
      if (name == names[i]) return Id{i};
    unknown_name(argument, name, names);
  }

  // fn(Tag<policy>{}) for every policy, in the order of the list.
  template <class Fn> static void for_each(Fn&& fn) { (fn(Tag<P>{}), ...); }

  // fn(Tag<policy>{}) for the policy of `id`; every policy's call must return the same type.
  template <class Fn> static decltype(auto) visit(Id id, Fn&& fn) { return visit_from<0, Fn, P...>(id.index, fn); }

 private:
  template <std::size_t I, class Fn, class First, class... Rest>
  static decltype(auto) visit_from(std::size_t index, Fn& fn) {
    if constexpr (sizeof...(Rest) == 0) {
      if (index != I) throw std::invalid_argument("policy id out of range");
      return fn(Tag<First>{});
    } else {
      if (index == I) return fn(Tag<First>{});
      return visit_from<I + 1, Fn, Rest...>(index, fn);
    }
  }
};

// A policy chosen at run time: its position in the list.
template <class List> struct PolicyId {
  std::size_t index = 0;
  template <class Q> static constexpr PolicyId of() {
    static_assert(List::template index_of<Q>() < List::size, "not a policy of this list");
    return PolicyId{List::template index_of<Q>()};
  }
  const char* name() const { return List::names[index]; }
  bool operator==(PolicyId other) const { return index == other.index; }
  bool operator!=(PolicyId other) const { return index != other.index; }
};

}  // namespace mfntk
