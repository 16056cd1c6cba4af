# The blog's algorithm in plain loops: row-major X (n x dim) and D (n x n), a gradient
# scratch buffer allocated once per call, X updated only after the whole gradient is known.
# Generic over the dtype (float32 or float64); parallel over rows in `threads` static chunks.

from std.memory import Pointer
from std.memory.alloc import unsafe_alloc
from max.algorithm import parallelize

comptime Ptr = Pointer[_, MutUntrackedOrigin]


def gradient_rows[dt: DType](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], g: Ptr[Scalar[dt]],
    n: Int, dim: Int, start: Int, stop: Int,
):
    """Write g_i = 4 sum_j (|x_i - x_j|^2 - d_ij^2)(x_i - x_j) for rows start..stop-1."""
    for i in range(start, stop):
        for k in range(dim):
            g.unsafe_store(i * dim + k, 0)
        for j in range(n):
            var sq: Scalar[dt] = 0
            for k in range(dim):
                var diff = x.unsafe_load(i * dim + k) - x.unsafe_load(j * dim + k)
                sq += diff * diff
            var dij = d.unsafe_load(i * n + j)
            var c = 4 * (sq - dij * dij)
            for k in range(dim):
                var diff = x.unsafe_load(i * dim + k) - x.unsafe_load(j * dim + k)
                g.unsafe_store(i * dim + k, g.unsafe_load(i * dim + k) + c * diff)


def seed_descend[dt: DType](
    x: Ptr[Scalar[dt]], d: Ptr[Scalar[dt]], n: Int, dim: Int,
    lr: Scalar[dt], niter: Int, threads: Int,
):
    """niter steps x <- x - lr * g; rows split into `threads` equal static chunks."""
    var g = unsafe_alloc[Scalar[dt]](n * dim, alignment=64)

    def chunk(c: Int) {imm x, imm d, imm g, imm n, imm dim, imm threads}:
        gradient_rows[dt](x, d, g, n, dim, c * n // threads, (c + 1) * n // threads)

    for _ in range(niter):
        if threads == 1:
            gradient_rows[dt](x, d, g, n, dim, 0, n)
        else:
            parallelize(chunk, threads, threads)
        for idx in range(n * dim):
            x.unsafe_store(idx, x.unsafe_load(idx) - lr * g.unsafe_load(idx))
    g.unsafe_free()
