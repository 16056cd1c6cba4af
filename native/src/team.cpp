// The fork check of team.hpp: the process that started an OpenMP team owns libgomp's pool.
#include "team.hpp"

#include <unistd.h>

#include <atomic>

namespace gradi {
namespace {

std::atomic<long> g_pool_owner{0};  // pid of the process that started a team, 0 before any

}  // namespace

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
