// A process-wide setting changed for the life of a scope: AllowTf32Scope, MatmulPrecisionScope, CpuBackendScope.
#pragma once

namespace sieve {

// Sets the setting read by Get and written by Set to a value until the scope ends, then restores the one before, on
// every way out, exceptions included.
template <class T, T (*Get)(), void (*Set)(T)>
class SettingScope {
 public:
  explicit SettingScope(T value) : saved_(Get()) { Set(value); }
  ~SettingScope() { Set(saved_); }
  SettingScope(const SettingScope&) = delete;
  SettingScope& operator=(const SettingScope&) = delete;

 private:
  T saved_;
};

}  // namespace sieve
