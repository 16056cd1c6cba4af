// The tuned kernel, compiled once per instruction set: simd_<isa>.cpp defines GRADI_VECTOR_BYTES
// (the vector width), GRADI_VECTOR_REGISTERS (how many the ISA has) and GRADI_RUN (the entry
// point's name), then includes this file with its own -m flags. Everything here has internal
// linkage and uses no inline library templates, so no AVX-512 code can leak into a function the
// linker shares with the rest of the module.
//
// One step is two phases (see simd.hpp for the tiles). Tiles: for a row i of block a and a
// vector of L columns j of block b, with coordinates in structure-of-arrays form,
//   d_k = x_ik - x_jk,  c = sum_k d_k^2 - D2_ij,  row_k += c d_k,  col_jk -= c d_k
// (lane-wise fused multiply-adds). The row sums of a tile are reduced over its lanes in a fixed
// order; the column sums stay lane-wise, accumulated row after row. A diagonal tile (a, a) takes
// only j >= i, so every unordered pair is visited once, and its row and column sums add up to
// one partial. Lanes past n and, in a diagonal tile, lanes j < i are masked to zero; j = i
// contributes d = 0. Update: block a sums its partials over b = 0, 1, ... and steps.
// Which thread runs a tile or a block never changes its arithmetic, so results are bit-identical
// for any thread count.
// Stress (the last step of a call that reports it, STRESS): each row block also adds up c^2 over
// its pairs, lane-wise in the working dtype (at most 8 rows x kTile / L squares per lane), then
// over its lanes in double; a tile adds its row blocks' sums in order and stores the total, and
// the state adds the tiles' totals in tile order. The extra multiply-add touches only those
// sums, so positions are the same with and without it.
#include <cstdint>
#include <type_traits>
#include <utility>

#include "row_block.hpp"
#include "simd.hpp"
#include "team.hpp"
#include "vector_asm.hpp"

