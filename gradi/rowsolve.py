"""``solve_rows``: a ``jax-sharded`` solve in which no process ever holds D whole.

``gradi.solve`` validates and keeps the whole N x N matrix; past one machine's memory that is
the very thing that cannot be done. Here D comes from a row source — ``PointRows`` computes rows
of the distance matrix of a shape's points, ``MatrixRows`` reads rows of a memory-mapped ``.npy``
— and each process reads only the rows it owns (its devices' rows), a block at a time:

- validation (finite, non-negative, zero diagonal, symmetric) of its rows; every process learns
  the others' verdicts, so all refuse together with the same exception type;
- the start X0, the power-of-two rescaling of out-of-range scales and ``lr="auto"`` follow
  gradi.validation and gradi.stepsize, from per-row maxima and sums the processes exchange;
- the backend's row blocks of D^2 (gradi.backends.jax_sharded reads them from the source);
- the stress (final, recorded, and the ``tol`` test), in float64, summed over each process's rows.

Every process runs the same chunks of iterations (lengths agreed from the slowest process's
pace), so their collectives stay in step, and gets the same Result; writing it is process 0's
job (the command line does that). Positions agree with gradi.solve within the dtype's tolerance,
not bitwise: sums over rows are added in another order, and a ``.npy`` matrix is used as stored
(checked symmetric to 1e-6) where gradi.solve averages it with its transpose.
"""

import mmap
import time
from pathlib import Path

import numpy as np

from . import backends, distributed, io
from .backends.base import MAX_NITER
from .backends.jax_sharded import layout
from .convergence import collapsed_stress, converged, stress_bound
from .errors import BackendUnavailableError, DivergenceError
from .problem import Problem, ProblemSize, block_rows, residuals, squared_distances
from .solver import Result, check_tolerance, first_failure, next_chunk, write_history
from .stepsize import AUTO_SAFETY
from .validation import (
    SYMMETRY_RTOL,
    _check_dtype,
    _check_lr,
    _check_start,
    _check_start_can_move,
    _numeric_array,
    _rescaling,
    _step,
    check_int,
    resolve_threads,
)

BACKEND = "jax-sharded"


class PointRows:
    """Rows of the distance matrix of ``points`` (N x dim), computed when asked, never all at once.

    Computed as gradi.distance_matrix does (centred points, Gram expansion, zero diagonal), so
    they are valid distances by construction; ``factor`` (a power of two, set by ``solve_rows``
    for scales outside float32's comfortable range) multiplies every row, exactly.
    """

    def __init__(self, points, dtype="float32"):
        P = np.asarray(points, dtype=np.float64)
        if P.ndim != 2 or P.shape[0] < 2 or not np.all(np.isfinite(P)):
            raise ValueError(f"points must be a finite N x dim array with N >= 2, got shape {P.shape}")
        self.points = P - P.mean(axis=0)
        self.squares = np.sum(self.points * self.points, axis=1)
        self.shape = (P.shape[0], P.shape[0])
        self.dtype = _check_dtype(dtype)
        self.factor = 1.0

    def rows(self, start, stop, dtype=None):
        """Rows start..stop of D times ``factor``, in ``dtype`` (default the source's)."""
        d2 = self.squares[start:stop, None] + self.squares[None, :] - 2.0 * (self.points[start:stop] @ self.points.T)
        d2[np.arange(stop - start), np.arange(start, stop)] = 0.0
        return _scaled(np.sqrt(np.maximum(d2, 0.0)), self.factor, dtype or self.dtype)

    def refusal(self, start, stop, tolerance):
        """Distances between points are valid by construction: nothing to refuse."""
        return None

    def __getitem__(self, index):
        return _read(self, index)


