#pragma once
// Block-parallel loops.
//
// parallel_for(count, threads, fn) calls fn(index, worker) once for every
// index in [0, count), spread over `threads` workers (the calling thread is
// worker 0). Indices are handed out dynamically, so results must not depend
// on which worker ran an index; `worker` (in [0, threads)) selects
// per-worker scratch. If any call throws, remaining indices are skipped and
// the exception of the smallest failing index is rethrown in the caller,
// unchanged, after all workers have stopped.
//
// Workers 1.. are threads of a persistent pool, started on first use and
// kept (idle, blocked on a condition variable) for the life of the process,
// so a call costs a wake-up instead of thread creation. A call made while
// the pool is busy (a concurrent call from another thread, or a nested call
// from inside fn) starts threads of its own for that call, as does one that
// needs more than 63 helper threads. After fork(), the child starts a fresh
// pool on first use.
// Thread safety: fn is called concurrently from several threads;
// parallel_for itself may be called from any number of threads at once.
#include <cstddef>
#include <functional>

namespace xcloud {

// The number of hardware threads (at least 1).
int hardware_threads();

// threads <= 0 means hardware_threads(); the result is capped at count.
int effective_threads(int threads, size_t count);

void parallel_for(size_t count, int threads, const std::function<void(size_t index, int worker)>& fn);

}  // namespace xcloud
