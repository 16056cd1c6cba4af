# The tuned kernel: structure-of-arrays coordinates, D^2 laid out once per solve, the loop over j
# vectorised with the machine's SIMD width (simd_width_of, a masked last vector), parallel with
# `threads` workers.
#
# D^2 is symmetric, so each unordered pair is visited once: the points are cut into blocks
# of TILE, and the task for a tile (I, J) with I <= J adds c_ij (x_i - x_j) to the rows of I
# and subtracts it from the rows of J; a diagonal tile (I, I) takes only j >= i (dim 1-4), its
# row and column sums in one partial. That halves both the arithmetic and the D^2 memory
# streamed every step (D^2 is stored as packed upper-triangle tiles, each in the order the
# kernel reads it: see packed_offset). Every tile writes its own partial sums; a second phase
# adds the partials of each block in a fixed order and updates X. No result depends on which
# worker ran which task, so every thread count gives bit-identical positions. The layout and
# the blocking are the C++ tuned kernel's (native/src/simd.hpp, simd_kernel.hpp).
#
# Per-solve state: `simd_prepare` fills the D^2 tiles of a workspace (one buffer the caller
# owns, see Layout) once; every `simd_descend` call reuses them, so a solve run in chunks pays
# the layout once. A call depends only on (X, D^2, lr, niter): chunking never changes a result.
#
# Stress (`simd_descend` with stress, on its last step only): each row pass also adds up c^2
# lane-wise in the working dtype (at most 8 rows x TILE / W squares per lane), then over its
# lanes in Float64; a tile adds its row passes in order (halved on the diagonal of the generic
# tile, which visits every ordered pair) into its own Float64 slot, and the slots are added in
# tile order after the step: the same total for any thread count, and the positions are
# untouched.

from std.atomic import Atomic
from std.ffi import external_call
from std.memory import Pointer
from std.sys import simd_width_of, size_of
from std.sys.intrinsics import PrefetchOptions, prefetch
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]

# Tile edge: a multiple of every SIMD width, large enough to amortise the per-row reductions
# (16 AVX-512 vectors); a float32 tile of D^2 (256 KB) still fits in a core's L2.
comptime TILE = 256
# How far ahead in a tile's stream of D^2 (packed_offset: the kernel reads a tile forward) the
# tile loop asks for it, in bytes, into the L2: the hardware prefetchers alone fall behind once
# D^2 leaves the cache (kPrefetchBytes of the C++ kernel, native/src/simd_kernel.hpp).
comptime PREFETCH_BYTES = 49152
# Vector registers of the ISA the kernel is compiled for: 32 with AVX-512's 64-byte vectors, 16
# with AVX2 and SSE (as GRADI_VECTOR_REGISTERS in native/src/simd_<isa>.cpp).
comptime REGISTERS = 32 if simd_width_of[DType.float32]() == 16 else 16
# Dimensions up to this get a compile-time kernel (tile_fixed) with its row blocks in registers.
comptime MAX_FUSED_DIM = 4
# The workspace's Layout starts on a page (PAGE bytes), and so does every part of it: what
# different workers store never shares a page: two workers storing into one page (the partial
# sums of two tiles side by side) slowed each other down whenever the host placed the two vCPUs
# on different dies (native/README.md, "Pages of their own").
comptime PAGE = 4096
# Elements that fill whole pages for 4- and 8-byte elements alike.
comptime PAGE_ELEMENTS = 1024
# The workers' task counters (Int64), one per 64-byte line: COUNTER_STRIDE words apart, and
# COUNTER_ELEMENTS elements of the workspace each (64 bytes or more for 4- and 8-byte elements).
comptime COUNTER_STRIDE = 8
comptime COUNTER_ELEMENTS = 16
# Elements of the workspace that hold one tile's stress (a Float64) for 4- and 8-byte elements.
comptime STRESS_ELEMENTS = 2