class MatrixRows:
    """Rows of a square matrix in a ``.npy`` file, memory-mapped: reading rows touches only theirs.

    The file is checked as gradi.io reads any distance file, then mapped here (not by
    ``np.load``) so that the pages a block has read can be let go of right after
    (``madvise(MADV_DONTNEED)``): they stay in the page cache but no longer count in this
    process's resident memory, which stays its share of D^2 plus small buffers although
    validation reads a strip of every other row. Rows read with a zero diagonal (validation
    allows it up to its tolerance) and times ``factor``, as PointRows.
    """

    def __init__(self, path, dtype="float32"):
        self.path = Path(path)
        if io.matrix_format(path, "distance file") != ".npy":
            raise ValueError(f"{path}: jax-sharded reads distances from a .npy file (memory-mapped, "
                             f"so no process loads it whole); convert it with numpy.save")
        io.read_distances(path)  # the header: a real, square matrix, with io's messages
        self.matrix, self.map = _map_npy(self.path)
        self.shape = self.matrix.shape
        self.dtype = _check_dtype(dtype)
        self.factor = 1.0

    def rows(self, start, stop, dtype=None):
        """Rows start..stop of D times ``factor``, in ``dtype`` (default the source's)."""
        block = np.array(self.matrix[start:stop], dtype=np.float64)
        self._let_go()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        return _scaled(block, self.factor, dtype or self.dtype)

    def refusal(self, start, stop, tolerance):
        """Why rows start..stop are not distances (as gradi.validation words it), or None."""
        for first, last in _blocks(start, stop, self.shape[0]):
            block = np.array(self.matrix[first:last], dtype=np.float64)
            self._let_go()
            if not np.all(np.isfinite(block)):
                return f"{self.path}: D must be finite; rows {first}..{last - 1} contain NaN or inf"
            if block.min() < 0:
                return f"{self.path}: D must be non-negative distances; it has the entry {block.min()}"
            diagonal = float(np.max(np.abs(block[np.arange(last - first), np.arange(first, last)])))
            if diagonal > tolerance:
                return (f"{self.path}: D must have a zero diagonal (a point is at distance 0 from "
                        f"itself); |D_ii| reaches {diagonal:.3g}")
            for column, end in _blocks(0, self.shape[0], self.shape[0]):  # whole rows get mapped
                asymmetry = float(np.max(np.abs(block[:, column:end] - self.matrix[column:end, first:last].T)))
                self._let_go()
                if asymmetry > tolerance:
                    return (f"{self.path}: D must be symmetric: |D - D.T| reaches {asymmetry:.3g}, "
                            f"allowed up to {tolerance:.3g} (1e-6 of max(D, 1))")
        return None

    def __getitem__(self, index):
        return _read(self, index)

    def _let_go(self):
        if hasattr(mmap, "MADV_DONTNEED"):
            self.map.madvise(mmap.MADV_DONTNEED)