namespace gradi {
namespace {

template <class T, int BYTES>
struct VecOf {
  typedef T type __attribute__((vector_size(BYTES)));
};
template <class T>
using V = typename VecOf<T, GRADI_VECTOR_BYTES>::type;
template <class T>
using Bits = typename VecOf<std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>,
                            GRADI_VECTOR_BYTES>::type;
template <class T>
constexpr int kLanes = GRADI_VECTOR_BYTES / static_cast<int>(sizeof(T));

template <class T>
inline V<T> load(const T* p) {
  return *reinterpret_cast<const V<T>*>(p);  // p is aligned: see SimdJob
}

template <class T>
inline void store(T* p, V<T> v) {
  *reinterpret_cast<V<T>*>(p) = v;
}

template <class T>
inline V<T> splat(T a) {
  V<T> zero = {};
  return zero + a;
}

// v in the lanes where mask is all ones, +0 elsewhere (exactly, even where v is inf or NaN).
template <class T>
inline V<T> keep(V<T> v, Bits<T> mask) {
  return reinterpret_cast<V<T>>(reinterpret_cast<Bits<T>>(v) & mask);
}

// The lower (OFFSET 0) or upper (OFFSET L/2) half of a vector of L lanes.
template <int OFFSET, class Vec, std::size_t... I>
inline auto half(Vec v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (OFFSET + static_cast<int>(I))...);
}

// Sum of the L lanes by adding halves (log2(L) vector adds), always in the same order. Shuffles,
// not a copy through memory, so the accumulators stay in registers.
template <int L, class Vec>
inline auto lane_sum(Vec v) {
  if constexpr (L == 2) {
    return v[0] + v[1];
  } else {
    return lane_sum<L / 2>(half<0>(v, std::make_index_sequence<L / 2>()) +
                           half<L / 2>(v, std::make_index_sequence<L / 2>()));
  }
}

// The lane of shufflevector(x, y) that output lane o takes when x and y each hold L / S segments
// of S lanes (one row's partial sums each) and every segment is halved: the output holds x's
// segments then y's, S / 2 lanes each, with the lower (HI false) or upper halves.
template <int L, int S, bool HI>
constexpr int halved_lane(int o) {
  const int half = S / 2, segments = L / S, g = o / half, within = o % half;
  return (g < segments ? g * S : L + (g - segments) * S) + (HI ? half : 0) + within;
}

template <int L, int S, bool HI, class Vec, std::size_t... I>
[[gnu::always_inline]] inline Vec halves(Vec x, Vec y, std::index_sequence<I...>) {
  return __builtin_shufflevector(x, y, halved_lane<L, S, HI>(static_cast<int>(I))...);
}

// v[0 .. S - 1] hold L rows' partial sums in segments of S lanes (L / S rows each); afterwards lane i of v[0] is
// the sum of row i's lanes. L - 1 two-vector shuffles and adds for L rows, where summing each row
// alone (lane_sum) takes log2(L) per row; always the same order.
template <int L, int S = L, class Vec>
[[gnu::always_inline]] inline Vec lane_sums(Vec* v) {
  if constexpr (S == 1) {
    return v[0];
  } else {
    for (int i = 0; i < S; i += 2)
      v[i / 2] = halves<L, S, false>(v[i], v[i + 1], std::make_index_sequence<L>()) +
                 halves<L, S, true>(v[i], v[i + 1], std::make_index_sequence<L>());
    return lane_sums<L, S / 2>(v);
  }
}

// The view of one tile (a, b) in one step.
template <class T>
struct Tile {
  const T* d2;    // this tile's D^2, kTile x kTile, row blocks packed (packed_offset)
  const T* xi;    // coordinate k of row ii of block a at xi[k * kTile + ii]
  const T* xj;    // coordinate k of column jj of block b at xj[k * kTile + jj]
  T* rows_out;    // dim x kTile: row sums (in the thread's scratch)
  T* cols_out;    // dim x kTile: column sums (in the thread's scratch)
  T* lanes;       // dim x L vectors: the row accumulators of L rows, summed together (scratch)
  long rows;      // rows below n
  long full;      // columns in whole vectors below n (a multiple of the lane count)
  long width;     // columns computed: full, or full plus one masked vector
  Bits<T> mask;   // all ones in the lanes of the vector at `full` that are below n
};

// The column sums start from zero; those of padding columns are written (as zeros) too.
template <class T>
void zero_columns(const Tile<T>& t, long dim) {
  for (long idx = 0; idx < dim * kTile; idx += kLanes<T>) store<T>(t.cols_out + idx, V<T>{});
}

// dst = x + y, count elements (a multiple of the lane count), all aligned.
template <class T>
void add(T* dst, const T* x, const T* y, long count) {
  for (long idx = 0; idx < count; idx += kLanes<T>) store<T>(dst + idx, load<T>(x + idx) + load<T>(y + idx));
}

// count elements (a multiple of the lane count) from src to dst, both aligned.
template <class T>
void copy(T* dst, const T* src, long count) {
  for (long idx = 0; idx < count; idx += kLanes<T>) store<T>(dst + idx, load<T>(src + idx));
}

// Ask for the D^2 kPrefetchBytes further on in the tile's stream (packed_offset: the kernel reads
// a tile forward) into the L2: the hardware prefetchers alone fall behind once D^2 leaves the
// cache (native/README.md). 48 KiB, not a power of two: at N=4000 it beat 16, 24, 32, 64, 96 and
// 128 KiB (the powers of two slowest). Integer arithmetic: the address may lie past the buffer,
// which a prefetch never faults on.
constexpr std::uintptr_t kPrefetchBytes = 48 << 10;
inline void prefetch_ahead(const void* p) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) + kPrefetchBytes), 0, 2);
}

// Whether row r of a block of R rows asks for its D^2 (prefetch_ahead): once per 64-byte line.
// Where the R rows' vectors of a column vector fill whole lines (R * vector bytes a multiple of
// 64), the rows whose vector starts a line do; otherwise every row does.
template <class T, int R>
constexpr bool prefetches(int r) {
  constexpr int bytes = kLanes<T> * static_cast<int>(sizeof(T));
  return (R * bytes) % 64 != 0 || (r * bytes) % 64 == 0;
}

