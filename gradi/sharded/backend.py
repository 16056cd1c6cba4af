"""``jax-sharded``: the rows of D split over every device JAX sees, in one process or many.

Each device holds a block of rows of D^2, and owns the same rows of X, of the gradient and of
the update. Every step gathers X (N x dim, small) from all devices (``all_gather``) and computes
its rows' gradient from its own rows of D^2 only, in the matrix form of ``jax`` (centred Gram
matrix, ``4(rowsum(C) X - C X)``), tile by tile: a tile is at most ``TILE_BYTES`` of C, so the
N-wide temporaries stay small and a process holds its share of D^2 plus a few tiles.

The devices are whatever JAX sees: CPU devices (one per process unless
``XLA_FLAGS=--xla_force_host_platform_device_count=K``), the processes of a ``jax.distributed``
run (gradi.sharded.distributed: gloo on CPUs, NCCL on GPUs), or GPUs; the code is the same for each.
``threads`` is the number of devices used in this process: at most its local devices, and all
of them in a multi-process run, where the mesh spans every process.

``problem.D`` may be an array or a row source (gradi.rows: a memory-mapped ``.npy``, or rows
computed from points), because ``prepare`` reads only the rows of this process's devices: D need
never be whole in one place. ``share`` tells gradi.solve which rows those are and combines the
solve's partial results over the processes (gradi.sharded.distributed.PROCESSES).

Rows are padded to a multiple of devices x tile; padded rows have zero distances, never move, and
the gathered X is cut back to N rows before use, so they change nothing. In a multi-process run
every process must call ``descend`` with the same X and iteration count: ``descend`` checks the
count (one small collective) and refuses a mismatch rather than wait forever, and a collective
that fails because another process died ends this process with one line (gradi.sharded.distributed.abort).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..backends.base import Backend, State
from ..backends.jax_runtime import XLA_BYTES, runtime
from ..backends.stress_step import check_stress_niter
from ..group import ALONE
from . import distributed

TILE_BYTES = 4 * 2**20  # the most bytes of C one tile of rows computes at a time
FILL_BYTES = 16 * 2**20  # float64 bytes of D read and squared at a time while filling a block
HOST_ALIGNMENT = 64  # bytes: host blocks aligned so that XLA's CPU client need not copy them


@dataclass(frozen=True)
class Layout:
    """How N rows split: ``devices`` blocks of ``tiles`` x ``tile`` rows (padded past N)."""

    n: int
    devices: int
    tiles: int
    tile: int

    @property
    def rows(self):
        """Rows per device."""
        return self.tiles * self.tile

    @property
    def padded(self):
        return self.devices * self.rows


def layout(n, devices, itemsize):
    """Blocks of about N / devices rows, cut into the fewest tiles of at most TILE_BYTES of C."""
    per_device = math.ceil(n / devices)
    widest = max(1, TILE_BYTES // (n * itemsize))
    tiles = math.ceil(per_device / widest)
    return Layout(n=n, devices=devices, tiles=tiles, tile=math.ceil(per_device / tiles))


def mesh_devices(threads):
    """The devices a solve with ``threads`` uses: every device of every process in a
    multi-process run (in process order), else this process's first ``threads``."""
    jax = runtime().jax
    if distributed.process_count() > 1:
        return sorted(jax.devices(), key=lambda device: (device.process_index, device.id))
    return jax.local_devices()[:threads]