@fieldwise_init
struct Layout(Copyable):
    """The workspace of one problem (N points in dim dimensions, up to `threads` workers), in
    elements from its page-aligned start: D^2 tiles, the coordinates block by block (a block's dim
    rows of TILE coordinates in one chunk), per-tile partial sums (a chunk each), for dim > 4
    one TILE x TILE buffer per worker (every part so far a whole number of pages), then the
    workers' task counters and one Float64 per tile for its stress."""
    var n: Int
    var dim: Int
    var threads: Int
    var blocks: Int
    var chunk: Int
    var tiles: Int

    @staticmethod
    def of(n: Int, dim: Int, threads: Int) -> Layout:
        var blocks = (n + TILE - 1) // TILE
        var chunk = (dim * TILE + PAGE_ELEMENTS - 1) // PAGE_ELEMENTS * PAGE_ELEMENTS
        return Layout(n, dim, threads, blocks, chunk, blocks * (blocks + 1) // 2)

    def xs(self) -> Int:
        return self.tiles * TILE * TILE

    def partials(self) -> Int:
        return self.xs() + self.blocks * self.chunk

    def scratch(self) -> Int:
        return self.partials() + self.blocks * self.blocks * self.chunk

    def counters(self) -> Int:
        return self.scratch() + (self.threads * TILE * TILE if self.dim > MAX_FUSED_DIM else 0)

    def stresses(self) -> Int:
        return self.counters() + 2 * self.threads * COUNTER_ELEMENTS

    def total(self) -> Int:
        return self.stresses() + STRESS_ELEMENTS * self.tiles

    def total_estimate(self) -> Float64:
        """total() in floating point, to refuse sizes whose element count would overflow Int."""
        var blocks = Float64(self.blocks)
        var tile = Float64(TILE)
        var chunk = Float64(self.chunk)
        return (blocks * (blocks + 1) / 2 * (tile * tile + Float64(STRESS_ELEMENTS)) + blocks * chunk
                + blocks * blocks * chunk + Float64(self.threads) * (tile * tile + 2 * Float64(COUNTER_ELEMENTS)))


def tile_position(t: Int, blocks: Int) -> Tuple[Int, Int]:
    """(I, J) of the t-th packed upper-triangle tile, row by row."""
    var bi = 0
    var rest = t
    while rest >= blocks - bi:
        rest -= blocks - bi
        bi += 1
    return (bi, bi + rest)


def done_counter(counters: Ptr[Int64], run: Int) -> Ptr[Int64]:
    """Tasks of `run` done so far in this call, by whichever worker did them."""
    return counters.unsafe_offset((2 * run + 1) * COUNTER_STRIDE)


def claim_counter(counters: Ptr[Int64], run: Int) -> Ptr[Int64]:
    """Tasks of `run` claimed so far in this call."""
    return counters.unsafe_offset(2 * run * COUNTER_STRIDE)


def wait_until_done(counters: Ptr[Int64], runs: Int, target: Int):
    """Spin until the runs' done counters add up to target, yielding the CPU now and then."""
    var spins = 0
    while True:
        var done = 0
        for run in range(runs):
            done += Int(Atomic[Int64].load(done_counter(counters, run)))
        if done >= target:
            return
        spins += 1
        if spins == 4096:
            _ = external_call["sched_yield", Int32]()
            spins = 0


def claim(counter: Ptr[Int64], lo: Int, hi: Int) -> Int:
    """Take the next task of a run in [lo, hi) (its index from lo), or -1 when none is left."""
    while True:
        var seen = Atomic[Int64].load(counter)
        if Int(seen) < lo or Int(seen) >= hi:
            return -1
        var expected = seen
        if Atomic[Int64].compare_exchange(counter, expected, seen + 1):
            return Int(seen) - lo


def first_tile(run: Int, runs: Int, blocks: Int) -> Int:
    """The first tile of `run`: the tiles, in order, cut into `runs` runs of about equal work (a
    diagonal tile, half its pairs plus the masked first vectors, counts 8; one off the diagonal
    15: the C++ plan's 1.6 to 3)."""
    var tiles = blocks * (blocks + 1) // 2
    if run >= runs:
        return tiles
    var target = (15 * tiles - 7 * blocks) * run // runs
    var work = 0
    var t = 0
    for bi in range(blocks):
        for bj in range(bi, blocks):
            if work >= target:
                return t
            work += 8 if bi == bj else 15
            t += 1
    return tiles


def first_block(run: Int, runs: Int, blocks: Int) -> Int:
    """The first block `run` updates: the blocks cut into `runs` even runs."""
    return min(run, runs) * blocks // runs


def phase_tasks(run: Int, runs: Int, blocks: Int, step: Int, updates: Bool) -> Tuple[Int, Int, Int]:
    """(first, count, base) of `run`'s tasks in one phase of `step`: its tiles, or (updates)
    the blocks it steps, and where its claim counter stands when the phase begins (a run claims
    its tiles then its blocks, step after step)."""
    var t0 = first_tile(run, runs, blocks)
    var tiles = first_tile(run + 1, runs, blocks) - t0
    var b0 = first_block(run, runs, blocks)
    var steps = first_block(run + 1, runs, blocks) - b0
    var base = step * (tiles + steps)
    if updates:
        return (b0, steps, base + tiles)
    return (t0, tiles, base)


def tail_mask[dt: DType, W: Int](valid: Int) -> SIMD[dt, W]:
    """1 in the first `valid` lanes, 0 in the others: cancels the padding columns."""
    var mask = SIMD[dt, W](0)
    for lane in range(min(valid, W)):
        mask[lane] = 1
    return mask


def row_block(dim: Int) -> Int:
    """Rows per register block of the fused kernel (row_block in native/src/row_block.hpp): the
    most for which the broadcast x_i, the row and column accumulators, x_j and the differences
    fit the vector registers, at most 8, and two where they hold one up to dim 3 (the second
    row's x_i spill to L1, cheaper than the x_j and column sums it shares); 1 for the generic
    tile (dim > MAX_FUSED_DIM)."""
    if dim > MAX_FUSED_DIM:
        return 1
    var rows = max(1, min(8, (REGISTERS - 3 * dim - 2) // (2 * dim)))
    return 2 if rows < 2 and dim <= 3 else rows


def row_block_of(ii: Int, rows: Int, diagonal: Bool, lanes: Int, block: Int) -> Tuple[Int, Int]:
    """(first, count) of the row block that row ii of a tile with `rows` rows below n belongs to,
    as the kernel takes them: runs of `block` rows, then single rows, on a diagonal tile within
    each band of `lanes` rows (so that a block's rows start at the same vector of columns); a row
    past n alone (row_block_of in native/src/simd.hpp)."""
    if ii >= rows:
        return (ii, 1)
    var band = ii // lanes * lanes if diagonal else 0
    var end = min(band + lanes, rows) if diagonal else rows
    var first = band + (ii - band) // block * block
    if first + block <= end:
        return (first, block)
    return (ii, 1)


@always_inline
def packed_offset(first: Int, count: Int, r: Int, jj: Int, lanes: Int) -> Int:
    """Where D^2 of row first + r (of the row block of `count` rows from `first`) and column jj (a
    multiple of `lanes`) lies in its tile: the block holds its rows vector by vector, the count
    rows' vectors of columns jj side by side, so that the kernel reads each tile as one forward
    stream (packed_offset in native/src/simd.hpp)."""
    return first * TILE + jj * count + r * lanes


def prefetches[R: Int, vector_bytes: Int](r: Int) -> Bool:
    """Whether row r of a block of R rows asks for its D^2 ahead: once per 64-byte line (the rows
    whose vector starts a line where the R rows' vectors fill whole lines, else every row;
    prefetches in native/src/simd_kernel.hpp)."""
    return (R * vector_bytes) % 64 != 0 or (r * vector_bytes) % 64 == 0


@always_inline
def pair_vector[dt: DType, DIM: Int, R: Int, stress: Bool, W: Int](
    xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], cols_out: Ptr[Scalar[dt]], ii: Int, jj: Int,
    xi: Array[SIMD[dt, W], R * DIM], mut acc: Array[SIMD[dt, W], R * DIM], mut squares: SIMD[dt, W],
    masks: Array[SIMD[dt, W], R], masked: Bool,
):
    """One vector of columns jj for the R rows ii..: x_j and the column sums are loaded once, the
    column sums take the R rows in order and are stored back. `masked`: row r's c times masks[r]
    (1 or 0 per lane). With stress, c^2 into squares."""
    var xj = Array[SIMD[dt, W], DIM](fill=0)
    var col = Array[SIMD[dt, W], DIM](fill=0)
    comptime for k in range(DIM):
        xj[k] = xj0.unsafe_load[width=W](k * TILE + jj)
        col[k] = cols_out.unsafe_load[width=W](k * TILE + jj)
    comptime for r in range(R):
        var at = packed_offset(ii, R, r, jj, W)
        comptime if prefetches[R, W * size_of[Scalar[dt]]()](r):
            prefetch[PrefetchOptions().for_read().medium_locality()](
                d2.unsafe_offset(at + PREFETCH_BYTES // size_of[Scalar[dt]]()))
        var diff = Array[SIMD[dt, W], DIM](fill=0)
        var c = -d2.unsafe_load[width=W](at)
        # The differences first, then c, in the C++ kernel's order: so LLVM keeps the two-row
        # dim 3 block (AVX2) with fewer spills and vector moves (mojo/README.md).
        comptime for k in range(DIM):
            diff[k] = xi[r * DIM + k] - xj[k]
        comptime for k in range(DIM):
            c = diff[k].fma(diff[k], c)
        if masked:
            c *= masks[r]
        comptime if stress:
            squares = c.fma(c, squares)
        comptime for k in range(DIM):
            acc[r * DIM + k] = c.fma(diff[k], acc[r * DIM + k])
            col[k] = (-c).fma(diff[k], col[k])
    comptime for k in range(DIM):
        cols_out.unsafe_store[width=W](k * TILE + jj, col[k])


@always_inline
def rows_pass[dt: DType, DIM: Int, R: Int, diagonal: Bool, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], ii: Int, full: Int, width: Int, mask: SIMD[dt, simd_width_of[dt]()],
    uppers: Array[SIMD[dt, simd_width_of[dt]()], simd_width_of[dt]()], mut total: Float64,
):
    """Rows ii..ii+R-1 of tile (i0, j0), one row block (row_block_of): their terms added to their
    row sums and subtracted from the column sums in cols_out, row after row (the same order for
    any R). xi0 and xj0 are the coordinate chunks of the tile's row and column blocks. The
    columns below `full` (whole vectors below n) are taken unmasked, the vector at `full` (when
    `width` is past it) with `mask`. Diagonal: only the columns j >= i, from the vector that
    holds column ii (each row masks its lanes j < i with uppers[i - that vector's first column];
    j = i adds 0), and the row sums are added to the column sums in rows_out (the same partial,
    column ii's sum complete by then). With stress, adds the rows' sum of c^2 to total (without
    it total is not touched, so the plain step does no work for it)."""
    comptime W = simd_width_of[dt]()
    var squares = SIMD[dt, W](0)
    var xi = Array[SIMD[dt, W], R * DIM](fill=0)
    comptime for r in range(R):
        comptime for k in range(DIM):
            xi[r * DIM + k] = SIMD[dt, W](xi0.unsafe_load(k * TILE + ii + r))
    var acc = Array[SIMD[dt, W], R * DIM](fill=0)
    var tail = Array[SIMD[dt, W], R](fill=mask)
    var jj = 0
    comptime if diagonal:
        jj = ii // W * W
        var upper = Array[SIMD[dt, W], R](fill=0)
        comptime for r in range(R):
            # ii + r - jj < W: a block's rows lie in one vector's span (row_block_of)
            upper[r] = uppers.unsafe_get(ii + r - jj) * mask if jj == full else uppers.unsafe_get(ii + r - jj)
        pair_vector[dt, DIM, R, stress, W](xj0, d2, cols_out, ii, jj, xi, acc, squares, upper, True)
        jj += W
    for j in range(jj, full, W):
        pair_vector[dt, DIM, R, stress, W](xj0, d2, cols_out, ii, j, xi, acc, squares, tail, False)
    if jj <= full and full < width:
        pair_vector[dt, DIM, R, stress, W](xj0, d2, cols_out, ii, full, xi, acc, squares, tail, True)
    comptime for r in range(R):
        comptime for k in range(DIM):
            var at = k * TILE + ii + r
            comptime if diagonal:
                rows_out.unsafe_store(at, rows_out.unsafe_load(at) + acc[r * DIM + k].reduce_add())
            else:
                rows_out.unsafe_store(at, acc[r * DIM + k].reduce_add())
    comptime if stress:
        total += squares.cast[DType.float64]().reduce_add()


def tile_fixed[dt: DType, DIM: Int, diagonal: Bool, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], n: Int, i0: Int, j0: Int,
) -> Float64:
    """Tile (i0, j0), compile-time dim: row sums into rows_out, minus the column sums into
    cols_out (both DIM x TILE, coordinate-major; one partial on the diagonal, whose tile visits
    its upper triangle), row block after row block in the order row_block_of gives (the loops of
    for_row_blocks in native/src/simd.hpp). Returns the tile's sum of c^2 over its pairs
    (stress), else 0."""
    comptime W = simd_width_of[dt]()
    comptime R = row_block(DIM)
    var rows = min(TILE, n - i0)
    var cols = min(TILE, n - j0)
    var full = cols // W * W  # columns in whole vectors below n
    var width = full + W if full < cols else full  # and one masked vector past them
    var mask = tail_mask[dt, W](cols - full)
    var uppers = Array[SIMD[dt, W], W](fill=0)  # uppers[t]: 1 in the lanes from t on
    comptime if diagonal:
        for t in range(W):
            for lane in range(t, W):
                uppers[t][lane] = 1
    for idx in range(DIM * TILE):
        cols_out.unsafe_store(idx, 0)
    var total: Float64 = 0
    var band = 0
    while band < rows:  # a diagonal tile's bands of W rows, else all its rows at once
        var end = min(band + W, rows) if diagonal else rows
        var ii = band
        while ii + R <= end:
            rows_pass[dt, DIM, R, diagonal, stress](
                xi0, xj0, d2, rows_out, cols_out, ii, full, width, mask, uppers, total)
            ii += R
        while ii < end:
            rows_pass[dt, DIM, 1, diagonal, stress](
                xi0, xj0, d2, rows_out, cols_out, ii, full, width, mask, uppers, total)
            ii += 1
        band = end
    comptime if not diagonal:
        for row in range(rows, TILE):
            comptime for k in range(DIM):
                rows_out.unsafe_store(k * TILE + row, 0)
    return total


def tile_generic[diagonal: Bool, dt: DType, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], c: Ptr[Scalar[dt]], n: Int, dim: Int, i0: Int, j0: Int,
) -> Float64:
    """Tile (i0, j0), any dim: c_ij into a TILE x TILE buffer first, then one pass per coordinate.
    Returns the tile's sum of c^2 over its pairs (stress: one more pass over the buffer), else 0."""
    comptime W = simd_width_of[dt]()
    var rows = min(TILE, n - i0)
    var width = min(TILE, (n - j0 + W - 1) // W * W)
    var last = width - W
    var mask = tail_mask[dt, W](n - j0 - last)
    for ii in range(rows):
        for jj in range(0, width, W):
            c.unsafe_store[width=W](ii * TILE + jj, -d2.unsafe_load[width=W](ii * TILE + jj))
    for k in range(dim):
        for ii in range(rows):
            var xik = SIMD[dt, W](xi0.unsafe_load(k * TILE + ii))
            for jj in range(0, width, W):
                var diff = xik - xj0.unsafe_load[width=W](k * TILE + jj)
                c.unsafe_store[width=W](ii * TILE + jj, diff.fma(diff, c.unsafe_load[width=W](ii * TILE + jj)))
    for ii in range(rows):
        c.unsafe_store[width=W](ii * TILE + last, c.unsafe_load[width=W](ii * TILE + last) * mask)
    var total: Float64 = 0
    comptime if stress:
        for ii in range(rows):
            var squares = SIMD[dt, W](0)
            for jj in range(0, width, W):
                var cij = c.unsafe_load[width=W](ii * TILE + jj)
                squares = cij.fma(cij, squares)
            total += squares.cast[DType.float64]().reduce_add()
    for k in range(dim):
        comptime if not diagonal:
            for jj in range(TILE):
                cols_out.unsafe_store(k * TILE + jj, 0)
        for ii in range(rows):
            var xik = SIMD[dt, W](xi0.unsafe_load(k * TILE + ii))
            var acc = SIMD[dt, W](0)
            for jj in range(0, width, W):
                var term = c.unsafe_load[width=W](ii * TILE + jj) * (xik - xj0.unsafe_load[width=W](k * TILE + jj))
                acc += term
                comptime if not diagonal:
                    cols_out.unsafe_store[width=W](k * TILE + jj, cols_out.unsafe_load[width=W](k * TILE + jj) - term)
            rows_out.unsafe_store(k * TILE + ii, acc.reduce_add())
        for ii in range(rows, TILE):
            rows_out.unsafe_store(k * TILE + ii, 0)
    return total / 2 if diagonal else total


def tile_task[diagonal: Bool, dt: DType, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], c: Ptr[Scalar[dt]], n: Int, dim: Int, i0: Int, j0: Int,
) -> Float64:
    """Dispatch the runtime dim to a compile-time specialisation (1 to MAX_FUSED_DIM) or the generic
    tile."""
    if dim == 1:
        return tile_fixed[dt, 1, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, n, i0, j0)
    elif dim == 2:
        return tile_fixed[dt, 2, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, n, i0, j0)
    elif dim == 3:
        return tile_fixed[dt, 3, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, n, i0, j0)
    elif dim == 4:
        return tile_fixed[dt, 4, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, n, i0, j0)
    return tile_generic[diagonal, dt, stress](xi0, xj0, d2, rows_out, cols_out, c, n, dim, i0, j0)


def run_tile[dt: DType, stress: Bool](
    xs: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], partials: Ptr[Scalar[dt]], c: Ptr[Scalar[dt]],
    stresses: Ptr[Float64], n: Int, dim: Int, chunk: Int, blocks: Int, r: Int,
):
    """Tile r of the packed upper triangle: its row and column partial sums; with stress, its sum
    of c^2 into stresses[r]."""
    var bi, bj = tile_position(r, blocks)
    var tile = d2.unsafe_offset(r * TILE * TILE)
    var rows_out = partials.unsafe_offset((bi * blocks + bj) * chunk)
    var cols_out = partials.unsafe_offset((bj * blocks + bi) * chunk)
    var xi0 = xs.unsafe_offset(bi * chunk)
    var xj0 = xs.unsafe_offset(bj * chunk)
    var squares: Float64
    if bi == bj:
        squares = tile_task[True, dt, stress](xi0, xj0, tile, rows_out, cols_out, c, n, dim, bi * TILE, bj * TILE)
    else:
        squares = tile_task[False, dt, stress](xi0, xj0, tile, rows_out, cols_out, c, n, dim, bi * TILE, bj * TILE)
    comptime if stress:
        stresses.unsafe_store(r, squares)


