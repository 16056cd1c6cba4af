"""The one interface every backend implements (modelled on benchopt's solvers).

A backend declares what it is (name, language, tier, parallel, dtypes, source files) and how to
run a problem in two steps:

- ``prepare(problem, threads) -> State``: everything a solve pays once — compiling, building
  D^2 in the kernel's layout, scratch buffers, thread pools. Never part of a timed call.
- ``descend(state, X, niter) -> X``: ``niter`` plain gradient steps from X, reusing the state.
  X is C-contiguous, writeable and of the state's ``working_dtype``; it may be updated in place.

A solve in chunks (recording, a tolerance, Ctrl-C) calls ``descend`` once per chunk with one
state, so chunking costs no set-up. ``check(problem, threads)`` is the single answer to "can this
backend run this problem here?": solve, ``gradi bench`` and the asv suite all ask it. Heavy
libraries are imported in ``load()`` only; listing backends (``status``) never imports JAX or
compiles anything.
"""

import functools
import importlib.util

import numpy as np

from .. import host, memory
from ..group import ALONE
from ..validation import MAX_THREADS


class State:
    """What a backend prepared for one solve: the problem, the threads, and its own data.

    ``close()`` (or leaving a ``with`` block) releases the backend's data; a closed state must
    not be used again.
    """

    def __init__(self, problem, threads, data=None):
        self.problem = problem
        self.threads = threads
        self.data = data

    def close(self):
        data, self.data = self.data, None
        release = getattr(data, "close", None)
        if release is not None:
            release()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Backend:
    """Base class: subclasses set the metadata and implement ``load`` and ``descend``."""

    name = ""
    language = ""
    tier = "seed"  # "seed" (the blog's algorithm), "idiomatic" or "tuned"
    parallel = False
    dtypes = ("float32", "float64")
    summary = ""
    precision_note = ""
    sources = ()
    requires = ()  # importable modules the backend needs: checked cheaply by ``installed``

    def installed(self):
        """Cheap: None when what ``load`` needs is present (nothing imported or built), else why."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        return None

    def load(self):
        """Import or build what ``descend`` needs; raise ImportError/OSError with the reason if it cannot."""

    @functools.cached_property
    def unavailable_reason(self):
        """None when the backend can run here, else a one-line reason (cached; loads the backend)."""
        reason = self.installed()
        if reason is not None:
            return reason
        try:
            self.load()
        except Exception as exc:  # any failure to load makes the backend unavailable, with why
            return one_line(exc)
        return None

    @property
    def available(self):
        return self.unavailable_reason is None

    def status(self):
        """A word for listings, without loading: "available", "unavailable: why", or what loading will do."""
        if "unavailable_reason" in self.__dict__:
            reason = self.unavailable_reason
            return "available" if reason is None else f"unavailable: {reason}"
        reason = self.installed()
        return "available" if reason is None else f"unavailable: {reason}"

    def default_threads(self):
        """Threads used when the caller passes threads=None: the usable cores if parallel, else one."""
        return host.usable_cores() if self.parallel else 1

    def working_dtype(self, dtype):
        """The dtype the backend keeps positions in between calls (python: float64 whatever asked)."""
        return np.dtype(dtype)

    def working_bytes(self, n, dim, itemsize, threads):
        """Memory the backend allocates beyond D and X, used to refuse problems that cannot fit."""
        return 0

    def load_runtime(self):
        """Load into this process what a first ``prepare`` would (a compiled extension and the
        runtime it starts), so that gradi.memory.plan, which measures the process, counts it;
        ``load`` already has, unless it stays cheap on purpose."""

    def check(self, problem, threads):
        """Why this backend cannot run ``problem`` with ``threads`` here, or None when it can.

        Looks only at ``problem.n``, ``.dim`` and ``.dtype``, so it can run on a
        ``gradi.problem.ProblemSize`` before any array is built.
        """
        if self.unavailable_reason is not None:
            return f"backend {self.name!r} is unavailable: {self.unavailable_reason}"
        if np.dtype(problem.dtype).name not in self.dtypes:
            return (f"backend {self.name!r} supports dtype {' or '.join(self.dtypes)}, "
                    f"not {np.dtype(problem.dtype).name}")
        if threads != 1 and not self.parallel:
            return f"backend {self.name!r} runs on one thread; threads must be 1 or None, got {threads}"
        if threads > MAX_THREADS:
            return f"backend {self.name!r} supports at most {MAX_THREADS} threads, got {threads}"
        return memory.shortfall(self, problem.n, problem.dim, problem.dtype, threads, problem.whole)

    def share(self, n, threads, dtype):
        """((start, stop), group): the rows of D this process works on, and the group (gradi.group)
        its partial results combine over. Every row, alone, except in a multi-process run."""
        return (0, n), ALONE

    def prepare(self, problem, threads):
        """Compile, warm up and lay out what every call of this solve reuses; never timed."""
        return State(problem, threads)

    def descend(self, state, X, niter, stress=False):
        """Return X after ``niter`` steps ``X <- X - lr * gradient(X, D)`` on ``state``'s problem.

        With ``stress=True`` (``niter >= 1``) return ``(X, s)``: ``s`` is the stress, a Python
        float, of the positions the last step started from, in the units of the state's problem,
        from the C_ij that step computes anyway: squared, summed per row or tile, and those
        partial sums added in float64 (only the last step does it, so the positions are
        bit-identical to those of ``stress=False``).
        """
        raise NotImplementedError


def one_line(exc):
    """The first line of an exception's message, at most 200 characters (for listings)."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return message if len(message) <= 200 else message[:197] + "..."