@functools.lru_cache(maxsize=16)
def _compiled(mesh, shape, dim, dtype):
    """The jitted, ahead-of-time compiled kernel for one mesh, layout, dimension and dtype."""
    jax = runtime().jax
    import jax.numpy as jnp
    from jax import lax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    n, rows, tiles, tile = shape.n, shape.rows, shape.tiles, shape.tile

    def gather(X_block):
        return lax.all_gather(X_block, "rows", tiled=True)[:n]

    def block_descend(X_block, D2_block, lr, niter, stress):
        moves = (lax.axis_index("rows") * rows + jnp.arange(rows) < n)[:, None]
        D2_tiles = D2_block.reshape(tiles, tile, n)

        def block_step(X_block, with_stress):
            """One step of this device's rows; with_stress: also the stress of every device's
            rows (each ordered pair's C_ij^2, per row in the working dtype, padded rows left out,
            the rows added in float64 per tile, the tiles, then the devices by psum, halved)."""
            X = gather(X_block)
            mean = jnp.mean(X, axis=0)
            Xc = X - mean
            sq = jnp.sum(Xc * Xc, axis=1)

            def tile_gradient(X_tile_D2_tile_moves):
                X_tile, D2_tile, moves_tile = X_tile_D2_tile_moves
                Xc_tile = X_tile - mean
                C = jnp.sum(Xc_tile * Xc_tile, axis=1)[:, None] + sq[None, :] - 2 * Xc_tile @ Xc.T - D2_tile
                grad = 4 * (jnp.sum(C, axis=1)[:, None] * X_tile - C @ X)
                if not with_stress:
                    return grad
                rows_squares = jnp.sum(C * C, axis=1, keepdims=True).astype(jnp.float64)
                return grad, jnp.sum(jnp.where(moves_tile, rows_squares, 0.0))

            parts = lax.map(tile_gradient, (X_block.reshape(tiles, tile, dim), D2_tiles,
                                            moves.reshape(tiles, tile, 1)))
            grad = parts[0] if with_stress else parts
            X_block = jnp.where(moves, X_block - lr * grad.reshape(rows, dim), X_block)
            if not with_stress:
                return X_block
            return X_block, lax.psum(jnp.sum(parts[1]), "rows") / 2

        X_block = lax.fori_loop(0, niter - stress, lambda _, X_block: block_step(X_block, False), X_block)
        X_block, total = lax.cond(stress > 0, lambda X_block: block_step(X_block, True),
                                  lambda X_block: (X_block, jnp.zeros((), jnp.float64)), X_block)
        return gather(X_block), total

    # The result is the gathered X, the same on every device; shard_map cannot infer that of
    # all_gather's output, so its replication check is off (check_vma=False).
    kernel = jax.jit(jax.shard_map(block_descend, mesh=mesh, in_specs=(P("rows"), P("rows"), P(), P(), P()),
                                   out_specs=(P(), P()), check_vma=False))
    rows_sharding = NamedSharding(mesh, P("rows"))
    with jax.enable_x64(True):
        return kernel.lower(jax.ShapeDtypeStruct((shape.padded, dim), dtype, sharding=rows_sharding),
                            jax.ShapeDtypeStruct((shape.padded, n), dtype, sharding=rows_sharding),
                            jax.ShapeDtypeStruct((), dtype), np.int64(0), np.int64(0)).compile()


@dataclass
class _Sharded:
    """A prepared solve: the mesh, its layout, D^2 row blocks on the devices, the executable."""

    shape: Layout
    sharding: object
    D2: object
    run: object

    def close(self):
        self.D2.delete()


