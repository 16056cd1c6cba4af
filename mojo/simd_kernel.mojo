# The tuned kernel: structure-of-arrays coordinates, D^2 computed once per call, the loop
# over j vectorised with the machine's SIMD width, parallel over rows in `threads` static
# chunks. Each row is computed the same way whatever the chunking, so every thread count
# gives bit-identical results.

from std.atomic import Atomic
from std.ffi import external_call
from std.memory import Pointer
from std.memory.alloc import unsafe_alloc
from std.sys import simd_width_of
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]

# Below this many points one step costs less than a parallel dispatch: run on one thread
# (measured, see mojo/README.md).
comptime SERIAL_BELOW = 64


def wait_until(counter: Ptr[Int64], target: Int):
    """Spin until the counter reaches target, yielding the CPU now and then."""
    var spins = 0
    while Int(Atomic[Int64].load(counter)) < target:
        spins += 1
        if spins == 4096:
            _ = external_call["sched_yield", Int32]()
            spins = 0


def tail_mask[dt: DType, W: Int](valid: Int) -> SIMD[dt, W]:
    """1 in the first `valid` lanes, 0 in the others: cancels the padding columns."""
    var mask = SIMD[dt, W](0)
    for lane in range(min(valid, W)):
        mask[lane] = 1
    return mask


