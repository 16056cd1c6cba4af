// The tuned tier (backend cpp-simd): the per-solve state (simd.cpp) and the kernels, compiled once
// per instruction set (simd_<isa>.cpp, all from simd_kernel.hpp).
//
// D^2 is symmetric, so each unordered pair is visited once. The points are cut into blocks of
// kTile; the tile (a, b), a <= b, holds D^2 of rows in block a and columns in block b, and its task
// adds c_ij (x_i - x_j) to the rows of a and subtracts it from the columns of b. Each tile writes
// its own partial sums; then each block adds its partials in a fixed order and steps. No result
// depends on which thread ran which tile, so every thread count gives bit-identical positions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "team.hpp"

namespace gradi {

// Block edge in points: a multiple of every vector width (64 bytes = 16 float32 lanes).
constexpr long kTile = 256;

// Dimensions up to this get a kernel with the accumulators in registers.
constexpr long kMaxFusedDim = 8;

// Below this many points there is one tile per step, nothing for a second thread to share
// (measured; see native/README.md); mojo-simd's SERIAL_BELOW is the same rule.
constexpr long kSimdParallelMinN = kTile + 1;

// How a kernel takes the rows of a tile, which is the order D^2 is stored in: `lanes` columns per
// vector, register blocks of `rows` rows (1 where dim has no fused kernel).
struct TileShape {
  long lanes, rows;
};

// f(first, count) for the row blocks of a tile with `rows` rows below n, in the order the kernel
// takes them (the order D^2 is stored in): runs of shape.rows rows, then single rows, on a
// diagonal tile within each band of shape.lanes rows, so that a block's rows start at the same
// vector of columns.
template <class F>
[[gnu::always_inline]] inline void for_row_blocks(long rows, bool diagonal, const TileShape& shape, F&& f) {
  for (long band = 0; band < rows; band += diagonal ? shape.lanes : rows) {
    const long end = diagonal && band + shape.lanes < rows ? band + shape.lanes : rows;
    long ii = band;
    for (; ii + shape.rows <= end; ii += shape.rows) f(ii, shape.rows);
    for (; ii < end; ++ii) f(ii, 1);
  }
}

// Where D^2 of row first + r (of the block of `count` rows from `first`) and column jj (a
// multiple of `lanes`) lies in its tile: a block takes rows first .. first + count - 1 of the
// row-major tile, and holds them vector by vector, the count rows' vectors of columns jj side by
// side, so that the kernel reads each tile as one forward stream (a row block's rows read side
// by side from rows of their own were that many short streams, which the hardware prefetchers
// did not keep up with once D^2 left the cache; native/README.md).
constexpr long packed_offset(long first, long count, long r, long jj, long lanes) {
  return first * kTile + jj * count + r * lanes;
}

// What different threads store goes to different pages: two threads storing into one page
// slowed each other down whenever the host placed the two vCPUs on different dies, even with
// no cache line in common (native/README.md). `elements` of `itemsize` bytes, in whole pages.
constexpr long kPage = 4096;
constexpr long paged(long elements, long itemsize) {
  return (elements * itemsize + kPage - 1) / kPage * kPage / itemsize;
}

// Resident memory a tuned state adds beyond its buffers and kStateOverhead: the code pages of
// its kernel that building it and its first step touch (64 KiB of text on top of the seed
// state's, measured with VmHWM at N=3000, dim 3, 2 threads: native/README.md, "Memory").
constexpr std::size_t kSimdCodeBytes = std::size_t(64) << 10;

// Per thread scratch: a tile's row and column sums (dim x kTile each), built up here and copied
// to the partials when the tile is done, then room for dim x L vectors of 64 bytes (L lanes): the
// row accumulators of L rows waiting to be summed together (or generic dim's row accumulators).
constexpr long scratch_per_thread(long dim, long itemsize) {
  return paged(dim * (2 * kTile + (64 / itemsize) * (64 / itemsize)), itemsize);
}

// The elements of one block's coordinates, or of one tile's row or column sums: dim x kTile, on
// pages of their own (each is stored by one thread at a time).
constexpr long block_elements(long dim, long itemsize) { return paged(dim * kTile, itemsize); }

// One thread's share of a step (built in simd.cpp). Each thread owns a run of blocks and steps
// them; a tile whose blocks have one owner is that owner's, a tile between two owners goes to
// one of them (it is "shared": it reads the other's positions and writes partials the other
// steps with). A thread takes its tiles in the order order[first .. end): its first own tile,
// then its shared tiles (published as done before order[signal]), then its other own tiles, so
// that the other owners' positions arrive while it works on its own, and its shared partials
// are ready early. Then it waits for the threads in deps[deps_first .. deps_end) (those with a
// shared tile on its blocks) and steps blocks [block_begin, block_end).
// A thread that has stepped its blocks takes, from the back, tiles of order[signal .. end) of a
// thread still at work on the same step (a tile there touches only its owner's blocks): on a
// shared machine one vCPU is often slowed for a while, and its partner then does part of its
// share instead of waiting for it (see TileQueue).
struct ThreadPlan {
  long first, signal, end;
  long deps_first, deps_end;
  long block_begin, block_end;
};

// The tiles of one thread's plan left in the current step, claimed with a compare-and-swap on
// one word: the step (modulo 2^24), the next index from the front (its owner's) and the end of
// what is left (taken down from the back by the threads that steal), 20 bits each.
struct alignas(64) TileQueue {
  std::atomic<std::uint64_t> word{0};
};

// The most tiles one thread's plan may hold (TileQueue's 20-bit indices).
constexpr long kMaxPlanTiles = (1L << 20) - 1;

// A TileQueue's word before the first step of a call: no step's.
constexpr std::uint64_t kQueueUnused = ~std::uint64_t(0);

// The owner's next tile of its plan in `step` (an index from the plan's first), or -1 once the
// rest has been stolen; its first claim in a step starts the step's queue of `length` tiles.
// Not inline, like publish and wait_for: the kernels of every instruction set share one copy.
long claim_front(TileQueue& queue, unsigned step, long length);

// A tile of another thread's plan in `step`, taken from the back, at index `from` or later
// (that thread's own tiles), or -1: when its owner has not begun `step`, or none is left there.
long claim_back(TileQueue& queue, unsigned step, long from);

// Everything one call of the kernel needs, as raw pointers into the state's buffers.
// Coordinates are structure-of-arrays by block: coordinate k of point ii of block a is at
// x[a * chunk + k * kTile + ii]; the padding (points n .. blocks * kTile - 1) holds zeros.
template <class T>
struct SimdJob {
  const T* d2;        // the tiles in order (0,0), (0,1), ... (0,B-1), (1,1), ...: kTile x kTile each
  const int* tiles;   // two per tile: its row block a and column block b
  long ntiles;
  const ThreadPlan* plans;  // one per thread (see ThreadPlan)
  const int* order;   // the tiles as the threads take them, thread after thread
  const int* owners;  // per entry of order: the other owner whose positions it reads, or -1
  const int* deps;    // the threads each thread waits for before its update
  Progress* shared_done;  // per thread: steps whose shared tiles it has done (it alone raises it)
  Progress* stepped;      // per thread: steps it has applied to its blocks (it alone raises it)
  Progress* tiles_done;   // per thread: tiles of its plan done so far in this call, by any thread
  TileQueue* queues;      // per thread: its plan's tiles left in the current step
  long* stolen;           // tiles a thread ran for another in this call (added to atomically)
  T* x;               // positions (blocks x chunk), updated in place
  T* partials;        // blocks x blocks x chunk: row sums of tile (a, b) at [a][b] and column
                      // sums at [b][a]; block a's gradient is the sum over [a][0..B-1]
  T* scratch;         // per thread scratch_per_thread(dim, sizeof(T)) elements
  double* tile_stress;  // per tile: its pairs' sum of c^2 in the last step, when `stress`
  long n;
  long dim;
  long blocks;
  long chunk;         // block_elements(dim, sizeof(T))
  long niter;
  T step;             // 4 * lr: X_i <- X_i - step * sum_j c_ij (X_i - X_j)
  bool stress;        // the last step also fills tile_stress (niter >= 1)
  int threads;        // team size (the plans are for it); 1 runs without entering OpenMP
  int used;           // out: threads that ran the tiles
};

// Instruction sets the kernel is compiled for; kernels for AVX2/AVX-512 exist on x86-64 only.
enum class Isa { baseline, avx2, avx512 };

void simd_run_baseline(SimdJob<float>& job);
void simd_run_baseline(SimdJob<double>& job);
void simd_run_avx2(SimdJob<float>& job);
void simd_run_avx2(SimdJob<double>& job);
void simd_run_avx512(SimdJob<float>& job);
void simd_run_avx512(SimdJob<double>& job);
TileShape simd_shape_baseline(long dim, long itemsize);
TileShape simd_shape_avx2(long dim, long itemsize);
TileShape simd_shape_avx512(long dim, long itemsize);

// The best instruction set this CPU supports (CPUID through __builtin_cpu_supports, which also
// requires the OS to save the wider registers), and whether it supports `isa`.
Isa simd_best_isa();
bool simd_supports(Isa isa);
const char* simd_isa_name(Isa isa);

struct AlignedFree {
  void operator()(void* p) const;
};
template <class T>
using AlignedBuffer = std::unique_ptr<T[], AlignedFree>;

// One solve of the tuned tier: D^2 in tiles, the positions, the partial sums and the scratch,
// allocated and filled once (by the solve's threads) and reused by every descend.
template <class T>
class SimdState {
 public:
  // Runs on one thread when n < parallel_min_n, else on exactly `threads` threads, with the
  // kernel for `isa`. Throws TeamError if that team cannot run here (see team.hpp); so may
  // descend.
  SimdState(const T* d, long n, long dim, double lr, int threads, Isa isa, long parallel_min_n);

