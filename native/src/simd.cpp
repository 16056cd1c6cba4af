// The per-solve state of the tuned tier: allocates D^2 in tiles, the structure-of-arrays
// positions and the partial sums once, fills D^2 on the solve's threads, picks the kernel for
// this CPU's instruction set, and copies X in and out around each run of the kernel.
#include "simd.hpp"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "team.hpp"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace gradi {
namespace {

constexpr std::size_t kAlign = 64;
// Buffers from 4 MiB up (D^2 from N of about 1000) are aligned to 2 MiB and offered transparent
// huge pages: streaming D^2 each iteration then misses the TLB far less (see native/README.md).
constexpr std::size_t kHugePage = std::size_t(2) << 20;

bool is_huge(std::size_t bytes) { return bytes >= 2 * kHugePage; }

// Bytes really allocated for `bytes` aligned to `align`: whole multiples of it, or whole huge
// pages when large.
std::size_t allocated_bytes(std::size_t bytes, std::size_t align = kAlign) {
  if (is_huge(bytes)) align = kHugePage;
  return (bytes + align - 1) / align * align;
}

// An uninitialised buffer of `count` T (aligned to `align` bytes, or to 2 MiB and offered huge
// pages when large), empty when count is 0.
template <class T>
AlignedBuffer<T> aligned_buffer(std::size_t count, std::size_t align = kAlign) {
  if (count == 0) return nullptr;
  const std::size_t bytes = allocated_bytes(count * sizeof(T), align);
  void* p = std::aligned_alloc(is_huge(bytes) ? kHugePage : align, bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (is_huge(bytes)) madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure just means normal pages
#endif
  return AlignedBuffer<T>(static_cast<T*>(p));
}

// The sizes of the state's buffers for n points in dim dimensions on `threads` threads.
struct Layout {
  long blocks, ntiles, chunk;
  std::size_t d2, x, partials, scratch;  // element counts

  Layout(long n, long dim, int threads, std::size_t itemsize)
      : blocks((n + kTile - 1) / kTile),
        ntiles(blocks * (blocks + 1) / 2),
        chunk(block_elements(dim, static_cast<long>(itemsize))),
        d2(static_cast<std::size_t>(ntiles) * kTile * kTile),
        x(static_cast<std::size_t>(blocks) * chunk),
        partials(static_cast<std::size_t>(blocks) * blocks * chunk),
        scratch(static_cast<std::size_t>(threads) * scratch_per_thread(dim, static_cast<long>(itemsize))) {}
};

// Tile t's relative cost: rows x columns x 3 off the diagonal (c, the row sum, the column sum
// per pair), x 1.6 on it (half the pairs, plus the masked first vectors and shorter row groups;
// the weight that balanced two threads best at N=1000, native/README.md).
double tile_work(long n, long a, long b) {
  const long rows = std::min(kTile, n - a * kTile), cols = std::min(kTile, n - b * kTile);
  return static_cast<double>(rows) * static_cast<double>(cols) * (a == b ? 1.6 : 3);
}

template <class T>
void run_kernel(SimdJob<T>& job, Isa isa) {
  switch (isa) {
#ifdef GRADI_X86_DISPATCH
    case Isa::avx512: return simd_run_avx512(job);
    case Isa::avx2: return simd_run_avx2(job);
#endif
    default: return simd_run_baseline(job);
  }
}

// The tile shape of the kernel for `isa` (which D^2's layout follows).
TileShape kernel_shape(Isa isa, long dim, long itemsize) {
  switch (isa) {
#ifdef GRADI_X86_DISPATCH
    case Isa::avx512: return simd_shape_avx512(dim, itemsize);
    case Isa::avx2: return simd_shape_avx2(dim, itemsize);
#endif
    default: return simd_shape_baseline(dim, itemsize);
  }
}

// Tile t (a, b) of D^2 from D, squared, zero past n, in the order the kernel reads it
// (for_row_blocks, packed_offset): each row block's rows read from D in order.
template <class T>
void fill_tile(const T* d, long n, long a, long b, const TileShape& shape, T* tile) {
  const long rows = std::min(kTile, n - a * kTile), cols = std::min(kTile, n - b * kTile);
  for_row_blocks(rows, a == b, shape, [&](long first, long count) {
    for (long r = 0; r < count; ++r) {
      const T* src = d + (a * kTile + first + r) * n + b * kTile;
      for (long jj = 0; jj < kTile; jj += shape.lanes) {
        T* dst = tile + packed_offset(first, count, r, jj, shape.lanes);
        for (long l = 0; l < shape.lanes; ++l) dst[l] = jj + l < cols ? src[jj + l] * src[jj + l] : T(0);
      }
    }
  });
  std::fill(tile + rows * kTile, tile + kTile * kTile, T(0));  // rows past n
}

}  // namespace

void AlignedFree::operator()(void* p) const { std::free(p); }

namespace {

constexpr int kIndexBits = 20;
constexpr std::uint64_t kIndexMask = (std::uint64_t(1) << kIndexBits) - 1;
constexpr std::uint64_t kStepMask = (std::uint64_t(1) << 24) - 1;

std::uint64_t queue_word(unsigned step, long front, long back) {
  return (step & kStepMask) << (2 * kIndexBits) | static_cast<std::uint64_t>(front) << kIndexBits |
         static_cast<std::uint64_t>(back);
}
bool in_step(std::uint64_t word, unsigned step) { return (word >> (2 * kIndexBits)) == (step & kStepMask); }
long front_of(std::uint64_t word) { return static_cast<long>(word >> kIndexBits & kIndexMask); }
long back_of(std::uint64_t word) { return static_cast<long>(word & kIndexMask); }

}  // namespace

long claim_front(TileQueue& queue, unsigned step, long length) {
  std::uint64_t seen = queue.word.load();
  while (true) {
    const bool begun = in_step(seen, step);
    const long front = begun ? front_of(seen) : 0, back = begun ? back_of(seen) : length;
    if (front >= back) return -1;
    if (queue.word.compare_exchange_weak(seen, queue_word(step, front + 1, back))) return front;
  }
}

long claim_back(TileQueue& queue, unsigned step, long from) {
  std::uint64_t seen = queue.word.load();
  while (true) {
    if (!in_step(seen, step)) return -1;
    const long front = front_of(seen), back = back_of(seen);
    if (back <= front || back - 1 < from) return -1;
    if (queue.word.compare_exchange_weak(seen, queue_word(step, front, back - 1))) return back - 1;
  }
}

bool simd_supports(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
#ifdef GRADI_X86_DISPATCH
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

Isa simd_best_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (simd_supports(isa)) return isa;
  return Isa::baseline;
}

const char* simd_isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

template <class T>
std::size_t SimdState<T>::working_bytes(long n, long dim, int threads) {
  const Layout l(n, dim, threads, sizeof(T));
  std::size_t bytes = 0;
  for (std::size_t count : {l.d2, l.x, l.partials, l.scratch})
    if (count > 0) bytes += allocated_bytes(count * sizeof(T));
  // tiles_ (2 per tile), order_, owners_, deps_ (at most 1 per tile), tile_stress_ (1 per tile),
  // plans_, progress_ (3 per thread), queues_
  return bytes + static_cast<std::size_t>(l.ntiles) * (5 * sizeof(int) + sizeof(double)) +
         threads * (sizeof(ThreadPlan) + 3 * sizeof(Progress) + sizeof(TileQueue)) + kStateOverhead +
         kSimdCodeBytes;
}

template <class T>
SimdState<T>::SimdState(const T* d, long n, long dim, double lr, int threads, Isa isa,
                        long parallel_min_n)
    : isa_(isa) {
  const int team = n >= parallel_min_n ? threads : 1;
  check_team(team);  // before allocating
  const Layout l(n, dim, team, sizeof(T));
  d2_ = aligned_buffer<T>(l.d2);
  x_ = aligned_buffer<T>(l.x, kPage);
  partials_ = aligned_buffer<T>(l.partials, kPage);
  scratch_ = aligned_buffer<T>(l.scratch, kPage);
  tiles_.reset(new int[2 * l.ntiles]);
  tile_stress_.reset(new double[l.ntiles]);
  for (long a = 0, t = 0; a < l.blocks; ++a)
    for (long b = a; b < l.blocks; ++b, ++t) {
      tiles_[2 * t] = static_cast<int>(a);
      tiles_[2 * t + 1] = static_cast<int>(b);
    }
  plan_steps(n, l.blocks, l.ntiles, team);
  T* d2 = d2_.get();
  const TileShape shape = kernel_shape(isa, dim, sizeof(T));
  // D^2's pages are first touched here, by the solve's threads. A block row's tiles are
  // contiguous, so each thread faults in pages of its own: two threads faulting in one huge
  // page take turns.
  run_team(team, [&] {
#pragma omp for schedule(dynamic, 1)
    for (long a = 0; a < l.blocks; ++a) {
      const long first_tile = a * l.blocks - a * (a - 1) / 2;
      for (long b = a; b < l.blocks; ++b)
        fill_tile(d, n, a, b, shape, d2 + static_cast<std::size_t>(first_tile + b - a) * kTile * kTile);
    }
  });
  job_ = SimdJob<T>{d2,           tiles_.get(),  l.ntiles,       plans_.get(),
                    order_.get(),  owners_.get(), deps_.get(),    progress_.get(),
                    progress_.get() + team,       progress_.get() + 2 * team,     queues_.get(),
                    &stolen_,      x_.get(),       partials_.get(),
                    scratch_.get(), tile_stress_.get(),            n,
                    dim,           l.blocks,      l.chunk,        0,
                    static_cast<T>(4.0 * lr),     false,          team,
                    0};
}

template <class T>
void SimdState<T>::plan_steps(long n, long blocks, long ntiles, int team) {
  // Block a belongs to thread a * team / blocks: runs of consecutive blocks, as even as whole
  // blocks allow (every block has the same pairs to visit, with all N points).
  auto owner = [&](long t, int end) { return static_cast<int>(tiles_[2 * t + end] * team / blocks); };
  // Own tiles first; then each shared tile, in tile order, to the less loaded of its two owners.
  std::vector<double> load(team, 0.0);
  for (long t = 0; t < ntiles; ++t)
    if (owner(t, 0) == owner(t, 1)) load[owner(t, 0)] += tile_work(n, tiles_[2 * t], tiles_[2 * t + 1]);
  std::vector<std::vector<int>> own(team), shared(team);
  std::vector<std::pair<int, int>> waits;  // (thread, a thread it waits for before its update)
  for (long t = 0; t < ntiles; ++t) {
    const int a = owner(t, 0), b = owner(t, 1);
    if (a == b) {
      own[a].push_back(static_cast<int>(t));
      continue;
    }
    const int runner = load[b] < load[a] ? b : a;
    load[runner] += tile_work(n, tiles_[2 * t], tiles_[2 * t + 1]);
    shared[runner].push_back(static_cast<int>(t));
    waits.emplace_back(runner == a ? b : a, runner);
  }
  std::sort(waits.begin(), waits.end());
  waits.erase(std::unique(waits.begin(), waits.end()), waits.end());
  order_.reset(new int[ntiles]);
  owners_.reset(new int[ntiles]);
  deps_.reset(new int[waits.size()]);
  plans_.reset(new ThreadPlan[team]);
  progress_.reset(new Progress[3 * team]);
  queues_.reset(new TileQueue[team]);
  long next = 0, dep = 0;
  for (int k = 0; k < team; ++k) {
    ThreadPlan& plan = plans_[k];
    auto take = [&](int t) {
      const int a = owner(t, 0), b = owner(t, 1);
      order_[next] = t;
      owners_[next++] = a == b ? -1 : a == k ? b : a;
    };
    plan.first = next;
    if (!own[k].empty()) take(own[k][0]);
    for (int t : shared[k]) take(t);
    plan.signal = next;
    for (std::size_t i = 1; i < own[k].size(); ++i) take(own[k][i]);
    plan.end = next;
    if (plan.end - plan.first > kMaxPlanTiles)
      throw std::length_error("too many tiles for one thread's plan (" + std::to_string(plan.end - plan.first) +
                              ", at most " + std::to_string(kMaxPlanTiles) + "): use more threads");
    plan.block_begin = (static_cast<long>(k) * blocks + team - 1) / team;  // first a with a * team / blocks == k
    plan.block_end = (static_cast<long>(k + 1) * blocks + team - 1) / team;
    plan.deps_first = dep;
    for (; dep < static_cast<long>(waits.size()) && waits[dep].first == k; ++dep) deps_[dep] = waits[dep].second;
    plan.deps_end = dep;
  }
}

template <class T>
int SimdState<T>::descend(T* x, long niter, double* stress) {
  const long n = job_.n, dim = job_.dim, chunk = job_.chunk;
  T* xs = job_.x;
  auto at = [&](long i, long k) { return (i / kTile) * chunk + k * kTile + i % kTile; };
  std::fill(xs, xs + job_.blocks * chunk, T(0));  // the padding; a failed run may leave NaN
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < dim; ++k) xs[at(i, k)] = x[i * dim + k];
  job_.niter = niter;
  job_.stress = stress != nullptr && niter > 0;
  job_.used = 0;
  for (int k = 0; k < 3 * job_.threads; ++k) progress_[k].steps = 0;
  for (int k = 0; k < job_.threads; ++k) queues_[k].word = kQueueUnused;
  stolen_ = 0;
  run_kernel(job_, isa_);
  if (job_.stress) {
    double total = 0;
    for (long t = 0; t < job_.ntiles; ++t) total += tile_stress_[t];
    *stress = total;
  }
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < dim; ++k) x[i * dim + k] = xs[at(i, k)];
  return job_.used;
}

template class SimdState<float>;
template class SimdState<double>;

}  // namespace gradi
