// The fork check of team.hpp (the process that started an OpenMP team owns libgomp's pool) and
// the progress counts its threads wait on.
#include "team.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

namespace gradi {
namespace {

std::atomic<long> g_pool_owner{0};  // pid of the process that started a team, 0 before any

// Whether a count of `now` has reached `wanted`, modulo 2^32.
bool reached(unsigned now, unsigned wanted) { return static_cast<int>(now - wanted) >= 0; }

// Sleep while *word == seen (Linux futex), or just give up the core elsewhere.
void sleep_while(std::atomic<unsigned>& word, unsigned seen) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
#else
  (void)word, (void)seen;
  sched_yield();
#endif
}

void wake_all(std::atomic<unsigned>& word) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

}  // namespace

// The count is stored before sleepers is read, and a waiter counts itself in sleepers before it
// reads the count (both sequentially consistent): either the publisher sees the sleeper and
// wakes it, or the sleeper sees the new count (or the futex refuses to sleep on a changed word).
void publish(Progress& p, unsigned steps) {
  p.steps.store(steps);
  if (p.sleepers.load() > 0) wake_all(p.steps);
}

void add_progress(Progress& p, unsigned count) {
  p.steps.fetch_add(count);
  if (p.sleepers.load() > 0) wake_all(p.steps);
}

void wait_for(Progress& p, unsigned steps, long spins) {
  for (long k = 0; k < spins; ++k) {
    if (reached(p.steps.load(std::memory_order_acquire), steps)) return;
    spin_pause();
  }
  while (true) {
    p.sleepers.fetch_add(1);
    const unsigned now = p.steps.load();
    if (!reached(now, steps)) sleep_while(p.steps, now);
    p.sleepers.fetch_sub(1);
    if (reached(p.steps.load(std::memory_order_acquire), steps)) return;
  }
}

long wait_spins(int threads) {
#ifdef _OPENMP
  const int cores = omp_get_num_procs();
#else
  const int cores = 1;
#endif
  return threads <= cores ? 4096 : 16;
}

void check_team(int threads) {
  if (threads <= 1) return;
  if (!kHaveOpenMP) throw TeamError("gradi._native was built without OpenMP: threads must be 1");
  const long owner = g_pool_owner.load();
  if (owner != 0 && owner != static_cast<long>(getpid()))
    throw TeamError(
        "this process was forked from one that had already run C++ OpenMP threads, and "
        "libgomp's thread pool does not survive fork (a parallel call would hang): use threads=1 "
        "in the child, or start it with multiprocessing's 'spawn' or 'forkserver' method");
}

void claim_team(int threads) {
  check_team(threads);
  if (threads > 1) g_pool_owner.store(static_cast<long>(getpid()));
}

}  // namespace gradi
