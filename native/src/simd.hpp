// The tuned tier (backend cpp-simd): the per-solve state (simd.cpp) and the kernels, compiled once
// per instruction set (simd_<isa>.cpp, all from simd_kernel.hpp).
//
// D^2 is symmetric, so each unordered pair is visited once. The points are cut into blocks of
// kTile; the tile (a, b), a <= b, holds D^2 of rows in block a and columns in block b, and its task
// adds c_ij (x_i - x_j) to the rows of a and subtracts it from the columns of b. Each tile writes
// its own partial sums; then each block adds its partials in a fixed order and steps. No result
// depends on which thread ran which tile, so every thread count gives bit-identical positions.
#pragma once

#include <cstddef>
#include <memory>

namespace gradi {

// Block edge in points: a multiple of every vector width (64 bytes = 16 float32 lanes).
constexpr long kTile = 256;

// Dimensions up to this get a kernel with the accumulators in registers.
constexpr long kMaxFusedDim = 8;

// Below this many points one thread beats a team (measured; see native/README.md).
constexpr long kSimdParallelMinN = 384;

// Per thread scratch: a tile's row and column sums (dim x kTile each), built up here and copied
// to the partials when the tile is done, then room for dim x L vectors of 64 bytes (L lanes): the
// row accumulators of L rows waiting to be summed together (or generic dim's row accumulators).
constexpr long scratch_per_thread(long dim, long itemsize) {
  return dim * (2 * kTile + (64 / itemsize) * (64 / itemsize));
}

// Where each thread's run of tiles starts, and its claim counter (one cache line per thread).
struct TileRun {
  alignas(64) long next;  // the next tile to claim (fetch-and-add)
  long begin, end;        // this thread's run: the tiles [begin, end)
};

// Everything one call of the kernel needs, as raw pointers into the state's buffers.
// Coordinates are structure-of-arrays: coordinate k of point i is at x[k * stride + i], with
// stride = blocks * kTile; the padding (points n .. stride-1) holds zeros.
template <class T>
struct SimdJob {
  const T* d2;        // the tiles in order (0,0), (0,1), ... (0,B-1), (1,1), ...: kTile x kTile each
  const int* tiles;   // two per tile: its row block a and column block b
  long ntiles;
  TileRun* runs;      // one per thread: runs of about equal work, in tile order
  T* x;               // positions (dim x stride), updated in place
  T* partials;        // blocks x blocks x dim x kTile: row sums of tile (a, b) at [a][b] and
                      // column sums at [b][a]; block a's gradient is the sum over [a][0..B-1]
  T* scratch;         // per thread scratch_per_thread(dim, sizeof(T)) elements
  long n;
  long dim;
  long blocks;
  long niter;
  T step;             // 4 * lr: X_i <- X_i - step * sum_j c_ij (X_i - X_j)
  int threads;        // team size; 1 runs without entering OpenMP
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

  // Run niter steps on X (n x dim, row-major, updated in place). Returns the number of threads
  // that ran the tiles (0 when niter is 0).
  int descend(T* x, long niter);

  Isa isa() const { return isa_; }
  int team() const { return job_.threads; }

 private:
  Isa isa_;
  AlignedBuffer<T> d2_, x_, partials_, scratch_;
  std::unique_ptr<int[]> tiles_;
  std::unique_ptr<TileRun[]> runs_;
  SimdJob<T> job_;
};

}  // namespace gradi
