"""Starting JAX for gradi's JAX backends, with XLA's CPU thread pool pinned to what they declare.

XLA's CPU client runs every computation of the process on one thread pool, sized once, when the
client starts, as ``max(PJRT_NPROC, else NPROC, else the usable cores; the CPU device count)``.
A computation on one device spreads its work over the whole pool, so without a setting the
"serial" ``jax`` and ``jax-scan`` backends used both cores of a 2-core machine. XLA's own flags
(``--xla_cpu_multi_thread_eigen=false``, ``intra_op_parallelism_threads=1``) no longer change
this; the pool size does.

When gradi is the first to start JAX in a process and neither ``PJRT_NPROC`` nor ``NPROC`` is
set, it sets ``NPROC=1`` for the moment the CPU client is created and removes it again, so the
pool has one thread per CPU device (one device unless ``XLA_FLAGS`` or ``JAX_NUM_CPU_DEVICES``
ask for more) and nothing else in the process, or its children, sees the variable. A user's own
setting, or a JAX started before gradi, is left alone: ``Runtime.pool_threads`` then says how many
threads the pool has, by XLA's rule, and the backends report that count instead of pretending.

When gradi starts JAX it also creates the CPU client synchronous (``jax_cpu_enable_async_dispatch``
off for that moment, unless the user set it, then restored): a computation then runs on the
calling thread instead of being handed to a runtime thread and waited for. gradi converts every
result to NumPy at once, so asynchronous dispatch only added two thread hand-offs to every call,
which a loaded machine turns into scheduler waits, and a ``tol`` solve makes a call per check.
"""

import functools
import os
import sys
from dataclasses import dataclass
from types import ModuleType

from .. import host

# XLA's compiler and runtime, whatever N, for every JAX backend: the first compile in a process
# initialises them (about 50-65 MB; a later compile adds a few MB). tests/test_memory.py measures
# it in fresh processes.
XLA_BYTES = 80 << 20
POOL_VARIABLES = ("PJRT_NPROC", "NPROC")  # read by XLA's CPU client in this order
ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"  # read once, when the CPU client is created


@dataclass(frozen=True)
class Runtime:
    """The started JAX: the module, the CPU pool's thread count, and whether gradi pinned it."""

    jax: ModuleType
    pool_threads: int
    pinned_by_gradi: bool

    def describe(self):
        """A phrase for messages: how many threads the pool has, and why."""
        why = "pinned by gradi" if self.pinned_by_gradi else "set before gradi started JAX"
        return f"JAX's CPU thread pool has {self.pool_threads} thread(s) in this process ({why})"


def started():
    """True when JAX's runtime (its backends) already exists in this process."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    probe = getattr(xla_bridge, "backends_are_initialized", None)
    return True if probe is None else probe()


@functools.cache
def runtime():
    """Import JAX and start its runtime once (see the module docstring); ImportError without JAX."""
    first = not started()
    pin = first and not any(variable in os.environ for variable in POOL_VARIABLES)
    synchronous = first and ASYNC_DISPATCH.upper() not in os.environ
    if pin:
        os.environ["NPROC"] = "1"
    try:
        import jax

        asynchronous = jax.config.read(ASYNC_DISPATCH)
        if synchronous:
            jax.config.update(ASYNC_DISPATCH, False)
        try:
            cpu_devices = len(jax.local_devices(backend="cpu"))
        finally:
            if synchronous:
                jax.config.update(ASYNC_DISPATCH, asynchronous)
    finally:
        if pin:
            del os.environ["NPROC"]
    return Runtime(jax=jax, pool_threads=max(1 if pin else _pool_setting(), cpu_devices),
                   pinned_by_gradi=pin)


def _pool_setting():
    """The pool size XLA derives from the environment: PJRT_NPROC, else NPROC, else the cores."""
    for variable in POOL_VARIABLES:
        try:
            return max(0, int(os.environ[variable]))
        except (KeyError, ValueError):
            continue
    return host.usable_cores()
