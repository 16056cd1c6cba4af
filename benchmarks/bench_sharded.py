"""jax-sharded at 1 and 2 devices: time per backend call, and the per-step cost of gathering X.

A process's CPU devices are fixed when JAX starts, so every sample runs in a fresh interpreter
(asv's ``timeraw_``) whose setup sets ``XLA_FLAGS=--xla_force_host_platform_device_count=<devices>``
before importing gradi, validates the benchmark problem (``common``'s: the sphere, float32,
``lr="auto"``), prepares the backend and warms it up: none of that is timed, only the calls.
Two processes (``gradi launch``) are not in asv; ``gradi launch -n 2 -- gradi bench --backends
jax-sharded`` measures them.
On a 2-core machine the second device buys room for D, not speed: the README has the figures.
"""

from . import common

DEVICES = [1, 2]
SIZES = [1000, 4000]
GATHERS = 100

DEVICES_CODE = """
import os
flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count={devices}"
os.environ["XLA_FLAGS"] = flags.strip()
"""
SOLVE_CODE = DEVICES_CODE + """
import gradi
from gradi.bench.sweep import target
from gradi.validation import validate
backend = gradi.backends.get("jax-sharded")
problem = validate(gradi.distance_matrix(target({n}, 3)), 3, niter={niter}, dtype={dtype!r})
reason = backend.check(problem, {devices})
if reason is not None:
    raise SystemExit(reason)
state = backend.prepare(problem, {devices})
backend.descend(state, problem.X0.copy(), {niter})
"""


class ShardedSolve:
    """Seconds per backend call of ITERATIONS (10) steps of jax-sharded on 1 or 2 CPU devices of
    one process (sphere, float32), from a fresh copy of X0; comparable with bench_solve's rows."""

    params = [DEVICES, SIZES]
    param_names = ["devices", "N"]
    number = 5
    repeat = (2, 5, 30.0)
    warmup_time = 0
    version = "1"

    def timeraw_descend(self, devices, n):
        setup = SOLVE_CODE.format(devices=devices, n=n, niter=common.ITERATIONS, dtype=common.DTYPE)
        return "backend.descend(state, problem.X0.copy(), problem.niter)", setup


class ShardedGather:
    """Seconds per GATHERS (100) steps of jax-sharded's all_gather of X (N x 3, float32) over 2 CPU
    devices of one process, measured alone (gradi.bench.gather): divide by 100 for the
    communication share of one step."""

    params = [[2], SIZES + [16000]]
    param_names = ["devices", "N"]
    number = 1
    repeat = (2, 5, 30.0)
    warmup_time = 0
    version = "1"

    def timeraw_gather(self, devices, n):
        setup = DEVICES_CODE.format(devices=devices) + (
            f"from gradi.bench.gather import gather_loop\n"
            f"gathers = gather_loop({n}, threads={devices}, niter={GATHERS})")
        return "gathers()", setup
