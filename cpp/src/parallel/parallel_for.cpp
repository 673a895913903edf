#include "parallel/parallel_for.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace xcloud {

int hardware_threads() {
  const unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(h);
}

int effective_threads(int threads, size_t count) {
  int t = threads <= 0 ? hardware_threads() : threads;
  if (count < static_cast<size_t>(t)) t = static_cast<int>(count == 0 ? 1 : count);
  return t;
}

void parallel_for(size_t count, int threads, const std::function<void(size_t, int)>& fn) {
  const int t = effective_threads(threads, count);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  size_t err_index = count;
  std::exception_ptr err;

  auto work = [&](int worker) {
    while (!failed.load(std::memory_order_relaxed)) {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) return;
      try {
        fn(i, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (i < err_index) {
          err_index = i;
          err = std::current_exception();
        }
        failed.store(true, std::memory_order_relaxed);
      }
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t > 1 ? t - 1 : 0));
  for (int w = 1; w < t; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
}

}  // namespace xcloud
