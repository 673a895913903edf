#include "ring/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace xcloud {

namespace {

bool detect_cpu() {
#if defined(XCLOUD_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool env_forces_scalar() {
  const char* v = std::getenv("XCLOUD_FORCE_SCALAR");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

// -1: not read yet; 0: SIMD allowed; 1: scalar forced.
std::atomic<int> g_forced{-1};

int forced_state() {
  int f = g_forced.load(std::memory_order_relaxed);
  if (f < 0) {
    int expected = -1;
    const int init = env_forces_scalar() ? 1 : 0;
    g_forced.compare_exchange_strong(expected, init, std::memory_order_relaxed);
    f = g_forced.load(std::memory_order_relaxed);
  }
  return f;
}

}  // namespace

bool simd_supported() {
  static const bool supported = detect_cpu();
  return supported;
}

bool simd_enabled() { return simd_supported() && forced_state() == 0; }

bool set_force_scalar(bool force) {
  const int before = forced_state();
  g_forced.store(force ? 1 : 0, std::memory_order_relaxed);
  return before == 1;
}

}  // namespace xcloud
