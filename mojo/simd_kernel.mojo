# The tuned kernel: structure-of-arrays coordinates, D^2 computed once per call, the loop over
# j vectorised with the machine's SIMD width (simd_width_of, a masked last vector), parallel
# with `threads` workers.
#
# D^2 is symmetric, so each unordered pair is visited once: the points are cut into blocks
# of TILE, and the task for a tile (I, J) with I < J adds c_ij (x_i - x_j) to the rows of I
# and subtracts it from the rows of J. That halves both the arithmetic and the D^2 memory
# streamed every step (D^2 is stored as packed upper-triangle tiles). Every tile writes its
# own partial sums; a second phase adds the partials of each block in a fixed order and
# updates X. No result depends on which worker ran which task, so every thread count gives
# bit-identical positions.

from std.atomic import Atomic
from std.ffi import external_call
from std.memory import Pointer
from std.memory.alloc import unsafe_alloc
from std.sys import CompilationTarget, simd_width_of, size_of
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]

# Tile edge: a multiple of every SIMD width, large enough to amortise the per-row reductions.
comptime TILE = 128


def wait_until(counter: Ptr[Int64], target: Int):
    """Spin until the counter reaches target, yielding the CPU now and then."""
    var spins = 0
    while Int(Atomic[Int64].load(counter)) < target:
        spins += 1
        if spins == 4096:
            _ = external_call["sched_yield", Int32]()
            spins = 0


def scratch[dt: DType](count: Int) -> Ptr[Scalar[dt]]:
    """A zeroed buffer; on Linux a large one is backed by 2 MiB pages (fewer TLB misses when
    D^2 is streamed every step)."""
    comptime huge = 2 * 1024 * 1024
    var nbytes = count * size_of[dt]()
    var buffer = unsafe_alloc[Scalar[dt]](count, alignment=huge if nbytes >= huge else 64)
    comptime if CompilationTarget.is_linux():
        if nbytes >= huge:
            comptime MADV_HUGEPAGE = 14
            _ = external_call["madvise", Int32](buffer, nbytes, Int32(MADV_HUGEPAGE))
    for idx in range(count):
        buffer.unsafe_store(idx, 0)
    return buffer


def tail_mask[dt: DType, W: Int](valid: Int) -> SIMD[dt, W]:
    """1 in the first `valid` lanes, 0 in the others: cancels the padding columns."""
    var mask = SIMD[dt, W](0)
    for lane in range(min(valid, W)):
        mask[lane] = 1
    return mask


