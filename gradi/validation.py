"""Validation, in one place, before any backend runs.

``validate`` turns the caller's arguments into a :class:`gradi.problem.Problem`: C-contiguous,
writeable copies in the asked dtype (the caller's arrays are never modified) and checked values.
Given a backend and threads, it asks the backend's ``check`` as soon as N, dim and dtype are
known, before any N x N copy is made. Every refusal is a ValueError or TypeError naming the
argument, what was wrong and what is allowed; each limit is checked here once.

Its own memory is D in the asked dtype plus O(N) (gradi.memory counts on it): D is checked and
converted in row blocks (gradi.problem.row_blocks), never copied whole in float64.

Scale. Distances fix a shape only up to scale, and gradient descent is exactly equivariant
under scaling by a power of two (every product and sum is scaled exactly while no number leaves
the dtype's normal range). A problem whose scale (its largest distance or start coordinate)
lies in ``KEPT_SCALES`` runs as given; one outside runs rescaled by a power of two ``factor`` to
a scale in [0.5, 1), where float32 neither underflows nor overflows, and its positions, stress
and step are scaled back (see Problem): the result is the one the caller's scale gives with
exact arithmetic. An explicit lr keeps its meaning, a step in the caller's units; it runs as
lr / factor^2, and is refused when that step is not a normal number of the dtype. Only scales
whose results the caller cannot receive are refused (``SCALE_LIMITS``).
"""

import math
import numbers
import warnings

import numpy as np

from .errors import BackendUnavailableError, DegenerateStartWarning
from .group import ALONE
from .problem import Problem, ProblemSize, row_blocks, sum_of_squares
from .rows import RowSource
from .shapes import cube_start
from .stepsize import auto_lr

DTYPES = ("float32", "float64")
MAX_THREADS = 1024  # the most threads any backend is asked for (the C++ and Mojo extensions' bound)
MAX_NITER = 2**40  # the most iterations one solve asks for (the Mojo extension's bound)
SYMMETRY_RTOL = 1e-6
KEPT_SCALES = (2.0**-16, 2.0**16)  # run as given: nothing in a step leaves float32's normal range
# Largest caller scale, and inverse of the smallest, per dtype: float32 positions (normal down
# to 2^-126, up to 2^128) keep 2^23 of precision and room to move; the float64 stress, ~N^2
# scale^4, stays a normal float64 for any N that fits in memory.
SCALE_LIMITS = {"float32": 2.0**100, "float64": 2.0**240}


def validate(D, dim=None, *, lr="auto", niter=1000, dtype="float32", X0=None, seed=42,
             backend=None, threads=1):
    """Check the problem's arguments of ``gradi.solve`` and return a :class:`Problem`.

    With ``backend`` (a Backend), also refuse what it cannot run with ``threads``, before the
    N x N work starts, and take from it the rows this process works on and the group its
    results combine over (``Backend.share``). D may be a row source (gradi.rows): then only
    those rows are read, and every process of the run refuses or accepts together, with the
    same message. Warns (DegenerateStartWarning) when X0 spans fewer dimensions than it could:
    gradient descent never leaves the affine subspace of its start.
    """
    dtype = _check_dtype(dtype)
    source = isinstance(D, RowSource)
    if source:
        D.factor, D.zero_diagonal = 1.0, False  # the checks read D as given
    else:
        D = _numeric_array("D", D)
    _check_square(D)
    n = D.shape[0]
    X0 = None if X0 is None else _numeric_array("X0", X0)
    dim = _check_dim(dim, X0)
    niter = check_int("niter", niter, minimum=0, maximum=MAX_NITER)
    auto = isinstance(lr, str) and lr == "auto"
    lr = None if auto else _check_lr(lr)
    seed = check_int("seed", seed, minimum=0) if X0 is None else None
    rows, group = (0, n), ALONE
    if backend is not None:
        ensure_runnable(backend, ProblemSize(n, dim, dtype, whole=not source), threads)
        rows, group = backend.share(n, threads, dtype)
        group.agree({"N": n, "dim": dim, "dtype": dtype.name, "lr": "auto" if auto else lr, "niter": niter,
                     "seed": seed, "backend": backend.name, "X0": X0})
    largest, mirrored = _check_distances(D, rows, group)
    group.check_symmetric(D, rows, symmetry_tolerance(largest))
    if X0 is not None:
        X0 = _check_start(X0, n, dim)
    # a random start lies in a cube of side RMS(D) <= max(D), or 1 when D is all zero
    scale = (largest or 1.0) if X0 is None else max(largest, float(np.max(np.abs(X0))))
    factor = _rescaling(scale, dtype)
    if source:
        D.factor, D.zero_diagonal = factor, True
    else:
        D = _symmetrised(D, dtype, factor, mirrored)
    squares = float(group.sum(sum_of_squares(D, *rows))) if X0 is None or auto else None
    if X0 is None:  # random, so it spans every dimension it can: nothing to check
        X0 = np.array(cube_start(n, dim, np.sqrt(squares / n**2), seed), dtype=dtype)
    else:
        X0 = np.array(X0 * factor if factor != 1.0 else X0, dtype=dtype, order="C")
        _check_start_can_move(X0, largest, dtype)
    lr = auto_lr(D, X0, rows, group, squares) if auto else _step(lr, factor, dtype)
    return Problem(D=D, X0=X0, lr=lr, niter=niter, scale=factor, lr_auto=auto,
                   rows=None if rows == (0, n) else rows, group=group)