def update_block[dt: DType](
    xs: Ptr[Scalar[dt]], partials: Ptr[Scalar[dt]], blocks: Int, dim: Int, chunk: Int,
    lr: Scalar[dt], a: Int,
):
    """x <- x - lr * 4 * (partials of block a summed over b = 0, 1, ... in that order)."""
    comptime W = simd_width_of[dt]()
    for k in range(dim):
        for ii in range(0, TILE, W):
            var g = SIMD[dt, W](0)
            for b in range(blocks):
                g += partials.unsafe_load[width=W]((a * blocks + b) * chunk + k * TILE + ii)
            var at = a * chunk + k * TILE + ii
            xs.unsafe_store[width=W](at, xs.unsafe_load[width=W](at) - lr * 4 * g)


def simd_prepare[dt: DType](d: Ptr[Scalar[dt]], ws: Ptr[Scalar[dt]], layout: Layout, threads: Int):
    """Fill the workspace's D^2 tiles from row-major D (n x n), zeros in the padding, each in the
    order the kernel reads it (packed_offset, row_block_of); each of `threads` workers fills (and
    so first touches) every threads-th tile."""
    comptime W = simd_width_of[dt]()
    var n = layout.n
    var blocks = layout.blocks
    var tiles = layout.tiles
    var block = row_block(layout.dim)

    def fill(w: Int) {imm d, imm ws, imm n, imm blocks, imm tiles, imm threads, imm block}:
        for t in range(w, tiles, threads):
            var bi, bj = tile_position(t, blocks)
            var tile = ws.unsafe_offset(t * TILE * TILE)
            var rows = min(TILE, n - bi * TILE)
            var cols = min(TILE, n - bj * TILE)
            for ii in range(TILE):
                var first, count = row_block_of(ii, rows, bi == bj, W, block)
                var row = d.unsafe_offset((bi * TILE + ii) * n + bj * TILE)
                var valid = cols if ii < rows else 0
                for jj in range(0, TILE, W):
                    var at = packed_offset(first, count, ii - first, jj, W)
                    for lane in range(W):
                        var value = Scalar[dt](0)
                        if jj + lane < valid:
                            var dij = row.unsafe_load(jj + lane)
                            value = dij * dij
                        tile.unsafe_store(at + lane, value)

    if threads == 1:
        fill(0)
    else:
        parallelize(fill, threads, threads)


