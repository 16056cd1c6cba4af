# The blog's algorithm in plain loops: row-major X (n x dim) and D (n x n), a gradient
# scratch buffer allocated once per call, X updated only after the whole gradient is known.
# Generic over the dtype (float32 or float64); parallel over rows in `threads` static chunks.
# With `stress`, the last step also sums each row's squared errors in Float64 (a buffer of n,
# added in row order after the step, so for any thread count): the stress of the positions that
# step started from.

from std.memory import Pointer
from std.memory.alloc import unsafe_alloc
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]


def gradient_rows[dt: DType, stress: Bool](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], g: Ptr[Scalar[dt]], rows: Ptr[Float64],
    n: Int, dim: Int, start: Int, stop: Int,
):
    """Write g_i = 4 sum_j (|x_i - x_j|^2 - d_ij^2)(x_i - x_j) for rows start..stop-1; with
    `stress`, also rows[i] = sum_j (|x_i - x_j|^2 - d_ij^2)^2 in Float64."""
    for i in range(start, stop):
        for k in range(dim):
            g.unsafe_store(i * dim + k, 0)
        var row: Float64 = 0
        for j in range(n):
            var sq: Scalar[dt] = 0
            for k in range(dim):
                var diff = x.unsafe_load(i * dim + k) - x.unsafe_load(j * dim + k)
                sq += diff * diff
            var dij = d.unsafe_load(i * n + j)
            var e = sq - dij * dij
            comptime if stress:
                row += e.cast[DType.float64]() * e.cast[DType.float64]()
            var c = 4 * e
            for k in range(dim):
                var diff = x.unsafe_load(i * dim + k) - x.unsafe_load(j * dim + k)
                g.unsafe_store(i * dim + k, g.unsafe_load(i * dim + k) + c * diff)
        comptime if stress:
            rows.unsafe_store(i, row)


def seed_step[dt: DType, stress: Bool](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], g: Ptr[Scalar[dt]], rows: Ptr[Float64],
    n: Int, dim: Int, lr: Scalar[dt], threads: Int,
):
    """One step x <- x - lr * g; rows split into `threads` equal static chunks."""

    def chunk(c: Int) {imm x, imm d, imm g, imm rows, imm n, imm dim, imm threads}:
        gradient_rows[dt, stress](x, d, g, rows, n, dim, c * n // threads, (c + 1) * n // threads)

    if threads == 1:
        gradient_rows[dt, stress](x, d, g, rows, n, dim, 0, n)
    else:
        parallelize(chunk, threads, threads)
    for idx in range(n * dim):
        x.unsafe_store(idx, x.unsafe_load(idx) - lr * g.unsafe_load(idx))


def seed_descend[dt: DType](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], n: Int, dim: Int,
    lr: Scalar[dt], niter: Int, threads: Int, stress: Bool,
) -> Float64:
    """niter steps; with `stress` (niter >= 1) returns the stress of the positions the last step
    started from (the rows' sums added in order, halved: each pair is in two rows), else 0."""
    var g = unsafe_alloc[Scalar[dt]](n * dim, alignment=64)
    var rows = unsafe_alloc[Float64](n if stress else 1, alignment=64)
    for _ in range(niter - 1 if stress else niter):
        seed_step[dt, False](x, d, g, rows, n, dim, lr, threads)
    var total: Float64 = 0
    if stress:
        seed_step[dt, True](x, d, g, rows, n, dim, lr, threads)
        for i in range(n):
            total += rows.unsafe_load(i)
    g.unsafe_free()
    rows.unsafe_free()
    return total / 2
