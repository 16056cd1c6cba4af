// Thread teams for the C++ backends: run a body on exactly `threads` OpenMP threads, or on the
// calling thread alone without entering OpenMP at all.
//
// Fork safety: libgomp keeps its worker threads after a parallel region, and a forked child
// inherits libgomp's record of them but not the threads, so the child's next parallel region
// waits forever. The module records the process that started a team; a team asked for in any
// other process (a fork of it) raises instead of hanging. One thread never enters OpenMP, so
// threads=1 keeps working in such a child.
#pragma once

#include <atomic>
#include <cstddef>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradi {

// Whether the module was built with OpenMP (without it every team is one thread).
constexpr bool kHaveOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif

// The most threads a state takes: gradi.backends.base.MAX_THREADS, the bound of every backend
// (tests/test_cpp.py checks that they agree).
constexpr long long kMaxThreads = 1024;

// Memory a state takes besides its buffers: the object itself, the pages its team's threads
// touch (stacks, libgomp's bookkeeping); measured in native/README.md, with room for the
// run-to-run spread seen there.
constexpr std::size_t kStateOverhead = std::size_t(512) << 10;

// Raised (as RuntimeError) when a team is asked for where it cannot run.
struct TeamError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws TeamError when a team of `threads` > 1 cannot run here: built without OpenMP, or this
// process is a fork of one that started an OpenMP team.
void check_team(int threads);

// check_team, then record this process as the one whose OpenMP thread pool runs (run_team calls it).
void claim_team(int threads);

// Index of the calling thread in its team (0 outside a parallel region). Static: each kernel
// translation unit keeps its own copy, compiled with its own instruction set.
static inline int team_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Size of the calling thread's team (1 outside a parallel region).
static inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// A spin-wait hint to the core (x86 PAUSE), nothing elsewhere.
static inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A count of steps that one thread raises and other threads of its team wait for, alone on its
// cache line. Counts compare modulo 2^32, so they may wrap (threads are never 2^31 steps apart).
struct alignas(64) Progress {
  std::atomic<unsigned> steps{0};
  std::atomic<int> sleepers{0};  // waiters asleep in the kernel, or about to be
};

// Raise p to `steps`: everything the calling thread wrote before is visible to a thread that
// sees the new count. Wakes the threads asleep on p, if any (a system call only then).
void publish(Progress& p, unsigned steps);

// Raise p by `count` (several threads may): as publish, for a count that more than one thread adds to.
void add_progress(Progress& p, unsigned count);

// Wait until p reaches `steps`: poll `spins` times (with a pause), then sleep until woken, so
// that a partner descheduled by other work gets the core.
void wait_for(Progress& p, unsigned steps, long spins);

// Polls before a wait sleeps, for a team of `threads`: a few thousand when every thread has a
// core of its own (a partner is microseconds away), a few when the cores are oversubscribed (the
// partner may need this core).
long wait_spins(int threads);

// Run body() on every thread of a team of `threads` (after claim_team, which may throw), or once
// on the calling thread when threads == 1. Worksharing loops inside body (`omp for`) split
// between the team, or run whole on the calling thread.
template <class Body>
void run_team(int threads, Body&& body) {
  if (threads <= 1) {
    body();
    return;
  }
  claim_team(threads);
#pragma omp parallel num_threads(threads)
  body();
}

}  // namespace gradi