def simd_descend[dt: DType](
    x: Ptr[Scalar[dt]], ws: Ptr[Scalar[dt]], layout: Layout, lr: Scalar[dt], niter: Int, threads: Int,
    counters: Ptr[Int64], stresses: Ptr[Float64], stress: Bool,
) -> Float64:
    """niter steps on row-major x (n x dim) in place, with the D^2 tiles simd_prepare left in ws;
    counters are the workspace's task counters (Layout.counters, as Int64) and stresses its
    per-tile Float64 slots (Layout.stresses). With `stress` (niter >= 1), returns the stress of
    the positions the last step started from, else 0."""
    var n = layout.n
    var dim = layout.dim
    var blocks = layout.blocks
    var chunk = layout.chunk
    var tiles = layout.tiles
    var d2 = ws
    var xs = ws.unsafe_offset(layout.xs())
    var partials = ws.unsafe_offset(layout.partials())
    var cbuf = ws.unsafe_offset(layout.scratch())
    # Padding (points n..blocks*TILE-1) holds zeros: finite, and masked out of every sum.
    for idx in range(blocks * chunk):
        xs.unsafe_store(idx, 0)
    for i in range(n):
        for k in range(dim):
            xs.unsafe_store((i // TILE) * chunk + k * TILE + i % TILE, x.unsafe_load(i * dim + k))

    # Each worker has a run of tiles (about equal work, in tile order) and a run of blocks to
    # update, and takes its own run's tasks first, so a tile is computed on the same core step
    # after step (its D^2 stays in that core's caches); then it takes what is left of the other
    # runs. Tasks are claimed with a compare-and-swap on their run's counter, within the current
    # phase's range; a phase (tiles, then updates) ends when the runs' done counters add up to
    # it. One parallel dispatch per call, and no deadlock however few workers run at once: a
    # worker that runs alone takes every task of every run.
    for run in range(threads):
        claim_counter(counters, run).unsafe_store(0, 0)
        done_counter(counters, run).unsafe_store(0, 0)
    var per_step = tiles + blocks

    var last_plain = niter - 1 if stress else niter

    def worker(w: Int) {imm xs, imm d2, imm partials, imm cbuf, imm stresses, imm n, imm dim, imm chunk, imm lr, imm blocks, imm tiles, imm per_step, imm counters, imm threads, imm niter, imm last_plain}:
        var c = cbuf.unsafe_offset(w * TILE * TILE)
        for step in range(niter):
            for k in range(threads):
                var run = (w + k) % threads
                var t0, count, base = phase_tasks(run, threads, blocks, step, False)
                while True:
                    var i = claim(claim_counter(counters, run), base, base + count)
                    if i < 0:
                        break
                    if step < last_plain:
                        run_tile[dt, False](xs, d2, partials, c, stresses, n, dim, chunk, blocks, t0 + i)
                    else:
                        run_tile[dt, True](xs, d2, partials, c, stresses, n, dim, chunk, blocks, t0 + i)
                    _ = Atomic[Int64].fetch_add(done_counter(counters, run), 1)
            wait_until_done(counters, threads, step * per_step + tiles)
            for k in range(threads):
                var run = (w + k) % threads
                var b0, count, base = phase_tasks(run, threads, blocks, step, True)
                while True:
                    var i = claim(claim_counter(counters, run), base, base + count)
                    if i < 0:
                        break
                    update_block[dt](xs, partials, blocks, dim, chunk, lr, b0 + i)
                    _ = Atomic[Int64].fetch_add(done_counter(counters, run), 1)
            wait_until_done(counters, threads, (step + 1) * per_step)

    if threads == 1:
        worker(0)
    else:
        parallelize(worker, threads, threads)

    for i in range(n):
        for k in range(dim):
            x.unsafe_store(i * dim + k, xs.unsafe_load((i // TILE) * chunk + k * TILE + i % TILE))
    var total: Float64 = 0
    if stress:
        for r in range(tiles):
            total += stresses.unsafe_load(r)
    return total
