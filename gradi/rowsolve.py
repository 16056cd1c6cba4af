"""``solve_rows``: a ``jax-sharded`` solve in which no process ever holds D whole.

``gradi.solve`` validates and keeps the whole N x N matrix; past one machine's memory that is
the very thing that cannot be done. Here D comes from a row source — ``PointRows`` computes rows
of the distance matrix of a shape's points, ``MatrixRows`` reads rows of a memory-mapped ``.npy``
— and each process reads only the rows it owns (its devices' rows), a chunk at a time:

- validation (finite, non-negative, zero diagonal, symmetric) of its rows, then every process
  learns the others' verdicts, so all refuse together with the same exception type;
- the start X0, ``lr="auto"`` and the scale check use the same rules as gradi.solve (random
  start scaled by the RMS distance, gradi.stepsize's bound, validation's overflow limit),
  computed from per-row sums and maxima that the processes exchange;
- the backend's row blocks of D^2 (gradi.backends.jax_sharded reads them from the source);
- the final and recorded stress, in float64, summed over each process's rows.

Every process runs the same chunks of iterations (lengths agreed from the slowest process's
pace), so their collectives stay in step. The result is the same in every process; writing it
is process 0's job (the command line does that). Positions agree with gradi.solve within the
dtype's tolerance, not bitwise: per-row sums are added in another order.
"""

import mmap
import time
from pathlib import Path

import numpy as np

from . import backends, distributed
from .backends.jax_sharded import layout
from .errors import BackendUnavailableError, DivergenceError
from .problem import Problem, ProblemSize
from .solver import CHUNK_SECONDS, Result
from .stepsize import AUTO_SAFETY
from .validation import SYMMETRY_RTOL, _check_dtype, _check_lr, check_int, resolve_threads

BACKEND = "jax-sharded"
CHUNK_BYTES = 16 * 2**20  # the most float64 bytes one chunk of rows works on while scanning D


class PointRows:
    """Rows of the distance matrix of ``points`` (N x dim), computed when asked, never all at once.

    Computed as gradi.distance_matrix does (centred points, Gram expansion, zero diagonal), so
    the rows are valid distances by construction.
    """

    def __init__(self, points, dtype="float32"):
        P = np.asarray(points, dtype=np.float64)
        if P.ndim != 2 or P.shape[0] < 2 or not np.all(np.isfinite(P)):
            raise ValueError(f"points must be a finite N x dim array with N >= 2, got shape {P.shape}")
        self.points = P - P.mean(axis=0)
        self.squares = np.sum(self.points * self.points, axis=1)
        self.shape = (P.shape[0], P.shape[0])
        self.dtype = _check_dtype(dtype)

    def rows(self, start, stop, dtype=None):
        d2 = self.squares[start:stop, None] + self.squares[None, :] - 2.0 * (self.points[start:stop] @ self.points.T)
        d2[np.arange(stop - start), np.arange(start, stop)] = 0.0
        return np.sqrt(np.maximum(d2, 0.0)).astype(dtype or self.dtype, copy=False)

    def refusal(self, start, stop, tolerance):
        """Distances between points are valid by construction: nothing to refuse."""
        return None

    def __getitem__(self, index):
        return self.rows(*_bounds(index, self.shape[0]))


