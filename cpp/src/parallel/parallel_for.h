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
// Thread safety: fn is called concurrently from several threads.
#include <cstddef>
#include <functional>

namespace xcloud {

// The number of hardware threads (at least 1).
int hardware_threads();

// threads <= 0 means hardware_threads(); the result is capped at count.
int effective_threads(int threads, size_t count);

void parallel_for(size_t count, int threads, const std::function<void(size_t index, int worker)>& fn);

}  // namespace xcloud
