# The tuned kernel: structure-of-arrays coordinates, D^2 laid out once per solve, the loop over j
# vectorised with the machine's SIMD width (simd_width_of, a masked last vector), parallel with
# `threads` workers.
#
# D^2 is symmetric, so each unordered pair is visited once: the points are cut into blocks
# of TILE, and the task for a tile (I, J) with I < J adds c_ij (x_i - x_j) to the rows of I
# and subtracts it from the rows of J. That halves both the arithmetic and the D^2 memory
# streamed every step (D^2 is stored as packed upper-triangle tiles). Every tile writes its
# own partial sums; a second phase adds the partials of each block in a fixed order and
# updates X. No result depends on which worker ran which task, so every thread count gives
# bit-identical positions.
#
# Per-solve state: `simd_prepare` fills the D^2 tiles of a workspace (one buffer the caller
# owns, see Layout) once; every `simd_descend` call reuses them, so a solve run in chunks pays
# the layout once. A call depends only on (X, D^2, lr, niter): chunking never changes a result.
#
# Stress (`simd_descend` with stress, on its last step only): each row pass also adds up c^2
# lane-wise in the working dtype (at most 2 rows x TILE / W squares per lane), then over its
# lanes in Float64; a tile adds its row passes in order (halved on the diagonal, whose tiles
# visit every ordered pair) into its own Float64 slot, and the slots are added in tile order
# after the step: the same total for any thread count, and the positions are untouched.

from std.atomic import Atomic
from std.ffi import external_call
from std.memory import Pointer
from std.sys import simd_width_of
from std.sys.intrinsics import PrefetchOptions, prefetch
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]