class MatrixRows:
    """Rows of a square matrix in a ``.npy`` file, memory-mapped: reading rows touches only theirs.

    The file is mapped here (not by ``np.load``) so that the pages a chunk has read can be let go
    of right after (``madvise(MADV_DONTNEED)``): they stay in the page cache, but no longer count
    in this process's resident memory, which then stays its share of D^2 plus small buffers even
    though validation reads a strip of every other row. The diagonal reads as zero (validation
    allows it to be up to its tolerance, and zeroes it).
    """

    def __init__(self, path, dtype="float32"):
        self.path = Path(path)
        if self.path.suffix.lower() != ".npy":
            raise ValueError(f"{path}: jax-sharded reads distances from a .npy file (memory-mapped, "
                             f"so no process loads it whole); convert with numpy.save")
        try:
            self.matrix, self.map = _map_npy(self.path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path} as a .npy array: {exc}") from None
        if self.matrix.ndim != 2 or self.matrix.shape[0] != self.matrix.shape[1] or self.matrix.shape[0] < 2:
            raise ValueError(f"{path}: D must be a square N x N matrix with N >= 2, got shape {self.matrix.shape}")
        if self.matrix.dtype.kind not in "iuf":
            raise ValueError(f"{path}: D must hold real numbers, got dtype {self.matrix.dtype}")
        self.shape = self.matrix.shape
        self.dtype = _check_dtype(dtype)

    def rows(self, start, stop, dtype=None):
        block = np.array(self.matrix[start:stop], dtype=dtype or self.dtype)
        self._let_go()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        return block

    def refusal(self, start, stop, tolerance):
        """Why rows start..stop are not distances (see gradi.validation), or None."""
        for first, last in _chunks(start, stop, self.shape[0]):
            block = np.array(self.matrix[first:last], dtype=np.float64)
            self._let_go()
            if not np.all(np.isfinite(block)):
                return f"{self.path}: D must be finite; rows {first}..{last - 1} contain NaN or inf"
            if np.any(block < 0):
                return f"{self.path}: D must be non-negative distances; its smallest entry is {block.min()}"
            diagonal = float(np.max(np.abs(block[np.arange(last - first), np.arange(first, last)])))
            if diagonal > tolerance:
                return f"{self.path}: D must have a zero diagonal; |D_ii| reaches {diagonal:.3g}"
            for column, end in _chunks(0, self.shape[0], self.shape[0]):  # whole rows get mapped
                asymmetry = float(np.max(np.abs(block[:, column:end] - self.matrix[column:end, first:last].T)))
                self._let_go()
                if asymmetry > tolerance:
                    return (f"{self.path}: D must be symmetric: |D - D.T| reaches {asymmetry:.3g}, "
                            f"allowed up to {tolerance:.3g}")
        return None

    def __getitem__(self, index):
        return self.rows(*_bounds(index, self.shape[0]))

    def _let_go(self):
        if hasattr(mmap, "MADV_DONTNEED"):
            self.map.madvise(mmap.MADV_DONTNEED)