// The L lanes of v added in double, always in the same order.
template <class T>
inline double lane_total(V<T> v) {
  double total = 0;
  for (int l = 0; l < kLanes<T>; ++l) total += static_cast<double>(v[l]);
  return total;
}

// One vector of columns jj for R rows ii.. with DIM coordinates held in registers: the column
// sums are loaded once, take the R rows in order, and are stored back. STRESS: c^2 into squares.
// Always inlined: the registers of its caller's loop are its arguments.
template <class T, int DIM, int R, bool MASKED, bool STRESS, bool PER_ROW = false>
[[gnu::always_inline]] inline void pair_vector(const Tile<T>& t, long ii, long jj, const V<T> (&xi)[R][DIM], V<T> (&acc)[R][DIM],
                        V<T>& squares, const Bits<T>* mask) {
  V<T> xj[DIM], col[DIM];
  for (int k = 0; k < DIM; ++k) {
    xj[k] = load<T>(t.xj + k * kTile + jj);
    col[k] = load<T>(t.cols_out + k * kTile + jj);
  }
  for (int r = 0; r < R; ++r) {
    V<T> d[DIM];
    const T* d2 = t.d2 + packed_offset(ii, R, r, jj, kLanes<T>);
    if (prefetches<T, R>(r)) prefetch_ahead(d2);
    V<T> c = load<T>(d2);
    opaque(c);  // D^2 in a register of its own, which c = d_0 d_0 - D^2 then overwrites
    for (int k = 0; k < DIM; ++k) d[k] = xi[r][k] - xj[k];
    c = d[0] * d[0] - c;
    for (int k = 1; k < DIM; ++k) c = d[k] * d[k] + c;
    if (MASKED) c = keep<T>(c, mask[PER_ROW ? r : 0]);
    if constexpr (STRESS) squares = c * c + squares;
    for (int k = 0; k < DIM; ++k) {
      acc[r][k] = c * d[k] + acc[r][k];
      col[k] = col[k] - c * d[k];
    }
  }
  for (int k = 0; k < DIM; ++k) store<T>(t.cols_out + k * kTile + jj, col[k]);
}

// The row sums of rows first .. first+L-1 from their accumulators in t.lanes.
template <class T, int DIM>
__attribute__((noinline)) void sum_rows(const Tile<T>& t, long first) {
  for (int k = 0; k < DIM; ++k) {
    V<T>* v = reinterpret_cast<V<T>*>(t.lanes + k * kLanes<T> * kLanes<T>);
    store<T>(t.rows_out + k * kTile + first, lane_sums<kLanes<T>>(v));
  }
}

// Rows ii .. ii+R-1 of a tile (one row block, for_row_blocks), DIM known at compile time. Their accumulators wait in t.lanes
// until L rows are complete, then the L row sums are formed together. UPPER (a diagonal tile;
// the R rows within one vector's span of columns): only the columns j >= i, with column sums,
// so that each pair of the tile is visited once too; in the first vector each row masks its
// lanes j < i (j = i adds exactly 0). STRESS: adds the rows' sum of c^2 to total (without
// STRESS total is not touched, so the plain step does no work for it).
template <class T, int DIM, int R, bool UPPER, bool STRESS>
[[gnu::always_inline]] inline void rows_fixed(const Tile<T>& t, long ii, double& total) {
  V<T> xi[R][DIM];
  V<T> acc[R][DIM];
  V<T> squares = {};
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < DIM; ++k) {
      xi[r][k] = splat<T>(t.xi[k * kTile + ii + r]);
      acc[r][k] = V<T>{};
    }
  long jj = 0;
  if constexpr (UPPER) {
    jj = ii / kLanes<T> * kLanes<T>;
    Bits<T> lane, upper[R];
    for (int l = 0; l < kLanes<T>; ++l) lane[l] = l;
    for (int r = 0; r < R; ++r) {
      upper[r] = lane >= static_cast<decltype(lane[0] + 0)>(ii + r - jj);
      if (jj == t.full) upper[r] &= t.mask;  // the first vector is also the last, masked past n
    }
    pair_vector<T, DIM, R, true, STRESS, true>(t, ii, jj, xi, acc, squares, upper);
    jj += kLanes<T>;
  }
  for (; jj < t.full; jj += kLanes<T>) pair_vector<T, DIM, R, false, STRESS>(t, ii, jj, xi, acc, squares, &t.mask);
  if (jj < t.width) pair_vector<T, DIM, R, true, STRESS>(t, ii, jj, xi, acc, squares, &t.mask);
  for (int r = 0; r < R; ++r) {
    const long row = ii + r;
    for (int k = 0; k < DIM; ++k) store<T>(t.lanes + (k * kLanes<T> + row % kLanes<T>) * kLanes<T>, acc[r][k]);
    if (row % kLanes<T> == kLanes<T> - 1) sum_rows<T, DIM>(t, row + 1 - kLanes<T>);
  }
  if constexpr (STRESS) total += lane_total<T>(squares);
}