def tile_fixed[dt: DType, DIM: Int, diagonal: Bool](
    xs: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]], cols_out: Ptr[Scalar[dt]],
    n: Int, stride: Int, i0: Int, j0: Int,
):
    """Tile (i0, j0), compile-time dim: row sums into rows_out; unless diagonal, minus the
    column sums into cols_out (both DIM x TILE, coordinate-major)."""
    comptime W = simd_width_of[dt]()
    var rows = min(TILE, n - i0)
    var width = min(TILE, (n - j0 + W - 1) // W * W)
    var last = width - W
    var mask = tail_mask[dt, W](n - j0 - last)
    comptime if not diagonal:
        for idx in range(DIM * TILE):
            cols_out.unsafe_store(idx, 0)
    for ii in range(rows):
        var xi = Array[SIMD[dt, W], DIM](fill=0)
        comptime for k in range(DIM):
            xi[k] = SIMD[dt, W](xs.unsafe_load(k * stride + i0 + ii))
        var acc = Array[SIMD[dt, W], DIM](fill=0)
        for jj in range(0, width, W):
            var diff = Array[SIMD[dt, W], DIM](fill=0)
            var c = -d2.unsafe_load[width=W](ii * TILE + jj)
            comptime for k in range(DIM):
                diff[k] = xi[k] - xs.unsafe_load[width=W](k * stride + j0 + jj)
                c = diff[k].fma(diff[k], c)
            if jj == last:
                c *= mask
            comptime for k in range(DIM):
                acc[k] = c.fma(diff[k], acc[k])
            comptime if not diagonal:
                comptime for k in range(DIM):
                    var col = cols_out.unsafe_load[width=W](k * TILE + jj)
                    cols_out.unsafe_store[width=W](k * TILE + jj, (-c).fma(diff[k], col))
        comptime for k in range(DIM):
            rows_out.unsafe_store(k * TILE + ii, acc[k].reduce_add())
    for ii in range(rows, TILE):
        comptime for k in range(DIM):
            rows_out.unsafe_store(k * TILE + ii, 0)


def tile_generic[diagonal: Bool, dt: DType](
    xs: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]], cols_out: Ptr[Scalar[dt]],
    c: Ptr[Scalar[dt]], n: Int, dim: Int, stride: Int, i0: Int, j0: Int,
):
    """Tile (i0, j0), any dim: c_ij into a TILE x TILE buffer first, then one pass per coordinate."""
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
            var xik = SIMD[dt, W](xs.unsafe_load(k * stride + i0 + ii))
            for jj in range(0, width, W):
                var diff = xik - xs.unsafe_load[width=W](k * stride + j0 + jj)
                c.unsafe_store[width=W](ii * TILE + jj, diff.fma(diff, c.unsafe_load[width=W](ii * TILE + jj)))
    for ii in range(rows):
        c.unsafe_store[width=W](ii * TILE + last, c.unsafe_load[width=W](ii * TILE + last) * mask)
    for k in range(dim):
        comptime if not diagonal:
            for jj in range(TILE):
                cols_out.unsafe_store(k * TILE + jj, 0)
        for ii in range(rows):
            var xik = SIMD[dt, W](xs.unsafe_load(k * stride + i0 + ii))
            var acc = SIMD[dt, W](0)
            for jj in range(0, width, W):
                var term = c.unsafe_load[width=W](ii * TILE + jj) * (xik - xs.unsafe_load[width=W](k * stride + j0 + jj))
                acc += term
                comptime if not diagonal:
                    cols_out.unsafe_store[width=W](k * TILE + jj, cols_out.unsafe_load[width=W](k * TILE + jj) - term)
            rows_out.unsafe_store(k * TILE + ii, acc.reduce_add())
        for ii in range(rows, TILE):
            rows_out.unsafe_store(k * TILE + ii, 0)


def tile_task[diagonal: Bool, dt: DType](
    xs: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], rows_out: Ptr[Scalar[dt]], cols_out: Ptr[Scalar[dt]],
    c: Ptr[Scalar[dt]], n: Int, dim: Int, stride: Int, i0: Int, j0: Int,
):
    """Dispatch the runtime dim to a compile-time specialisation (1-4) or the generic tile."""
    if dim == 1:
        tile_fixed[dt, 1, diagonal](xs, d2, rows_out, cols_out, n, stride, i0, j0)
    elif dim == 2:
        tile_fixed[dt, 2, diagonal](xs, d2, rows_out, cols_out, n, stride, i0, j0)
    elif dim == 3:
        tile_fixed[dt, 3, diagonal](xs, d2, rows_out, cols_out, n, stride, i0, j0)
    elif dim == 4:
        tile_fixed[dt, 4, diagonal](xs, d2, rows_out, cols_out, n, stride, i0, j0)
    else:
        tile_generic[diagonal, dt](xs, d2, rows_out, cols_out, c, n, dim, stride, i0, j0)


def update_block[dt: DType](
    xs: Ptr[Scalar[dt]], partials: Ptr[Scalar[dt]], blocks: Int, dim: Int, stride: Int,
    lr: Scalar[dt], a: Int,
):
    """x <- x - lr * 4 * (partials of block a summed over b = 0, 1, ... in that order)."""
    comptime W = simd_width_of[dt]()
    for k in range(dim):
        for ii in range(0, TILE, W):
            var g = SIMD[dt, W](0)
            for b in range(blocks):
                g += partials.unsafe_load[width=W](((a * blocks + b) * dim + k) * TILE + ii)
            var at = k * stride + a * TILE + ii
            xs.unsafe_store[width=W](at, xs.unsafe_load[width=W](at) - lr * 4 * g)