def resolve_threads(backend, threads):
    """The thread count a run uses: the backend's default for None, else a checked integer >= 1."""
    return backend.default_threads() if threads is None else check_int("threads", threads, minimum=1)


def threads_for(backend, threads):
    """The threads ``backend`` runs with when a comparison asks every backend for ``threads``
    (None: each its default): a serial backend takes one, whatever is asked."""
    return resolve_threads(backend, threads) if backend.parallel else 1


def ensure_runnable(backend, problem, threads):
    """Raise when ``backend.check`` refuses: BackendUnavailableError if it cannot run at all here."""
    reason = backend.check(problem, threads)
    if reason is not None:
        raise (BackendUnavailableError if not backend.available else ValueError)(reason)


def check_int(name, value, minimum, maximum=None):
    """``value`` as an int, refusing bools, non-integers and values outside [minimum, maximum]."""
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {_power_of_two(maximum)}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer {allowed}, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {allowed}, got {value}")
    return int(value)


def _power_of_two(value):
    """2**k for a large power of two (as the limits are written), else the number itself."""
    if value > 1024 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return str(value)


def _check_dtype(dtype):
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return np.dtype(name)


def _numeric_array(name, value):
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        raise TypeError(f"{name} is a masked array with {int(np.ma.count_masked(value))} masked "
                        f"entries; gradi needs every value and would silently drop the mask: fill "
                        f"them ({name}.filled(value)) or pass {name}.data to use the values under it")
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
    if len(D.shape) != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square 2-D distance matrix (N x N), got shape {D.shape}")
    if D.shape[0] < 2:
        raise ValueError(f"D must describe at least 2 points, got N={D.shape[0]}")


def _check_distances(D, rows, group):
    """Refuse D unless finite, non-negative, symmetric, zero on the diagonal; return max(D), and
    whether D is exactly symmetric with an exactly zero diagonal.

    Reads ``rows`` (start, stop) of D in row blocks, each compared with the matching block of
    columns, in float64; the extremes are combined over ``group`` before any refusal, so every
    process of a run refuses alike.
    """
    start, stop = rows
    blocks = [_block_extremes(D, first, last) for first, last in row_blocks(stop, D.shape[1], start)]
    extremes = np.max(blocks, axis=0) if blocks else np.zeros(5)
    nonfinite, negative, largest, asymmetry, diagonal = group.max(extremes)
    if nonfinite:
        raise ValueError("D must be finite; it contains NaN or inf")
    if negative > 0:
        raise ValueError(f"D must be non-negative distances; it has the entry {-negative}")
    tolerance = symmetry_tolerance(largest)
    if asymmetry > tolerance:
        raise ValueError(f"D must be symmetric: |D - D.T| reaches {asymmetry:.3g}, "
                         f"allowed up to {tolerance:.3g} (1e-6 of max(D, 1))")
    if diagonal > tolerance:
        raise ValueError(f"D must have a zero diagonal (a point is at distance 0 from itself); "
                         f"|D_ii| reaches {diagonal:.3g}")
    return float(largest), asymmetry == 0 and diagonal == 0


def symmetry_tolerance(largest):
    """How far D_ij and D_ji may differ, given max(D): 1e-6 of max(D, 1)."""
    return SYMMETRY_RTOL * max(largest, 1.0)


def _block_extremes(D, start, stop):
    """(any NaN or inf, -min D_ij if negative, max D_ij, max |D_ij - D_ji|, max |D_ii|) over rows
    [start, stop); the symmetry term is 0 for a source symmetric by construction."""
    block = np.asarray(D[start:stop], dtype=np.float64)
    smallest, largest = float(block.min()), float(block.max())
    if not (math.isfinite(smallest) and math.isfinite(largest)):  # a NaN or an inf shows in both or one
        return 1.0, 0.0, 0.0, 0.0, 0.0
    rows = np.arange(stop - start)
    diagonal = float(np.max(np.abs(block[rows, rows + start])))
    negative = max(0.0, -smallest)
    if getattr(D, "symmetric", False):
        return 0.0, negative, largest, 0.0, diagonal
    difference = block - D[:, start:stop].T
    return 0.0, negative, largest, float(np.max(np.abs(difference, out=difference))), diagonal