def _map_npy(path):
    """(array viewing the mapped file, the mapping) of a checked .npy file (format 1.0 or 2.0)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"{path}: .npy format version {version} is not supported; save it again "
                             f"with numpy.save")
        shape, fortran_order, dtype = readers[version](handle)
        offset = handle.tell()
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    order = "F" if fortran_order else "C"
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset, order=order), mapping


def solve_rows(source, dim, *, lr="auto", niter=1000, threads=None, X0=None, seed=42,
               record_every=None, tol=None, check_every=None):
    """Recover N positions from a row source of D with ``jax-sharded``, in every process of a run.

    Arguments as gradi.solve (``source`` is a PointRows or MatrixRows, its dtype the solve's;
    ``threads`` is devices per process). Every process of a multi-process run calls it with the
    same arguments and gets the same Result. Raises ValueError/TypeError for bad input (in every
    process together) and DivergenceError if the positions or the stress become non-finite.
    """
    backend = backends.get(BACKEND)
    threads = resolve_threads(backend, threads)
    if record_every is not None:
        record_every = check_int("record_every", record_every, minimum=1)
    tol, check_every = check_tolerance(tol, check_every)
    problem = row_problem(source, dim, lr=lr, niter=niter, threads=threads, X0=X0, seed=seed)
    start, stop = own_rows(problem.n, threads, problem.dtype)
    started = time.perf_counter()
    with backend.prepare(problem, threads) as state:
        result = Result(X=problem.X0, stress=float("nan"), elapsed=0.0, backend=BACKEND,
                        lr=problem.caller_lr, niter=problem.niter, threads=threads,
                        dtype=problem.dtype.name, prepare_seconds=time.perf_counter() - started)
        X = problem.X0.copy()
        stress_of = _StressOf(problem, start, stop)
        recorded = [(0, X.copy())] if record_every else []
        bound = stress_bound(tol, _agreed_collapsed(source, start, stop), X.dtype) if tol is not None else None
        last_stress = None
        done, pace = 0, None
        while done < problem.niter:
            length = next_chunk(done, problem.niter, (record_every, check_every), pace)
            checking = tol is not None and (done + length) % check_every == 0
            start_X = X.copy()
            began = time.perf_counter()
            with np.errstate(all="ignore"):
                if checking:
                    X, now = backend.descend(state, X, length, stress=True)
                else:
                    X = backend.descend(state, X, length)
            seconds = time.perf_counter() - began
            result.elapsed += seconds
            pace = float(np.max(distributed.gather(seconds / length)))  # the slowest process sets it
            if not np.all(np.isfinite(X)):
                _diverged(backend, state, start_X, done, done + length, stress_of)
            done += length
            if record_every and (done % record_every == 0 or done == problem.niter):
                recorded.append((done, X.copy()))
            if checking:
                if converged(last_stress, now, tol, bound):
                    result.stop_reason = "converged"
                    break
                last_stress = now
        result.iterations = done
        write_history(result, recorded, problem, stress_of)
        result.X = problem.caller_positions(X)
        result.stress = stress_of(X)
        if not (np.isfinite(result.stress) and np.all(np.isfinite(result.X))):
            _diverged(backend, state, problem.X0, 0, done, stress_of)
    return result


def row_problem(source, dim, *, lr="auto", niter=1000, threads=1, X0=None, seed=42):
    """The validated Problem of ``solve_rows`` (its D is ``source``), as gradi.validation builds
    one from a whole D: checks, power-of-two rescaling, seeded start, step size."""
    backend = backends.get(BACKEND)
    n, dtype = source.shape[0], source.dtype
    dim = check_int("dim", dim, minimum=1)
    niter = check_int("niter", niter, minimum=0, maximum=MAX_NITER)
    auto = isinstance(lr, str) and lr == "auto"
    lr = None if auto else _check_lr(lr)
    seed = check_int("seed", seed, minimum=0) if X0 is None else None
    reason = backend.check(ProblemSize(n, dim, dtype), threads, rows_only=True)
    if reason is not None:
        raise (BackendUnavailableError if not backend.available else ValueError)(reason)
    start, stop = own_rows(n, threads, dtype)
    source.factor = 1.0  # the statistics are of D as given
    largest, square_sum = _agreed_statistics(source, start, stop)
    _agree_on(source.refusal(start, stop, SYMMETRY_RTOL * max(largest, 1.0)))
    if X0 is not None:
        X0 = _check_start(_numeric_array("X0", X0), n, dim)
    scale = (largest or 1.0) if X0 is None else max(largest, float(np.max(np.abs(X0))))
    source.factor = _rescaling(scale, dtype)
    if X0 is None:  # gradi.shapes.random_start: a cube of side the RMS of the (rescaled) distances
        side = float(np.sqrt(square_sum * source.factor**2 / n**2)) or 1.0
        X0 = np.random.default_rng(seed).random((n, dim)) * side
    else:
        X0 = X0 * source.factor
    X0 = np.array(X0, dtype=dtype, order="C")
    _check_start_can_move(X0, largest, dtype)
    lr = _auto_lr(source, X0, start, stop) if auto else _step(lr, source.factor, dtype)
    return Problem(D=source, X0=X0, lr=lr, niter=niter, scale=source.factor, lr_auto=auto)


def own_rows(n, threads, dtype):
    """Rows start..stop this process owns: those of its devices in the backend's layout."""
    shape = layout(n, threads * distributed.process_count(), np.dtype(dtype).itemsize)
    per_process = threads * shape.rows
    start = min(n, distributed.process_index() * per_process)
    return start, min(n, start + per_process)