# Tile edge: a multiple of every SIMD width, large enough to amortise the per-row reductions
# (16 AVX-512 vectors); a float32 tile of D^2 (256 KB) still fits in a core's L2.
comptime TILE = 256
# How far ahead (in tile rows, 32 KB of float32) the tile loop asks for D^2: the stream of D^2
# from L3 or memory then keeps up with the arithmetic (measured, see mojo/README.md).
comptime PREFETCH_ROWS = 32
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
        return self.scratch() + (self.threads * TILE * TILE if self.dim > 4 else 0)

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
    diagonal tile, all its pairs without column sums, counts 2; one off the diagonal 3)."""
    var tiles = blocks * (blocks + 1) // 2
    if run >= runs:
        return tiles
    var target = (3 * tiles - blocks) * run // runs
    var work = 0
    var t = 0
    for bi in range(blocks):
        for bj in range(bi, blocks):
            if work >= target:
                return t
            work += 2 if bi == bj else 3
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


@always_inline
def rows_pass[dt: DType, DIM: Int, R: Int, diagonal: Bool, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], ii: Int, width: Int, last: Int, mask: SIMD[dt, simd_width_of[dt]()],
    mut total: Float64,
):
    """Rows ii..ii+R-1 of tile (i0, j0): their row sums into rows_out and, unless diagonal, their
    terms subtracted from the column sums in cols_out, row after row (the same order for any R).
    xi0 and xj0 are the coordinate chunks of the tile's row and column blocks. R rows share each
    load of x_j and of the column sums. With stress, adds the rows' sum of c^2 to total (without
    it total is not touched, so the plain step does no work for it)."""
    comptime W = simd_width_of[dt]()
    var squares = SIMD[dt, W](0)
    var xi = Array[SIMD[dt, W], R * DIM](fill=0)
    comptime for r in range(R):
        comptime for k in range(DIM):
            xi[r * DIM + k] = SIMD[dt, W](xi0.unsafe_load(k * TILE + ii + r))
    var acc = Array[SIMD[dt, W], R * DIM](fill=0)
    for jj in range(0, width, W):
        comptime for r in range(R):
            prefetch[PrefetchOptions().for_read().high_locality()](
                d2.unsafe_offset((ii + r + PREFETCH_ROWS) * TILE + jj))
        var xj = Array[SIMD[dt, W], DIM](fill=0)
        comptime for k in range(DIM):
            xj[k] = xj0.unsafe_load[width=W](k * TILE + jj)
        var col = Array[SIMD[dt, W], DIM](fill=0)
        comptime if not diagonal:
            comptime for k in range(DIM):
                col[k] = cols_out.unsafe_load[width=W](k * TILE + jj)
        comptime for r in range(R):
            var diff = Array[SIMD[dt, W], DIM](fill=0)
            var c = -d2.unsafe_load[width=W]((ii + r) * TILE + jj)
            comptime for k in range(DIM):
                diff[k] = xi[r * DIM + k] - xj[k]
                c = diff[k].fma(diff[k], c)
            if jj == last:
                c *= mask
            comptime if stress:
                squares = c.fma(c, squares)
            comptime for k in range(DIM):
                acc[r * DIM + k] = c.fma(diff[k], acc[r * DIM + k])
            comptime if not diagonal:
                comptime for k in range(DIM):
                    col[k] = (-c).fma(diff[k], col[k])
        comptime if not diagonal:
            comptime for k in range(DIM):
                cols_out.unsafe_store[width=W](k * TILE + jj, col[k])
    comptime for r in range(R):
        comptime for k in range(DIM):
            rows_out.unsafe_store(k * TILE + ii + r, acc[r * DIM + k].reduce_add())
    comptime if stress:
        total += squares.cast[DType.float64]().reduce_add()


def tile_fixed[dt: DType, DIM: Int, diagonal: Bool, stress: Bool](
    xi0: Ptr[Scalar[dt]], xj0: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]],
    cols_out: Ptr[Scalar[dt]], n: Int, i0: Int, j0: Int,
) -> Float64:
    """Tile (i0, j0), compile-time dim: row sums into rows_out; unless diagonal, minus the
    column sums into cols_out (both DIM x TILE, coordinate-major). Two rows at a time. Returns
    the tile's sum of c^2 over its pairs (stress), else 0."""
    comptime W = simd_width_of[dt]()
    var rows = min(TILE, n - i0)
    var width = min(TILE, (n - j0 + W - 1) // W * W)
    var last = width - W
    var mask = tail_mask[dt, W](n - j0 - last)
    comptime if not diagonal:
        for idx in range(DIM * TILE):
            cols_out.unsafe_store(idx, 0)
    var total: Float64 = 0
    for ii in range(0, rows - 1, 2):
        rows_pass[dt, DIM, 2, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, ii, width, last, mask, total)
    if rows % 2 == 1:
        rows_pass[dt, DIM, 1, diagonal, stress](xi0, xj0, d2, rows_out, cols_out, rows - 1, width, last, mask, total)
    for ii in range(rows, TILE):
        comptime for k in range(DIM):
            rows_out.unsafe_store(k * TILE + ii, 0)
    return total / 2 if diagonal else total


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
    """Dispatch the runtime dim to a compile-time specialisation (1-4) or the generic tile."""
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
    """Fill the workspace's D^2 tiles from row-major D (n x n), zeros in the padding; each of
    `threads` workers fills (and so first touches) every threads-th tile."""
    var n = layout.n
    var blocks = layout.blocks
    var tiles = layout.tiles

    def fill(w: Int) {imm d, imm ws, imm n, imm blocks, imm tiles, imm threads}:
        for t in range(w, tiles, threads):
            var bi, bj = tile_position(t, blocks)
            var tile = ws.unsafe_offset(t * TILE * TILE)
            var rows = min(TILE, n - bi * TILE)
            var cols = min(TILE, n - bj * TILE)
            for ii in range(TILE):
                var row = d.unsafe_offset((bi * TILE + ii) * n + bj * TILE)
                for jj in range(cols if ii < rows else 0):
                    var dij = row.unsafe_load(jj)
                    tile.unsafe_store(ii * TILE + jj, dij * dij)
                for jj in range(cols if ii < rows else 0, TILE):
                    tile.unsafe_store(ii * TILE + jj, 0)

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
