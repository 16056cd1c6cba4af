"""The per-step cost of jax-sharded's communication: gathering X from every device.

Each step of jax-sharded starts with an ``all_gather`` of X (N x dim) over the mesh. This measures
that alone: a compiled loop of ``niter`` gathers on the backend's own mesh and layout, each step
taking its neighbour's block of the gathered X so that no gather can be skipped. Divided by
``niter`` it is the gather's share of a step, to set beside the step's total time. In a
multi-process run every process must call it alike (it is a collective).
"""

import functools
import time

import numpy as np

from ..backends.jax_runtime import runtime
from ..sharded.backend import layout, mesh_devices


@functools.lru_cache(maxsize=8)
def _gathers(mesh, shape, dim, dtype):
    jax = runtime().jax
    from jax import lax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    rows, devices = shape.rows, shape.devices

    def block_gathers(X_block, niter):
        neighbour = (lax.axis_index("rows") + 1) % devices

        def step(_, X_block):
            X = lax.all_gather(X_block, "rows", tiled=True)
            return lax.dynamic_slice_in_dim(X, neighbour * rows, rows)
        return lax.fori_loop(0, niter, step, X_block)

    kernel = jax.jit(jax.shard_map(block_gathers, mesh=mesh, in_specs=(P("rows"), P()),
                                   out_specs=P("rows")))
    sharding = NamedSharding(mesh, P("rows"))
    with jax.enable_x64(True):
        compiled = kernel.lower(jax.ShapeDtypeStruct((shape.padded, dim), dtype, sharding=sharding),
                                np.int64(0)).compile()
    return compiled, sharding


def gather_loop(n, dim=3, dtype="float32", threads=1, niter=200):
    """A call that runs ``niter`` gathers of an N x dim X over ``threads`` devices per process
    (compiled and warmed up here), returning when they are done."""
    jax = runtime().jax
    from jax.sharding import Mesh

    mesh = Mesh(np.array(mesh_devices(threads)), ("rows",))
    shape = layout(n, mesh.size, np.dtype(dtype).itemsize)
    run, sharding = _gathers(mesh, shape, dim, np.dtype(dtype).name)
    X = np.random.default_rng(0).random((shape.padded, dim)).astype(dtype)

    def gathers(count=niter):
        with jax.enable_x64(True):
            return run(X_global, np.int64(count)).block_until_ready()

    with jax.enable_x64(True):
        X_global = jax.make_array_from_callback(X.shape, sharding, X.__getitem__)
    gathers(1)
    return gathers


def gather_seconds(n, dim=3, dtype="float32", threads=1, niter=200):
    """Seconds per step of jax-sharded's gather of an N x dim X over ``threads`` devices per process."""
    gathers = gather_loop(n, dim, dtype, threads, niter)
    started = time.perf_counter()
    gathers()
    return (time.perf_counter() - started) / niter
