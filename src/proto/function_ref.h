#pragma once
/// @file
/// @brief A non-owning reference to a callable (C++26 std::function_ref, minus the frills).
///
/// Used for parser callbacks on the hot path: no allocation, one indirect call.
/// The referenced callable must outlive every call through the FunctionRef;
/// bind it to a lambda in the calling expression, never store it.

#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::proto {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  // clang-format 14 would split the requires-clause from its declaration.
  // clang-format off
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): implicit like std::function_ref
      // clang-format on
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace sluice::proto
