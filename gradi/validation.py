"""Validation, in one place, before any backend runs.

``validate`` turns the caller's arguments into a :class:`gradi.problem.Problem`: C-contiguous,
writeable copies in the asked dtype (the caller's arrays are never modified) and checked values.
Given a backend and threads, it asks the backend's ``check`` as soon as N, dim and dtype are
known, before any N x N copy is made. Every refusal is a ValueError or TypeError naming the
argument, what was wrong and what is allowed.
"""

import numbers

import numpy as np

from .errors import BackendUnavailableError
from .problem import Problem, ProblemSize
from .shapes import random_start
from .stepsize import auto_lr

DTYPES = ("float32", "float64")
SYMMETRY_RTOL = 1e-6


def validate(D, dim=None, *, lr="auto", niter=1000, dtype="float32", X0=None, seed=42,
             backend=None, threads=1):
    """Check the problem's arguments of ``gradi.solve`` and return a :class:`Problem`.

    With ``backend`` (a Backend), also refuse what it cannot run with ``threads``, before the
    N x N work starts.
    """
    dtype = _check_dtype(dtype)
    D = _numeric_array("D", D)
    _check_square(D)
    n = D.shape[0]
    X0 = None if X0 is None else _numeric_array("X0", X0)
    dim = _check_dim(dim, X0)
    niter = check_int("niter", niter, minimum=0)
    if backend is not None:
        ensure_runnable(backend, ProblemSize(n, dim, dtype), threads)
    _check_distances(D)

    D = np.array(D, dtype=np.float64, order="C")
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    if X0 is None:
        X0 = random_start(D, dim, seed=check_int("seed", seed, minimum=0))
    else:
        X0 = _check_start(X0, n, dim)
    _check_scale(D, X0, dtype)
    lr = auto_lr(D, X0) if isinstance(lr, str) and lr == "auto" else _check_lr(lr)
    return Problem(D=np.ascontiguousarray(D, dtype=dtype), X0=np.array(X0, dtype=dtype, order="C"),
                   lr=lr, niter=niter)


def resolve_threads(backend, threads):
    """The thread count a run uses: the backend's default for None, else a checked integer >= 1."""
    return backend.default_threads() if threads is None else check_int("threads", threads, minimum=1)


def ensure_runnable(backend, problem, threads):
    """Raise when ``backend.check`` refuses: BackendUnavailableError if it cannot run at all here."""
    reason = backend.check(problem, threads)
    if reason is not None:
        raise (BackendUnavailableError if not backend.available else ValueError)(reason)


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


def check_int(name, value, minimum):
    """``value`` as an int, refusing bools, non-integers and values below ``minimum``."""
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
    return check_int("dim", dim, minimum=1)


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