// Whole tile, DIM known at compile time, row block after row block in for_row_blocks' order (so
// the column sums add row after row). A diagonal tile visits its upper triangle (each pair once),
// its row blocks within each vector's span of rows, so that only the first vector of a row needs
// a mask. Returns the tile's sum of c^2 over its pairs (STRESS), else 0.
template <class T, int DIM, bool DIAG, bool STRESS>
double tile_fixed(const Tile<T>& t) {
  zero_columns(t, DIM);
  constexpr int R = row_block(DIM);
  double total = 0;
  for_row_blocks(t.rows, DIAG, TileShape{kLanes<T>, R}, [&](long first, long count) __attribute__((always_inline)) {
    if (count == R)
      rows_fixed<T, DIM, R, DIAG, STRESS>(t, first, total);
    else
      rows_fixed<T, DIM, 1, DIAG, STRESS>(t, first, total);
  });
  long ii = t.rows;
  if (ii % kLanes<T> != 0) sum_rows<T, DIM>(t, ii - ii % kLanes<T>);  // the last rows (the rest set below)
  for (; ii < kTile; ++ii)
    for (int k = 0; k < DIM; ++k) t.rows_out[k * kTile + ii] = 0;
  return total;
}

// One vector of columns jj for row ii, any dim: c in a first pass over k, then the sums in a second.
// STRESS: c^2 into squares.
template <class T, bool DIAG, bool MASKED, bool STRESS>
inline void pair_generic(const Tile<T>& t, long dim, long ii, long jj, V<T>* acc, V<T>& squares) {
  V<T> c = -load<T>(t.d2 + packed_offset(ii, 1, 0, jj, kLanes<T>));  // row blocks of one row
  for (long k = 0; k < dim; ++k) {
    const V<T> d = splat<T>(t.xi[k * kTile + ii]) - load<T>(t.xj + k * kTile + jj);
    c = d * d + c;
  }
  if (MASKED) c = keep<T>(c, t.mask);
  if constexpr (STRESS) squares = c * c + squares;
  for (long k = 0; k < dim; ++k) {
    const V<T> d = splat<T>(t.xi[k * kTile + ii]) - load<T>(t.xj + k * kTile + jj);
    acc[k] = c * d + acc[k];
    if (!DIAG) store<T>(t.cols_out + k * kTile + jj, load<T>(t.cols_out + k * kTile + jj) - c * d);
  }
}

// Whole tile, any dim, row by row; acc is this thread's scratch of dim vectors. A diagonal tile
// visits every ordered pair of its block (no column sums), so its sum of c^2 (STRESS) is halved.
template <class T, bool DIAG, bool STRESS>
double tile_generic(const Tile<T>& t, long dim, V<T>* acc) {
  if (!DIAG) zero_columns(t, dim);
  double total = 0;
  for (long ii = 0; ii < kTile; ++ii) {
    if (ii >= t.rows) {
      for (long k = 0; k < dim; ++k) t.rows_out[k * kTile + ii] = 0;
      continue;
    }
    for (long k = 0; k < dim; ++k) acc[k] = V<T>{};
    V<T> squares = {};
    long jj = 0;
    for (; jj < t.full; jj += kLanes<T>) pair_generic<T, DIAG, false, STRESS>(t, dim, ii, jj, acc, squares);
    if (jj < t.width) pair_generic<T, DIAG, true, STRESS>(t, dim, ii, jj, acc, squares);
    for (long k = 0; k < dim; ++k) t.rows_out[k * kTile + ii] = lane_sum<kLanes<T>>(acc[k]);
    if constexpr (STRESS) total += lane_total<T>(squares);
  }
  return DIAG ? total / 2 : total;
}