def _symmetrised(D, dtype, factor, mirrored=False):
    """(D + D.T) / 2 with a zero diagonal, times ``factor``, as a new C-contiguous ``dtype`` array.

    Built in row blocks in float64; exactly symmetric, since D_ij + D_ji == D_ji + D_ij. A
    ``mirrored`` D (exactly symmetric, zero diagonal: a computed distance matrix) is that already,
    so its rows are only scaled, without reading its transpose: the same numbers, in half the time.
    """
    rows_of = _scaled_rows if mirrored else _symmetrised_rows
    out = np.empty(D.shape, dtype=dtype)
    for start, stop in row_blocks(*D.shape):
        out[start:stop] = rows_of(D, start, stop, factor)
    return out


def _scaled_rows(D, start, stop, factor):
    block = np.asarray(D[start:stop], dtype=np.float64)
    return block * factor if factor != 1.0 else block


def _symmetrised_rows(D, start, stop, factor):
    block = np.array(D[start:stop], dtype=np.float64)
    block += D[:, start:stop].T
    block *= 0.5
    rows = np.arange(stop - start)
    block[rows, rows + start] = 0.0
    if factor != 1.0:
        block *= factor
    return block


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
    X0 = np.asarray(X0, dtype=np.float64)
    if not np.all(np.isfinite(X0)):
        raise ValueError("X0 must be finite; it contains NaN or inf")
    return X0


def _rescaling(scale, dtype):
    """The power of two the problem is run at (see the module docstring); refuse what cannot be."""
    limit = SCALE_LIMITS[dtype.name]
    if scale != 0.0 and not 1.0 / limit <= scale <= limit:
        raise ValueError(
            f"D and X0 must be rescaled: their scale (largest entry) {scale:.3g} is outside what "
            f"gradi can solve in {dtype.name}, [{1.0 / limit:.3g}, {limit:.3g}] (the positions and "
            f"the stress, ~scale^4, must be representable); multiply D and X0 by a constant c, "
            f"solve, and divide the positions by c"
            + (", or use float64" if dtype.name == "float32" and scale <= SCALE_LIMITS["float64"] else ""))
    if scale == 0.0 or KEPT_SCALES[0] <= scale <= KEPT_SCALES[1]:
        return 1.0
    return 2.0 ** -math.frexp(scale)[1]


def _check_start_can_move(X0, largest, dtype):
    """Refuse a start whose rows are all equal (its gradient is exactly 0); warn on a flat one."""
    n, dim = X0.shape
    if np.all(X0 == X0[0]):
        if largest > 0:
            raise ValueError(f"X0's rows are all identical (in {dtype.name}): every difference "
                             f"X_i - X_j is 0, so the gradient is 0 and gradient descent cannot move "
                             f"them; give distinct start positions, or omit X0 for a random start")
        return
    centred = np.asarray(X0, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    rank = int(np.sum(singular > singular[0] * max(n, dim) * np.finfo(dtype).eps))
    if rank < min(dim, n - 1):
        warnings.warn(f"X0 spans only {rank} of its {dim} dimensions: gradient descent keeps the "
                      f"positions in the {rank}-dimensional affine subspace of the start (the "
                      f"gradient has no component out of it); give a start that spans {dim}",
                      DegenerateStartWarning, stacklevel=4)


def _check_lr(lr):
    if isinstance(lr, str):
        raise ValueError(f"lr must be 'auto' or a positive finite number, got {lr!r}")
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be 'auto' or a positive finite number, got {type(lr).__name__}")
    try:
        value = float(lr)
    except OverflowError:
        raise ValueError(f"lr must be 'auto' or a positive finite number, got {type(lr).__name__} "
                         f"value beyond the float range (1.8e308)") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"lr must be 'auto' or a positive finite number, got {lr}")
    return value


def _step(lr, factor, dtype):
    """The explicit step ``lr`` as run, lr / factor^2; refused unless a normal number of ``dtype``."""
    step, info = lr / factor**2, np.finfo(dtype)
    if float(info.tiny) <= step <= float(info.max):
        return step
    too = "small" if step < float(info.tiny) else "large"
    run = "" if factor == 1.0 else f" (it runs as {step:.3g} on the problem rescaled by {factor:g})"
    raise ValueError(f"lr={lr:.3g} is too {too} for {dtype.name}{run}: the steps would "
                     f"{'underflow to 0' if too == 'small' else 'overflow'}; use a "
                     f"{'larger' if too == 'small' else 'smaller'} lr, lr='auto'"
                     + (", or float64" if dtype.name == "float32" else ""))
