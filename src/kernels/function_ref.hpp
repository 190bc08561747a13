#pragma once
// A callable's address and how to call it: what the pool's tasks and the cells' shares take. Unlike
// std::function it never copies the callable to the heap (a lambda capturing more than two references
// did, at every time step of a stream). It refers to the callable, so it only serves calls that end
// before the callable does: a lambda passed as an argument.
#include <memory>
#include <type_traits>
#include <utility>

namespace recur::kernels {

template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
      FunctionRef(F&& callable)  // NOLINT: converts implicitly, as std::function does
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(callable)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace recur::kernels