// The tile number `index` of one step: rows of block a, columns of block b >= a. Its row and
// column sums build up in this thread's scratch and are copied to the partials at the end: the
// partials were last read by whichever thread updated their block, and storing into them from
// the inner loop waits on those cache lines. STRESS: the tile's sum of c^2 into job.tile_stress.
template <class T, int DIM, bool STRESS>
void run_tile(const SimdJob<T>& job, long index, T* scratch) {
  const long a = job.tiles[2 * index], b = job.tiles[2 * index + 1];
  const long dim = job.dim, chunk = job.chunk;
  const long cols = job.n - b * kTile < kTile ? job.n - b * kTile : kTile;
  const long full = cols / kLanes<T> * kLanes<T>;
  Tile<T> t{job.d2 + index * kTile * kTile,
            job.x + a * chunk,
            job.x + b * chunk,
            scratch,
            scratch + dim * kTile,
            scratch + 2 * dim * kTile,
            job.n - a * kTile < kTile ? job.n - a * kTile : kTile,
            full,
            full < cols ? full + kLanes<T> : full,
            Bits<T>{}};
  for (int l = 0; l < kLanes<T>; ++l) t.mask[l] = full + l < cols ? -1 : 0;
  double squares;
  if constexpr (DIM > 0) {
    squares = a == b ? tile_fixed<T, DIM, true, STRESS>(t) : tile_fixed<T, DIM, false, STRESS>(t);
  } else {
    V<T>* acc = reinterpret_cast<V<T>*>(scratch + 2 * dim * kTile);
    squares = a == b ? tile_generic<T, true, STRESS>(t, dim, acc) : tile_generic<T, false, STRESS>(t, dim, acc);
  }
  if constexpr (STRESS) job.tile_stress[index] = squares;
  if (a == b && DIM > 0) {  // rows and columns of the same points: one partial, their sum
    add<T>(job.partials + (a * job.blocks + a) * chunk, t.rows_out, t.cols_out, dim * kTile);
    return;
  }
  copy<T>(job.partials + (a * job.blocks + b) * chunk, t.rows_out, dim * kTile);
  if (a != b) copy<T>(job.partials + (b * job.blocks + a) * chunk, t.cols_out, dim * kTile);
}

// x <- x - step * (sum over b = 0, 1, ... of block a's partials) for the points of block a.
template <class T>
void update_block(const SimdJob<T>& job, long a) {
  const V<T> step = splat<T>(job.step);
  for (long k = 0; k < job.dim; ++k)
    for (long ii = 0; ii < kTile; ii += kLanes<T>) {
      V<T> g = {};
      for (long b = 0; b < job.blocks; ++b)
        g += load<T>(job.partials + (a * job.blocks + b) * job.chunk + k * kTile + ii);
      T* at = job.x + a * job.chunk + k * kTile + ii;
      store<T>(at, load<T>(at) - step * g);
    }
}