class _StressOf:
    """Stress of positions in the problem's units, in the caller's units (as
    gradi.problem.stress, pairwise, each pair once), from this process's rows, summed."""

    def __init__(self, problem, start, stop):
        self.problem, self.start, self.stop = problem, start, stop

    def __call__(self, X):
        X = np.asarray(X, dtype=np.float64)
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for first, last in _blocks(self.start, self.stop, X.shape[0]):
                upper = np.triu(residuals(X, self.problem.D, first, last, columns_from=first), 1)
                total += float(np.einsum("ij,ij->", upper, upper))
        return float(np.sum(distributed.gather(total))) / self.problem.scale**4


def _agreed_statistics(source, start, stop):
    """(largest distance, sum of squared distances) over all rows, from every process's rows."""
    largest, square_sum = 0.0, 0.0
    for first, last in _blocks(start, stop, source.shape[0]):
        block = np.asarray(source.rows(first, last), dtype=np.float64)
        largest = max(largest, float(np.max(block)))
        square_sum += float(np.einsum("ij,ij->", block, block))
    values = distributed.gather([largest, square_sum])
    return float(np.max(values[:, 0])), float(np.sum(values[:, 1]))


def _agreed_collapsed(source, start, stop):
    """gradi.convergence's Q of the problem's D, from every process's rows."""
    share = sum(collapsed_stress(source.rows(first, last)) for first, last in _blocks(start, stop, source.shape[0]))
    return float(np.sum(distributed.gather(share)))


def _agree_on(refusal):
    """Raise this process's refusal, or another process's notice, in every process alike."""
    refused = distributed.gather(refusal is not None)
    if refusal is not None:
        raise ValueError(refusal)
    if np.any(refused):
        raise ValueError(f"process {int(np.argmax(refused))} refused its rows of D (see its message)")


def _auto_lr(source, X0, start, stop):
    """gradi.stepsize.auto_lr's step, its bound taken over this process's rows, then over all."""
    X0 = np.asarray(X0, dtype=np.float64)
    bound = 0.0
    for first, last in _blocks(start, stop, len(X0)):
        block = squared_distances(X0, first, last)
        D = np.asarray(source.rows(first, last), dtype=np.float64)
        np.maximum(block, D * D, out=block)
        bound = max(bound, float(block.sum(axis=1).max()))
    bound = float(np.max(distributed.gather(bound)))
    if bound == 0.0:
        return 1.0
    with np.errstate(divide="ignore", over="ignore"):
        return float(AUTO_SAFETY / (24.0 * np.float64(bound)))


def _diverged(backend, state, start_X, start, nonfinite_at, stress_of):
    """Raise DivergenceError at the first iteration whose positions or stress are non-finite.

    gradi.solve's search (doubling, then bisecting, replaying the backend from the last finite
    positions); every process takes the same steps, as their positions agree.
    """
    problem = state.problem

    def nonfinite(X):
        if not np.all(np.isfinite(problem.caller_positions(X))):
            return "positions"
        return None if np.isfinite(stress_of(X)) else "stress"

    if nonfinite(start_X) is not None:
        start_X, start = problem.X0, 0

    def after(iterations):
        with np.errstate(all="ignore"):
            X = backend.descend(state, start_X.copy(), iterations - start) if iterations > start else start_X
        return nonfinite(X)

    high = first_failure(after, start, nonfinite_at)
    raise DivergenceError(high, problem.caller_lr, BACKEND, after(high) or "positions", auto=problem.lr_auto)


def _scaled(block, factor, dtype):
    if factor != 1.0:
        block *= factor
    return block.astype(dtype, copy=False)


def _blocks(start, stop, columns):
    """(first, last) row ranges covering start..stop, each a gradi.problem row block of ``columns``."""
    size = block_rows(max(stop, 1), columns)
    return [(first, min(first + size, stop)) for first in range(start, stop, size)]


def _read(source, index):
    """``source[rows]`` or ``source[rows, columns]`` with slices: what backends and
    gradi.problem.residuals ask of a D."""
    rows, columns = index if isinstance(index, tuple) else (index, slice(None))
    if not isinstance(rows, slice) or not isinstance(columns, slice):
        raise TypeError(f"a row source is read by slices, got {index!r}")
    start, stop, step = rows.indices(source.shape[0])
    if step != 1:
        raise ValueError("a row source is read by contiguous row slices")
    return source.rows(start, max(start, stop))[:, columns]