def simd_descend[dt: DType](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], n: Int, dim: Int,
    lr: Scalar[dt], niter: Int, threads: Int,
):
    """niter steps on row-major x (n x dim) in place."""
    var blocks = (n + TILE - 1) // TILE
    var stride = blocks * TILE
    var tiles = blocks * (blocks + 1) // 2
    # Padding (points n..stride-1) holds zeros: finite, and masked out of every sum.
    var d2 = scratch[dt](tiles * TILE * TILE)
    var xs = scratch[dt](dim * stride)
    var partials = scratch[dt](blocks * blocks * dim * TILE)
    var cbuf = scratch[dt]((threads if dim > 4 else 1) * TILE * TILE)
    var t = 0
    for bi in range(blocks):
        for bj in range(bi, blocks):
            for ii in range(min(TILE, n - bi * TILE)):
                for jj in range(min(TILE, n - bj * TILE)):
                    var dij = d.unsafe_load((bi * TILE + ii) * n + bj * TILE + jj)
                    d2.unsafe_store((t * TILE + ii) * TILE + jj, dij * dij)
            t += 1
    for i in range(n):
        for k in range(dim):
            xs.unsafe_store(k * stride + i, x.unsafe_load(i * dim + k))

    # Tasks are numbered in order: per step, one per tile then one update per block. Workers
    # take numbers from a shared counter; a task waits until every task of the previous phase
    # is done. One parallel dispatch per call (a dispatch costs ~100 us here, as much as a
    # step at N=1000), and no deadlock however few workers run at once: a running worker
    # takes every task nobody else took.
    var counters = unsafe_alloc[Int64](16, alignment=64)
    counters.unsafe_store(0, 0)
    counters.unsafe_store(8, 0)
    var claimed = counters
    var done = counters.unsafe_offset(8)
    var per_step = tiles + blocks
    var tasks = niter * per_step

    def worker(w: Int) {imm xs, imm d2, imm partials, imm cbuf, imm n, imm dim, imm stride, imm lr, imm blocks, imm tiles, imm per_step, imm tasks, imm claimed, imm done}:
        var c = cbuf.unsafe_offset(w * TILE * TILE) if dim > 4 else cbuf
        while True:
            var k = Int(Atomic[Int64].fetch_add(claimed, 1))
            if k >= tasks:
                return
            var step = k // per_step
            var r = k % per_step
            if r < tiles:
                wait_until(done, step * per_step)
                var bi = 0
                var rest = r
                while rest >= blocks - bi:
                    rest -= blocks - bi
                    bi += 1
                var bj = bi + rest
                var tile = d2.unsafe_offset(r * TILE * TILE)
                var rows_out = partials.unsafe_offset((bi * blocks + bj) * dim * TILE)
                var cols_out = partials.unsafe_offset((bj * blocks + bi) * dim * TILE)
                if bi == bj:
                    tile_task[True, dt](xs, tile, rows_out, cols_out, c, n, dim, stride, bi * TILE, bj * TILE)
                else:
                    tile_task[False, dt](xs, tile, rows_out, cols_out, c, n, dim, stride, bi * TILE, bj * TILE)
            else:
                wait_until(done, step * per_step + tiles)
                update_block[dt](xs, partials, blocks, dim, stride, lr, r - tiles)
            _ = Atomic[Int64].fetch_add(done, 1)

    if threads == 1:
        worker(0)
    else:
        parallelize(worker, threads, threads)

    for i in range(n):
        for k in range(dim):
            x.unsafe_store(i * dim + k, xs.unsafe_load(k * stride + i))
    d2.unsafe_free()
    xs.unsafe_free()
    partials.unsafe_free()
    cbuf.unsafe_free()
    counters.unsafe_free()