  // Bytes the constructor allocates for n points in dim dimensions on `threads` threads.
  static std::size_t working_bytes(long n, long dim, int threads);

  // Run niter steps on X (n x dim, row-major, updated in place). With `stress` (niter >= 1), the
  // last step also stores the stress of the positions it started from there (the tiles' sums
  // of c^2 added in tile order, so for any thread count). Returns the number of threads that ran
  // the tiles (0 when niter is 0).
  int descend(T* x, long niter, double* stress = nullptr);

  Isa isa() const { return isa_; }
  int team() const { return job_.threads; }
  // Tiles of the last descend that a thread ran for another (ThreadPlan: it had stepped its
  // blocks while the other was behind), all steps together; 0 on one thread.
  long stolen() const { return stolen_; }

 private:
  // The plans of a team of `team` threads (see ThreadPlan), from the tiles in tiles_.
  void plan_steps(long n, long blocks, long ntiles, int team);

  Isa isa_;
  AlignedBuffer<T> d2_, x_, partials_, scratch_;
  std::unique_ptr<int[]> tiles_, order_, owners_, deps_;
  std::unique_ptr<ThreadPlan[]> plans_;
  std::unique_ptr<Progress[]> progress_;
  std::unique_ptr<TileQueue[]> queues_;
  long stolen_ = 0;
  std::unique_ptr<double[]> tile_stress_;
  SimdJob<T> job_;
};

}  // namespace gradi