def rows_fixed[dt: DType, DIM: Int](
    src: Ptr[Scalar[dt]], dst: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]],
    n: Int, stride: Int, lr: Scalar[dt], start: Int, stop: Int,
):
    """dst rows start..stop-1 = src - lr * gradient, for a compile-time dim."""
    comptime W = simd_width_of[dt]()
    var full = (n // W) * W
    var mask = tail_mask[dt, W](n - full)
    for i in range(start, stop):
        var xi = Array[SIMD[dt, W], DIM](fill=0)
        comptime for k in range(DIM):
            xi[k] = SIMD[dt, W](src.unsafe_load(k * stride + i))
        var acc = Array[SIMD[dt, W], DIM](fill=0)
        var row = i * stride
        # Columns full..stride-1 form one block whose padding lanes are masked out.
        for j in range(0, stride, W):
            var diff = Array[SIMD[dt, W], DIM](fill=0)
            var r2 = SIMD[dt, W](0)
            comptime for k in range(DIM):
                diff[k] = xi[k] - src.unsafe_load[width=W](k * stride + j)
                r2 = diff[k].fma(diff[k], r2)
            var c = r2 - d2.unsafe_load[width=W](row + j)
            if j >= full:
                c *= mask
            comptime for k in range(DIM):
                acc[k] = c.fma(diff[k], acc[k])
        comptime for k in range(DIM):
            dst.unsafe_store(k * stride + i, xi[k][0] - lr * 4 * acc[k].reduce_add())


def rows_generic[dt: DType](
    src: Ptr[Scalar[dt]], dst: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], c: Ptr[Scalar[dt]],
    n: Int, dim: Int, stride: Int, lr: Scalar[dt], start: Int, stop: Int,
):
    """Any dim: per row, c_j = |x_i - x_j|^2 - d_ij^2 into a row buffer, then one pass per coordinate."""
    comptime W = simd_width_of[dt]()
    var full = (n // W) * W
    var mask = tail_mask[dt, W](n - full)
    for i in range(start, stop):
        var row = i * stride
        for j in range(0, stride, W):
            c.unsafe_store[width=W](j, -d2.unsafe_load[width=W](row + j))
        for k in range(dim):
            var xik = SIMD[dt, W](src.unsafe_load(k * stride + i))
            for j in range(0, stride, W):
                var diff = xik - src.unsafe_load[width=W](k * stride + j)
                c.unsafe_store[width=W](j, diff.fma(diff, c.unsafe_load[width=W](j)))
        if full < stride:
            c.unsafe_store[width=W](full, c.unsafe_load[width=W](full) * mask)
        for k in range(dim):
            var xik = SIMD[dt, W](src.unsafe_load(k * stride + i))
            var acc = SIMD[dt, W](0)
            for j in range(0, stride, W):
                acc = c.unsafe_load[width=W](j).fma(xik - src.unsafe_load[width=W](k * stride + j), acc)
            dst.unsafe_store(k * stride + i, xik[0] - lr * 4 * acc.reduce_add())


def step_rows[dt: DType](
    src: Ptr[Scalar[dt]], dst: Ptr[Scalar[dt]], d2: Ptr[Scalar[dt]], c: Ptr[Scalar[dt]],
    n: Int, dim: Int, stride: Int, lr: Scalar[dt], start: Int, stop: Int,
):
    """Dispatch the runtime dim to a compile-time specialisation (1-4) or the generic rows."""
    if dim == 1:
        rows_fixed[dt, 1](src, dst, d2, n, stride, lr, start, stop)
    elif dim == 2:
        rows_fixed[dt, 2](src, dst, d2, n, stride, lr, start, stop)
    elif dim == 3:
        rows_fixed[dt, 3](src, dst, d2, n, stride, lr, start, stop)
    elif dim == 4:
        rows_fixed[dt, 4](src, dst, d2, n, stride, lr, start, stop)
    else:
        rows_generic[dt](src, dst, d2, c, n, dim, stride, lr, start, stop)


def simd_descend[dt: DType](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], n: Int, dim: Int,
    lr: Scalar[dt], niter: Int, threads: Int,
):
    """niter steps on row-major x (n x dim) in place, through padded SoA double buffers."""
    comptime W = simd_width_of[dt]()
    var stride = (n + W - 1) // W * W
    var workers = 1 if n < SERIAL_BELOW else threads
    var d2 = unsafe_alloc[Scalar[dt]](n * stride, alignment=64)
    var xa = unsafe_alloc[Scalar[dt]](dim * stride, alignment=64)
    var xb = unsafe_alloc[Scalar[dt]](dim * stride, alignment=64)
    var cbuf = unsafe_alloc[Scalar[dt]](workers * stride, alignment=64)
    # Padding columns hold zeros: finite, and masked out of every sum.
    for i in range(n):
        for j in range(stride):
            d2.unsafe_store(i * stride + j, 0)
        for j in range(n):
            var dij = d.unsafe_load(i * n + j)
            d2.unsafe_store(i * stride + j, dij * dij)
    for k in range(dim):
        for i in range(stride):
            xa.unsafe_store(k * stride + i, 0)
            xb.unsafe_store(k * stride + i, 0)
        for i in range(n):
            xa.unsafe_store(k * stride + i, x.unsafe_load(i * dim + k))

    # Work is niter * workers tickets taken in order from a shared counter; ticket k is chunk
    # k % workers of step k // workers, which starts once every chunk of the previous step is
    # done. One parallel dispatch per call (a dispatch costs ~100 us here, more than a step at
    # N=1000), and no deadlock however many workers the runtime actually starts: a running
    # worker takes every ticket nobody else took.
    var counters = unsafe_alloc[Int64](16, alignment=64)
    counters.unsafe_store(0, 0)
    counters.unsafe_store(8, 0)
    var claimed = counters
    var done = counters.unsafe_offset(8)
    var tickets = niter * workers

    def worker(w: Int) {imm xa, imm xb, imm d2, imm cbuf, imm n, imm dim, imm stride, imm lr, imm workers, imm tickets, imm claimed, imm done}:
        while True:
            var k = Int(Atomic[Int64].fetch_add(claimed, 1))
            if k >= tickets:
                return
            var step = k // workers
            var c = k % workers
            wait_until(done, step * workers)
            var src = xa if step % 2 == 0 else xb
            var dst = xb if step % 2 == 0 else xa
            step_rows[dt](src, dst, d2, cbuf.unsafe_offset(c * stride), n, dim, stride, lr,
                          c * n // workers, (c + 1) * n // workers)
            _ = Atomic[Int64].fetch_add(done, 1)

    if workers == 1:
        worker(0)
    else:
        parallelize(worker, workers, workers)

    var out = xa if niter % 2 == 0 else xb
    for i in range(n):
        for k in range(dim):
            x.unsafe_store(i * dim + k, out.unsafe_load(k * stride + i))
    d2.unsafe_free()
    xa.unsafe_free()
    xb.unsafe_free()
    cbuf.unsafe_free()
    counters.unsafe_free()
