"""Validation, in one place, before any backend runs.

``validate`` turns the caller's arguments into a :class:`Problem`: C-contiguous, writeable
copies in the asked dtype (the caller's arrays are never modified), checked values, the backend
resolved, and a memory estimate compared with what the machine has. Every refusal is a
ValueError or TypeError naming the argument, what was wrong and what is allowed.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from . import backends
from .errors import BackendUnavailableError
from .bench.machine import meminfo_bytes, physical_memory
from .shapes import random_start
from .stepsize import auto_lr

DTYPES = ("float32", "float64")
SYMMETRY_RTOL = 1e-6


@dataclass(frozen=True)
class Problem:
    """A validated problem: what a backend's ``skip`` and ``descend`` receive."""

    D: np.ndarray
    X0: np.ndarray
    lr: float
    niter: int
    threads: int
    record_every: int | None
    backend: backends.Backend

    @property
    def n(self):
        return self.D.shape[0]

    @property
    def dim(self):
        return self.X0.shape[1]

    @property
    def dtype(self):
        return self.D.dtype

    @property
    def chunk_lengths(self):
        """Iterations per backend call: one call, or ``record_every`` per call when recording."""
        if self.niter == 0:
            return []
        if not self.record_every:
            return [self.niter]
        full, rest = divmod(self.niter, self.record_every)
        return [self.record_every] * full + ([rest] if rest else [])


def validate(D, dim=None, *, backend="numpy", lr="auto", niter=1000, threads=None,
             dtype="float32", X0=None, seed=42, record_every=None):
    """Check every argument of ``gradi.solve`` and return a :class:`Problem`."""
    backend_obj = backends.get(backend)
    dtype = _check_dtype(dtype)
    D = _numeric_array("D", D)
    _check_square(D)
    n = D.shape[0]
    X0 = None if X0 is None else _numeric_array("X0", X0)
    dim = _check_dim(dim, X0)
    niter = _check_int("niter", niter, minimum=0)
    record_every = None if record_every is None else _check_int("record_every", record_every, minimum=1)
    threads = backend_obj.default_threads() if threads is None else _check_int("threads", threads, minimum=1)
    _check_memory(backend_obj, n, dim, dtype)
    _check_distances(D)

    D = np.array(D, dtype=np.float64, order="C")
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    if X0 is None:
        X0 = random_start(D, dim, seed=_check_int("seed", seed, minimum=0))
    else:
        X0 = _check_start(X0, n, dim)
    _check_scale(D, X0, dtype)
    lr = auto_lr(D, X0) if isinstance(lr, str) and lr == "auto" else _check_lr(lr)

    problem = Problem(D=np.ascontiguousarray(D, dtype=dtype), X0=np.array(X0, dtype=dtype, order="C"),
                      lr=lr, niter=niter, threads=threads, record_every=record_every,
                      backend=backend_obj)
    reason = backend_obj.skip(problem)
    if reason is not None:
        error = BackendUnavailableError if not backend_obj.available else ValueError
        raise error(reason)
    return problem


def _check_dtype(dtype):
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return np.dtype(name)


def _numeric_array(name, value):
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None
    if array.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {array.dtype}")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {array.dtype}")
    return array


def _check_square(D):
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square 2-D distance matrix (N x N), got shape {D.shape}")
    if D.shape[0] < 2:
        raise ValueError(f"D must describe at least 2 points, got N={D.shape[0]}")


def _check_distances(D):
    if not np.all(np.isfinite(D)):
        raise ValueError("D must be finite; it contains NaN or inf")
    if np.any(D < 0):
        raise ValueError(f"D must be non-negative distances; its smallest entry is {D.min()}")
    tolerance = SYMMETRY_RTOL * max(float(np.max(D)), 1.0)
    asymmetry = float(np.max(np.abs(D - D.T)))
    if asymmetry > tolerance:
        raise ValueError(f"D must be symmetric: |D - D.T| reaches {asymmetry:.3g}, "
                         f"allowed up to {tolerance:.3g} (1e-6 of max(D, 1))")
    diagonal = float(np.max(np.abs(np.diagonal(D))))
    if diagonal > tolerance:
        raise ValueError(f"D must have a zero diagonal (a point is at distance 0 from itself); "
                         f"|D_ii| reaches {diagonal:.3g}")


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_dim(dim, X0):
    if dim is None:
        if X0 is None:
            return 2
        if X0.ndim != 2:
            raise ValueError(f"X0 must be a 2-D array of shape (N, dim), got shape {X0.shape}")
        dim = X0.shape[1]
    return _check_int("dim", dim, minimum=1)


def _check_start(X0, n, dim):
    if X0.shape != (n, dim):
        raise ValueError(f"X0 must have shape (N, dim) = ({n}, {dim}), got {X0.shape}")
    if not np.all(np.isfinite(X0)):
        raise ValueError("X0 must be finite; it contains NaN or inf")
    return X0


def _check_scale(D, X0, dtype):
    """Refuse distances or starts whose gradient terms (~ N x scale^3) overflow the dtype."""
    scale = max(float(np.max(D)), float(np.max(np.abs(X0))))
    limit = np.finfo(dtype).max ** (1 / 3) / (4 * D.shape[0]) ** (1 / 3)
    if scale > limit:
        raise ValueError(f"D and X0 must be rescaled: their scale {scale:.3g} makes the gradient "
                         f"overflow {dtype.name} (allowed up to {limit:.3g} for N={D.shape[0]}); "
                         f"divide D by a constant, or use float64")


def _check_lr(lr):
    if isinstance(lr, str):
        raise ValueError(f"lr must be 'auto' or a positive finite number, got {lr!r}")
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be 'auto' or a positive finite number, got {type(lr).__name__}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be 'auto' or a positive finite number, got {lr}")
    return float(lr)


def available_memory():
    """Bytes the machine can still give (MemAvailable on Linux, else physical memory, else None)."""
    return meminfo_bytes("MemAvailable") or physical_memory()


def memory_needed(backend, n, dim, dtype):
    """Bytes a solve needs: D in dtype, gradi's float64 work, the backend's own work.

    gradi's float64 work peaks at two N x N copies while D is checked and symmetrised, and at
    dim + 1 of them when the reference stress forms every pair's difference (gradi.problem).
    """
    itemsize = np.dtype(dtype).itemsize
    gradi_copies = max(2, dim + 1)
    return n * n * (itemsize + gradi_copies * 8) + backend.working_bytes(n, dim, itemsize)


def memory_shortfall(backend, n, dim, dtype):
    """Why a solve cannot fit in the memory left (a sentence), or None when it fits or is unknown."""
    need, have = memory_needed(backend, n, dim, dtype), available_memory()
    if have is None or need <= have:
        return None
    return (f"N={n} with backend {backend.name!r} in {np.dtype(dtype).name} needs about "
            f"{need / 2**30:.1f} GiB, but only {have / 2**30:.1f} GiB is available")


def _check_memory(backend, n, dim, dtype):
    shortfall = memory_shortfall(backend, n, dim, dtype)
    if shortfall is not None:
        raise ValueError(f"problem too large: {shortfall}; use a smaller N, float32, or another backend")