def _map_npy(path):
    """(array viewing the mapped file, the mapping) for a .npy file of format 1.0 or 2.0."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran_order, dtype = readers[version](handle)
        offset = handle.tell()
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    needed = offset + int(np.prod(shape)) * dtype.itemsize
    if len(mapping) < needed:
        raise ValueError(f"the file is truncated ({len(mapping)} bytes, {needed} needed)")
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset, order="F" if fortran_order else "C"), mapping


def solve_rows(source, dim, *, lr="auto", niter=1000, threads=None, X0=None, seed=42, record_every=None):
    """Recover N positions from a row source of D with ``jax-sharded``, in every process of a run.

    Arguments as gradi.solve; ``source`` is a PointRows or MatrixRows (its dtype is the solve's).
    Every process of a multi-process run calls it with the same arguments and gets the same
    Result. Raises ValueError/TypeError for bad input (in every process together) and
    DivergenceError if the positions or the stress become non-finite.
    """
    backend = backends.get(BACKEND)
    threads = resolve_threads(backend, threads)  # devices per process
    n, dtype = source.shape[0], source.dtype
    dim = check_int("dim", dim, minimum=1)
    niter = check_int("niter", niter, minimum=0)
    if record_every is not None:
        record_every = check_int("record_every", record_every, minimum=1)
    reason = backend.check(ProblemSize(n, dim, dtype), threads, rows_only=True)
    if reason is not None:
        raise (BackendUnavailableError if not backend.available else ValueError)(reason)
    start, stop = own_rows(n, threads, dtype)

    largest, square_sum = _agreed_statistics(source, start, stop)
    _agree_on(source.refusal(start, stop, SYMMETRY_RTOL * max(largest, 1.0)))
    X0 = _start(X0, n, dim, square_sum, seed)
    _check_scale(largest, X0, dtype, n)
    lr = _auto_lr(source, X0, largest, start, stop) if isinstance(lr, str) and lr == "auto" else _check_lr(lr)
    problem = Problem(D=source, X0=np.array(X0, dtype=dtype, order="C"), lr=lr, niter=niter)

    started = time.perf_counter()
    with backend.prepare(problem, threads) as state:
        result = Result(X=problem.X0, stress=float("nan"), elapsed=0.0, backend=BACKEND, lr=lr,
                        niter=niter, threads=threads, dtype=dtype.name,
                        prepare_seconds=time.perf_counter() - started, iterations=niter)
        X = problem.X0.copy()
        stress_of = _StressOf(source, start, stop)
        if record_every:
            _record(result, X, stress_of, 0)
        done, pace = 0, None
        while done < niter:
            boundary = (done // record_every + 1) * record_every if record_every else niter
            length = min(boundary, niter) - done
            length = 1 if pace is None else min(length, max(1, int(CHUNK_SECONDS / max(pace, 1e-12))))
            start_X = X.copy()
            began = time.perf_counter()
            with np.errstate(all="ignore"):
                X = backend.descend(state, X, length)
            seconds = time.perf_counter() - began
            result.elapsed += seconds
            pace = float(np.max(distributed.gather(seconds / length)))  # the slowest process sets the pace
            if not np.all(np.isfinite(X)):
                _diverged(backend, state, start_X, done, done + length, stress_of)
            done += length
            if record_every and (done % record_every == 0 or done == niter):
                _record(result, X, stress_of, done)
        result.X = X
        result.stress = stress_of(X)
        if not np.isfinite(result.stress):
            _diverged(backend, state, problem.X0, 0, niter, stress_of)
    return result


def own_rows(n, threads, dtype):
    """Rows start..stop this process owns: those of its devices in the backend's layout."""
    shape = layout(n, threads * distributed.process_count(), np.dtype(dtype).itemsize)
    per_process = threads * shape.rows
    start = min(n, distributed.process_index() * per_process)
    return start, min(n, start + per_process)


class _StressOf:
    """Stress of X (float64, each pair once), from this process's rows, summed over processes."""

    def __init__(self, source, start, stop):
        self.source, self.start, self.stop = source, start, stop

    def __call__(self, X):
        X = np.asarray(X, dtype=np.float64)
        total = 0.0
        with np.errstate(all="ignore"):
            for first, last in _chunks(self.start, self.stop, 2 * X.shape[0]):
                D = self.source.rows(first, last, np.float64)
                C = -(D * D)
                for k in range(X.shape[1]):  # pairwise differences, as gradi.problem.residuals
                    diff = X[first:last, k, None] - X[None, :, k]
                    C += diff * diff
                C = np.triu(C, first + 1)
                total += float(np.einsum("ij,ij->", C, C))
        return float(np.sum(distributed.gather(total)))


def _agreed_statistics(source, start, stop):
    """(largest distance, sum of squared distances) over all rows, from every process's rows."""
    largest, square_sum = 0.0, 0.0
    for first, last in _chunks(start, stop, source.shape[0]):
        block = source.rows(first, last, np.float64)
        if block.size:
            largest = max(largest, float(np.max(block)))
            square_sum += float(np.einsum("ij,ij->", block, block))
    values = distributed.gather([largest, square_sum])
    return float(np.max(values[:, 0])), float(np.sum(values[:, 1]))


def _agree_on(refusal):
    """Raise this process's refusal, or another process's notice, in every process alike."""
    refused = distributed.gather(refusal is not None)
    if refusal is not None:
        raise ValueError(refusal)
    if np.any(refused):
        raise ValueError(f"process {int(np.argmax(refused))} refused its rows of D (see its message)")


def _start(X0, n, dim, square_sum, seed):
    """The given X0 (checked) or gradi's seeded start: uniform in a cube of side the RMS distance."""
    if X0 is not None:
        X0 = np.asarray(X0)
        if X0.shape != (n, dim) or X0.dtype.kind not in "iuf" or not np.all(np.isfinite(X0)):
            raise ValueError(f"X0 must be a finite real array of shape (N, dim) = ({n}, {dim}), "
                             f"got shape {X0.shape}")
        return X0.astype(np.float64)
    side = float(np.sqrt(square_sum / n**2)) or 1.0
    return np.random.default_rng(check_int("seed", seed, minimum=0)).random((n, dim)) * side


def _check_scale(largest, X0, dtype, n):
    """Refuse a scale whose gradient terms (~ N x scale^3) overflow the dtype, as validation does."""
    scale = max(largest, float(np.max(np.abs(X0))))
    limit = np.finfo(dtype).max ** (1 / 3) / (4 * n) ** (1 / 3)
    if scale > limit:
        raise ValueError(f"D and X0 must be rescaled: their scale {scale:.3g} makes the gradient "
                         f"overflow {dtype.name} (allowed up to {limit:.3g} for N={n}); "
                         f"divide D by a constant, or use float64")


def _auto_lr(source, X0, largest, start, stop):
    """gradi.stepsize's step, its bound taken over this process's rows, then over all processes."""
    P = X0 - X0.mean(axis=0)
    squares = np.sum(P * P, axis=1)
    bound = 0.0
    for first, last in _chunks(start, stop, source.shape[0]):
        start_sq = np.maximum(squares[first:last, None] + squares[None, :] - 2.0 * (P[first:last] @ P.T), 0.0)
        start_sq[np.arange(last - first), np.arange(first, last)] = 0.0
        D = source.rows(first, last, np.float64)
        bound = max(bound, float(np.max(np.maximum(start_sq, D * D).sum(axis=1))))
    bound = float(np.max(distributed.gather(bound)))
    return 1.0 if bound == 0.0 else float(AUTO_SAFETY / (24.0 * bound))


def _record(result, X, stress_of, iteration):
    result.history_iterations.append(iteration)
    result.history_stress.append(stress_of(X))
    result.history_X.append(X.copy())


def _diverged(backend, state, start_X, start, nonfinite_at, stress_of):
    """Raise DivergenceError at the first iteration whose positions or stress are non-finite.

    The same search as gradi.solve's (doubling, then bisecting, replaying the backend from the
    last finite positions); every process takes the same steps, as their positions agree.
    """
    def after(iterations):
        with np.errstate(all="ignore"):
            X = backend.descend(state, start_X.copy(), iterations - start) if iterations > start else start_X
        if not np.all(np.isfinite(X)):
            return "positions"
        return None if np.isfinite(stress_of(X)) else "stress"

    low, step = start, 1
    while low + step < nonfinite_at and after(low + step) is None:
        low, step = low + step, step * 2
    high = min(low + step, nonfinite_at)
    while high - low > 1:
        middle = (low + high) // 2
        if after(middle) is None:
            low = middle
        else:
            high = middle
    raise DivergenceError(high, state.problem.lr, BACKEND, after(high) or "positions")


def _chunks(start, stop, width):
    """(first, last) row ranges covering start..stop, each about CHUNK_BYTES of float64 x width."""
    size = max(1, CHUNK_BYTES // (8 * max(width, 1)))
    return [(first, min(first + size, stop)) for first in range(start, stop, size)]


def _bounds(index, n):
    if not isinstance(index, slice):
        raise TypeError(f"a row source is read by row slices, got {type(index).__name__}")
    start, stop, step = index.indices(n)
    if step != 1:
        raise ValueError("a row source is read by contiguous row slices")
    return start, max(start, stop)