class JaxSharded(Backend):
    name = "jax-sharded"
    language = "JAX"
    tier = "idiomatic"
    parallel = True
    summary = ("rows of D^2 split over every device JAX sees (CPU devices, processes of a "
               "jax.distributed run, GPUs); X gathered each step; threads = devices per process")
    sources = ("gradi/sharded/backend.py", "gradi/backends/jax_runtime.py", "gradi/sharded/distributed.py")
    requires = ("jax",)

    def load(self):
        try:
            jax = runtime().jax
        except ImportError as exc:
            raise ImportError(f"jax is not installed ({exc}); pip install 'gradi[jax]'") from exc
        if not hasattr(jax, "shard_map"):
            raise ImportError(f"jax {jax.__version__} has no jax.shard_map; upgrade jax")

    def default_threads(self):
        """Every device JAX gives this process."""
        return 1 if self.unavailable_reason is not None else len(runtime().jax.local_devices())

    def check(self, problem, threads):
        """As Backend.check, plus: ``threads`` devices must exist here."""
        return super().check(problem, threads) or self._devices_reason(threads)

    def share(self, n, threads, dtype):
        """This process's devices' rows in the backend's layout, and every process of the run."""
        processes = distributed.process_count()
        shape = layout(n, threads * processes, np.dtype(dtype).itemsize)
        start = min(n, distributed.process_index() * threads * shape.rows)
        group = distributed.PROCESSES if processes > 1 else ALONE
        return (start, min(n, start + threads * shape.rows)), group

    def working_bytes(self, n, dim, itemsize, threads):
        """This process's rows of D^2, per device three tiles of N-wide temporaries, and XLA's
        compilation and runtime (as for jax)."""
        if n == 0:
            return 0
        shape = layout(n, threads * distributed.process_count(), itemsize)
        return threads * (shape.rows + 3 * shape.tile) * n * itemsize + XLA_BYTES

    def prepare(self, problem, threads):
        jax = runtime().jax
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        mesh = Mesh(np.array(mesh_devices(threads)), ("rows",))
        dtype = np.dtype(problem.dtype)
        shape = layout(problem.n, mesh.size, dtype.itemsize)
        sharding = NamedSharding(mesh, P("rows"))
        with jax.enable_x64(True):
            D2 = jax.make_array_from_callback((shape.padded, problem.n), sharding,
                                              functools.partial(_squared_rows, problem.D, dtype, shape.padded))
        run = _compiled(mesh, shape, problem.dim, dtype.name)
        return State(problem, threads, data=_Sharded(shape, sharding, D2, run))

    def descend(self, state, X, niter, stress=False):
        check_stress_niter(niter, stress)
        jax = runtime().jax
        sharded = state.data
        if distributed.process_count() > 1:
            asked = distributed.gather([niter, int(stress)])
            if np.any(asked != [niter, int(stress)]):
                raise ValueError(f"the processes asked for different iteration counts or stress flags "
                                 f"((niter, stress): {', '.join(str(tuple(row)) for row in asked.tolist())}); "
                                 f"every process of a run must take the same steps (gradi.solve does)")
        padded = np.zeros((sharded.shape.padded, X.shape[1]), dtype=X.dtype)
        padded[:sharded.shape.n] = X
        lr = np.asarray(state.problem.lr, dtype=X.dtype)
        with jax.enable_x64(True):
            try:
                X_global = jax.make_array_from_callback(padded.shape, sharded.sharding, padded.__getitem__)
                X, total = sharded.run(X_global, sharded.D2, lr, np.int64(niter), np.int64(stress))
                return (np.array(X), float(total)) if stress else np.array(X)
            except Exception as exc:
                if distributed.process_count() == 1:
                    raise
                distributed.abort(f"process {distributed.process_index()} lost the other processes "
                                  f"of the run: {exc}".splitlines()[0])

    def _devices_reason(self, threads):
        local = len(runtime().jax.local_devices())
        if distributed.process_count() > 1 and threads != local:
            return (f"backend {self.name!r} uses every device of every process in a multi-process "
                    f"run; this process has {local}, so threads must be {local}, got {threads}")
        if threads > local:
            return (f"backend {self.name!r} splits rows over devices, one per thread, and JAX gives "
                    f"this process {local} device(s); threads must be at most {local}, got {threads} "
                    f"(more CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=K, or "
                    f"several processes with gradi launch)")
        return None


def _squared_rows(D, dtype, padded, index):
    """D^2 for the rows ``index`` asks of ``padded`` (zero past N), FILL_BYTES of D at a time."""
    start, stop, _ = index[0].indices(padded)
    n = D.shape[0]
    block = _aligned_zeros((stop - start, n), dtype)
    step = max(1, FILL_BYTES // (8 * n))
    for first in range(start, min(stop, n), step):
        last = min(first + step, stop, n)
        part = np.asarray(D[first:last], dtype=dtype)
        np.multiply(part, part, out=block[first - start:last - start])
    return block


def _aligned_zeros(shape, dtype):
    """Zeros on a HOST_ALIGNMENT-byte boundary: XLA's CPU client then uses the block in place
    instead of copying it (measured: one block's worth less peak memory per process)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(size + HOST_ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % HOST_ALIGNMENT
    return raw[offset:offset + size].view(dtype).reshape(shape)


BACKENDS = [JaxSharded()]
