#include "parallel/parallel_for.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace xcloud {

namespace {

constexpr int kMaxPoolHelpers = 63;

// One parallel_for call: the shared index counter and the first error.
struct Job {
  Job(size_t count, const std::function<void(size_t, int)>& fn) : count(count), fn(fn) {}
  const size_t count;
  const std::function<void(size_t, int)>& fn;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  size_t err_index = SIZE_MAX;
  std::exception_ptr err;

  // Runs indices until none are left or one has failed.
  void work(int worker) {
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
  }
};

// Helper threads that sleep between jobs. Helper h runs as worker h + 1.
// A job is open from its posting until the caller has finished its own share;
// a helper joins it only while it is open, and the caller then waits only for
// the helpers that joined. So a helper that wakes late (its core busy with
// another process) never delays the caller: the caller just does more of the
// indices itself.
class Pool {
 public:
  // Claims the pool for one call; false if another call holds it.
  bool try_acquire() {
    bool expected = false;
    return busy_.compare_exchange_strong(expected, true, std::memory_order_acquire);
  }
  void release() { busy_.store(false, std::memory_order_release); }

  // Runs job on the caller (worker 0) and up to `helpers` pool threads;
  // returns when every worker that took part is done with it. The caller
  // must hold the pool.
  void run(Job& job, int helpers) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (static_cast<int>(threads_.size()) < helpers) {
        const int h = static_cast<int>(threads_.size());
        threads_.push_back(new std::thread([this, h] { helper_loop(h); }));
      }
      job_ = &job;
      wanted_ = helpers;
      joined_ = 0;
      ++generation_;
    }
    work_cv_.notify_all();
    job.work(0);
    std::unique_lock<std::mutex> lock(mu_);
    job_ = nullptr;  // closed: no helper joins from now on
    done_cv_.wait(lock, [this] { return joined_ == 0; });
  }

 private:
  void helper_loop(int h) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      Job* job = job_;
      if (job == nullptr || h >= wanted_) continue;  // closed already, or not needed
      ++joined_;
      lock.unlock();
      job->work(h + 1);
      lock.lock();
      if (--joined_ == 0) done_cv_.notify_one();
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  Job* job_ = nullptr;  // the open job, if any
  int wanted_ = 0;      // helpers that may join it
  int joined_ = 0;      // helpers working on it now
  // Never joined or destroyed: the helpers block in helper_loop until the
  // process exits (joining them from a static destructor could deadlock).
  std::vector<std::thread*> threads_;
};

// The pool of this process (a child after fork() gets its own: the parent's
// threads do not exist there, and its locks may be held).
Pool& pool() {
  static std::mutex mu;
  static Pool* p = nullptr;
  static pid_t owner = 0;
  const pid_t pid = getpid();
  std::lock_guard<std::mutex> lock(mu);
  if (p == nullptr || owner != pid) {
    p = new Pool();  // the previous one, if any, belongs to the parent: leaked
    owner = pid;
  }
  return *p;
}

// The per-call fallback: threads started and joined for this call only.
void run_spawned(Job& job, int t) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(t - 1));
  for (int w = 1; w < t; ++w) threads.emplace_back([&job, w] { job.work(w); });
  job.work(0);
  for (auto& th : threads) th.join();
}

}  // namespace

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
  Job job(count, fn);
  if (t <= 1) {
    job.work(0);
  } else {
    Pool& p = pool();
    if (t - 1 <= kMaxPoolHelpers && p.try_acquire()) {
      p.run(job, t - 1);
      p.release();
    } else {
      run_spawned(job, t);
    }
  }
  if (job.err) std::rethrow_exception(job.err);
}

}  // namespace xcloud