// One step on one thread of the planned team (see ThreadPlan): its tiles, publishing its shared
// ones, then, once the threads with shared tiles on its blocks have published theirs and every
// tile of its plan is done (some perhaps by another thread), its blocks' update; then it steals
// tiles of the other threads' plans still left in this step. A shared tile first waits for the
// other owner's positions of this step; a stolen one touches only its owner's blocks, whose
// positions are this step's once the owner has begun it.
template <class T, int DIM, bool STRESS>
void planned_step(const SimdJob<T>& job, int me, unsigned step, long spins, T* scratch) {
  const ThreadPlan& plan = job.plans[me];
  const long length = plan.end - plan.first;
  bool signalled = false;
  for (long i; (i = claim_front(job.queues[me], step, length)) >= 0;) {
    const long p = plan.first + i;
    if (job.owners[p] >= 0) wait_for(job.stepped[job.owners[p]], step, spins);
    run_tile<T, DIM, STRESS>(job, job.order[p], scratch);
    add_progress(job.tiles_done[me], 1);
    if (p + 1 == plan.signal) {  // before its next claim, so that what is left can be stolen
      publish(job.shared_done[me], step + 1);
      signalled = true;
    }
  }
  if (!signalled) publish(job.shared_done[me], step + 1);
  wait_for(job.tiles_done[me], (step + 1) * static_cast<unsigned>(length), spins);
  for (long k = plan.deps_first; k < plan.deps_end; ++k) wait_for(job.shared_done[job.deps[k]], step + 1, spins);
  for (long a = plan.block_begin; a < plan.block_end; ++a) update_block<T>(job, a);
  publish(job.stepped[me], step + 1);
  for (int k = 1; k < job.threads; ++k) {
    const int other = (me + k) % job.threads;
    const ThreadPlan& theirs = job.plans[other];
    for (long i; (i = claim_back(job.queues[other], step, theirs.signal - theirs.first)) >= 0;) {
      run_tile<T, DIM, STRESS>(job, job.order[theirs.first + i], scratch);
      add_progress(job.tiles_done[other], 1);
      __atomic_fetch_add(job.stolen, 1, __ATOMIC_RELAXED);
    }
  }
}

// One step on one thread, every tile and block in order (a team smaller than planned).
template <class T, int DIM, bool STRESS>
void serial_step(const SimdJob<T>& job, T* scratch) {
  for (long index = 0; index < job.ntiles; ++index) run_tile<T, DIM, STRESS>(job, index, scratch);
  for (long a = 0; a < job.blocks; ++a) update_block<T>(job, a);
}

// All iterations inside one team, the threads in step with each other only through the
// Progress counts and tile queues of the plan: no barrier. If OpenMP gave a smaller team than
// planned (OMP_THREAD_LIMIT, OMP_DYNAMIC), its first thread runs every tile and block alone.
// With job.stress the last step is the STRESS one.
template <class T, int DIM>
void run_iterations(SimdJob<T>& job) {
  int used = job.niter > 0 ? 1 : 0;
  const long plain = job.stress ? job.niter - 1 : job.niter;
  run_team(job.threads, [&] {
    const int me = team_index(), team = team_size();
    T* scratch = job.scratch + me * scratch_per_thread(job.dim, sizeof(T));
    if (team == job.threads) {
      if (me == 0 && job.niter > 0) used = team;
      const long spins = wait_spins(team);
      for (long it = 0; it < plain; ++it)
        planned_step<T, DIM, false>(job, me, static_cast<unsigned>(it), spins, scratch);
      if (job.stress) planned_step<T, DIM, true>(job, me, static_cast<unsigned>(plain), spins, scratch);
    } else if (me == 0) {
      for (long it = 0; it < plain; ++it) serial_step<T, DIM, false>(job, scratch);
      if (job.stress) serial_step<T, DIM, true>(job, scratch);
    }
  });
  job.used = used;
}

template <class T>
void run(SimdJob<T>& job) {
  switch (job.dim) {
    case 1: return run_iterations<T, 1>(job);
    case 2: return run_iterations<T, 2>(job);
    case 3: return run_iterations<T, 3>(job);
    case 4: return run_iterations<T, 4>(job);
    case 5: return run_iterations<T, 5>(job);
    case 6: return run_iterations<T, 6>(job);
    case 7: return run_iterations<T, 7>(job);
    case 8: return run_iterations<T, 8>(job);
    default: return run_iterations<T, 0>(job);
  }
}

}  // namespace

TileShape GRADI_SHAPE(long dim, long itemsize) {
  return {GRADI_VECTOR_BYTES / itemsize, dim <= kMaxFusedDim ? row_block(static_cast<int>(dim)) : 1};
}

void GRADI_RUN(SimdJob<float>& job) { run(job); }
void GRADI_RUN(SimdJob<double>& job) { run(job); }

}  // namespace gradi
