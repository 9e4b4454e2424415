// The C ABI's handles (apx_model*, apx_result*, apx_tokenizer*): opaque numbers, not addresses. A handle is a
// serial number that is never given out twice (on 64-bit platforms; 2^28 handles on 32-bit ones before numbers of
// freed handles come back) and a tag of its kind, so a freed handle, a handle freed twice, a handle of another
// kind or a pointer the library did not make is recognised as such however memory is reused.
//
// The registry owns one reference to each live object; a lookup returns another one, which the calling thread
// keeps until its call returns (errors.hpp, `pinned`): freeing a handle while another thread's call uses it is
// safe, the object goes when the last call using it returns, and calls that start after the free fail with
// APX_ERROR_INVALID_HANDLE.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "errors.hpp"

namespace attnprox::capi {

template <typename Object>
class Registry {
 public:
  /// kind: 1, 2, 3, ... (one per registry); the low 4 bits of every handle it makes.
  explicit Registry(uintptr_t kind) : kind_(kind) {}

  /// Registers a new object; the handle to return to the caller.
  uintptr_t add(std::shared_ptr<const Object> object) {
    std::lock_guard<std::mutex> lock(mutex_);
    uintptr_t serial = next_;
    // Only after 2^28 handles on a 32-bit platform: skip the numbers still in use.
    while (serial == 0 || live_.count(serial)) serial = (serial + 1) & kSerialMask;
    next_ = (serial + 1) & kSerialMask;
    live_.emplace(serial, std::move(object));
    return serial << kKindBits | kind_;
  }

  /// The live object of `handle` (a strong reference), or nullptr when it is not live.
  std::shared_ptr<const Object> find(uintptr_t handle) {
    if ((handle & kKindMask) != kind_) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = live_.find(handle >> kKindBits);
    return at == live_.end() ? nullptr : at->second;
  }

  /// Drops the registry's reference; false when `handle` is not live (freed already, or not this kind's).
  bool remove(uintptr_t handle) {
    if ((handle & kKindMask) != kind_) return false;
    std::shared_ptr<const Object> released;  // destroyed after the lock is let go
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = live_.find(handle >> kKindBits);
    if (at == live_.end()) return false;
    released = std::move(at->second);
    live_.erase(at);
    return true;
  }

 private:
  static constexpr unsigned kKindBits = 4;
  static constexpr uintptr_t kKindMask = (uintptr_t{1} << kKindBits) - 1;
  static constexpr uintptr_t kSerialMask = ~uintptr_t{0} >> kKindBits;
  const uintptr_t kind_;
  std::mutex mutex_;
  uintptr_t next_ = 1;
  std::unordered_map<uintptr_t, std::shared_ptr<const Object>> live_;
};

/// The handle a C caller sees for a registered object.
template <typename Handle>
Handle* to_handle(uintptr_t value) {
  return reinterpret_cast<Handle*>(value);
}

/// The object of a handle the caller passed, kept alive until the current call returns. Errors: NULL, not live.
template <typename Object, typename Handle>
const Object& live(Registry<Object>& registry, const Handle* handle, const char* name) {
  need(handle, name);
  std::shared_ptr<const Object> object = registry.find(reinterpret_cast<uintptr_t>(handle));
  if (!object) {
    throw CallError{APX_ERROR_INVALID_HANDLE, std::string(name) + " is not a live handle (freed already?)"};
  }
  const Object& held = *object;
  pinned.push_back(std::move(object));
  return held;
}

}  // namespace attnprox::capi
