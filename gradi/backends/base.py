"""The one interface every backend implements (modelled on benchopt's solvers).

A backend declares what it is (name, language, tier, parallel, dtypes, source files) and how to
run: ``descend(X, D, lr, niter, threads)`` takes positions X and distances D that gradi has
already validated and converted (C-contiguous, writeable, of one of ``dtypes``) and returns the
positions after ``niter`` plain gradient steps. It may update X in place. Heavy libraries are
imported lazily in ``load()``, so listing backends never imports JAX or compiles anything.
"""

import functools
import os


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

    def load(self):
        """Import or build what ``descend`` needs; raise ImportError/OSError with the reason if it cannot."""

    @functools.cached_property
    def unavailable_reason(self):
        """None when the backend can run here, else a one-line reason (cached)."""
        try:
            self.load()
        except Exception as exc:  # any failure to load makes the backend unavailable, with why
            return _one_line(exc)
        return None

    @property
    def available(self):
        return self.unavailable_reason is None

    def default_threads(self):
        """Threads used when the caller passes threads=None: all cores if parallel, else one."""
        return (os.cpu_count() or 1) if self.parallel else 1

    def skip(self, problem):
        """Why this backend cannot run ``problem`` (a gradi.validation.Problem), or None."""
        if self.unavailable_reason is not None:
            return f"backend {self.name!r} is unavailable: {self.unavailable_reason}"
        if problem.dtype.name not in self.dtypes:
            return (f"backend {self.name!r} supports dtype {' or '.join(self.dtypes)}, "
                    f"not {problem.dtype.name}")
        if problem.threads != 1 and not self.parallel:
            return (f"backend {self.name!r} runs on one thread; threads must be 1 or None, "
                    f"got {problem.threads}")
        return None

    def working_bytes(self, n, dim, itemsize):
        """Memory the backend allocates beyond D and X, used to refuse problems that cannot fit."""
        return 0

    def prepare(self, problem):
        """Compile or warm up for this problem's shapes and dtype; never part of a timed call."""

    def descend(self, X, D, lr, niter, threads):
        """Return X after ``niter`` steps ``X <- X - lr * gradient(X, D)``."""
        raise NotImplementedError


def _one_line(exc):
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return message if len(message) <= 200 else message[:197] + "..."
