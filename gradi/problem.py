"""The problem, defined once: stress, its exact gradient, and distance matrices.

Stress is ``S(X) = sum_{i<j} (|X_i - X_j|^2 - D_ij^2)^2``, each unordered pair once. Its exact
gradient is ``g_i = 4 sum_j (|X_i - X_j|^2 - D_ij^2)(X_i - X_j)``. The original blog post summed
the loss over ordered pairs (twice this stress) while using this same gradient, so its reported
loss was 2S; gradi's S makes the gradient exact.

These NumPy functions are the reference every backend is checked against. Stress is accumulated
in float64 whatever the input dtype, so that it can be compared across dtypes and backends.
They work through the N x N matrices in blocks of rows (``row_blocks``), so their own memory is
O(N) beyond D itself: the memory guard (gradi.memory) can count on that.
"""

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .group import ALONE

BLOCK_BYTES = 1 << 20  # bytes of one float64 temporary of a row block (see row_blocks)
UPPER_PARTS = 4  # the stress's row blocks hold at most 1 / UPPER_PARTS of the points (rows_stress),
UPPER_MIN_ROWS = 64  # unless that is under this many rows: smaller blocks cost more calls than they save
BLOCK_TEMPORARIES = 2  # row-block temporaries alive at once in this module's functions


@dataclass(frozen=True)
class Problem:
    """A validated problem, the same for every backend: no backend, thread count or recording.

    D (N x N) and X0 (N x dim) are C-contiguous arrays of the problem's dtype; ``lr`` is the step
    size (``lr_auto`` when lr="auto" chose it), ``niter`` the iterations asked for. They are what
    the backends run: the caller's D and X0 times ``scale`` (a power of two, 1 unless the
    caller's scale would leave the dtype's normal range; see gradi.validation), and the step
    lr / scale^2. Gradient descent is exactly equivariant under such a scaling, so the caller's
    positions, stress and step are ``caller_positions``, ``caller_stress`` and ``caller_lr``.

    ``D`` may also be a row source (gradi.rows) of which this process reads only ``rows``
    (start, stop); what is computed from rows is combined over the run's processes by ``group``
    (gradi.group). A one-process solve owns every row, alone.
    """

    D: np.ndarray
    X0: np.ndarray
    lr: float
    niter: int
    scale: float = 1.0
    lr_auto: bool = False
    rows: tuple[int, int] | None = None
    group: object = ALONE

    @property
    def n(self):
        return self.D.shape[0]

    @property
    def dim(self):
        return self.X0.shape[1]

    @property
    def dtype(self):
        return self.X0.dtype

    @property
    def whole(self):
        """Whether D is held whole in this process (an array), rather than read from a row source."""
        return isinstance(self.D, np.ndarray)

    @property
    def own_rows(self):
        """(start, stop): the rows of D this process works on."""
        return (0, self.n) if self.rows is None else self.rows

    @property
    def caller_lr(self):
        """The step size in the caller's units (``lr`` is in the problem's)."""
        return self.lr * self.scale ** 2

    def caller_positions(self, X):
        """Positions X of this problem in the caller's units and dtype."""
        X = np.asarray(X)
        with np.errstate(over="ignore"):  # a position too large for the dtype becomes inf: divergence
            if self.scale != 1.0:
                X = X / self.scale
            return X.astype(self.dtype, copy=False)

    def caller_stress(self, X):
        """Stress of positions X of this problem, in the caller's units (a float64 number)."""
        partial = rows_stress(np.asarray(X, dtype=np.float64), self.D, *self.own_rows)
        return float(self.group.sum(partial)) / self.scale ** 4


@dataclass(frozen=True)
class ProblemSize:
    """What a backend's ``check`` looks at (N, dim, dtype, and whether this process holds D
    whole or reads it from a row source): known before any array is built."""

    n: int
    dim: int
    dtype: np.dtype
    whole: bool = True


def block_rows(n, columns):
    """Rows of a block of an n x ``columns`` matrix: at most ``BLOCK_BYTES`` of float64, one row at least."""
    return min(n, max(1, BLOCK_BYTES // (8 * max(columns, 1))))


def row_blocks(n, columns, start=0, most=None):
    """``(first, last)`` bounds of the row blocks of rows [start, n) of an n x ``columns`` matrix
    (see block_rows), at most ``most`` (>= 1) rows each when given.

    A computation that keeps a few float64 temporaries of one block at a time needs
    O(``columns``) memory, not O(n^2). Each block is handled by a function of its own, so that
    no temporary of one block is still referenced while the next is computed.
    """
    rows = block_rows(n, columns) if most is None else min(block_rows(n, columns), most)
    return [(first, min(first + rows, n)) for first in range(start, n, rows)]


def sum_of_squares(D, start, stop):
    """Sum of the squared entries of rows [start, stop) of the N x N D, in float64, by row blocks."""
    return sum(_sum_of_squares(D[first:last]) for first, last in row_blocks(stop, D.shape[1], start))


def _sum_of_squares(rows):
    block = np.array(rows, dtype=np.float64)
    np.square(block, out=block)
    return float(block.sum())


def distance_matrix(points: ArrayLike, dtype: str | np.dtype = "float64") -> np.ndarray:
    """Euclidean distances between points: the measurements D that the points would report.

    Parameters
    ----------
    points : array_like, shape (N, dim) or (N,)
        One point per row (a 1-D array is N points on a line).
    dtype : {"float64", "float32"}, default "float64"
        The dtype of the result: a solve in float32 gets its D without a float64 N x N copy.

    Returns
    -------
    numpy.ndarray, shape (N, N)
        ``D[i, j] = |points[i] - points[j]|``: exactly symmetric, zero diagonal, non-negative.

    Notes
    -----
    Each distance is computed in float64 from coordinate differences (no cancellation-prone
    ``|a|^2 + |b|^2 - 2 a.b``, whatever the distance from the origin), a row block at a time
    (``row_blocks``), and only then rounded to ``dtype``: beyond the result it needs O(N)
    memory, never an N x N temporary.
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim == 1:
        P = P[:, None]
    D = np.empty((len(P), len(P)), dtype=dtype)
    for start, stop in row_blocks(len(P), len(P)):
        D[start:stop] = _distance_rows(P, start, stop)
    return D


def _distance_rows(P, start, stop):
    block = squared_distances(P, start, stop)
    return np.sqrt(block, out=block)


def squared_distances(X, start, stop, columns_from=0, columns_to=None):
    """``|X_i - X_j|^2`` for rows i in [start, stop) and columns j in [columns_from, columns_to).

    Computed from coordinate differences (no cancellation-prone expansion), one coordinate at a
    time into the result and one work block, so none of N x N x dim is needed.
    """
    rows, others = X[start:stop], X[columns_from:columns_to]
    total = np.empty((stop - start, len(others)), dtype=X.dtype)
    diff = np.empty_like(total) if X.shape[1] > 1 else None
    for k in range(X.shape[1]):
        square = total if k == 0 else diff
        # contiguous coordinates: numpy's fast loops, where strided columns take its slow ones
        np.subtract(np.ascontiguousarray(rows[:, k])[:, None], np.ascontiguousarray(others[:, k]), out=square)
        square *= square
        if k > 0:
            total += diff
    return total


def squared_block(D, start, stop, columns_from=0, dtype=np.float64):
    """``D_ij^2`` for rows i in [start, stop) and columns j >= ``columns_from``, as a new array."""
    block = np.array(D[start:stop, columns_from:], dtype=dtype)
    block *= block
    return block


def residuals(X, D, start, stop, columns_from=0):
    """Rows [start, stop) of C_ij = |X_i - X_j|^2 - D_ij^2, columns j >= ``columns_from``."""
    C = squared_distances(X, start, stop, columns_from)
    C -= squared_block(D, start, stop, columns_from, X.dtype)
    return C


def stress(X: ArrayLike, D: ArrayLike) -> float:
    """Stress of positions X against distances D: ``sum_{i<j} (|X_i - X_j|^2 - D_ij^2)^2``.

    Parameters
    ----------
    X : array_like, shape (N, dim)
        Positions.
    D : array_like, shape (N, N)
        Distances; only the upper triangle (i < j) is read.

    Returns
    -------
    float
        The stress, computed and accumulated in float64 whatever the inputs' dtype (so that it
        compares across dtypes and backends). It is inf or nan when the positions are.

    Notes
    -----
    Works in row blocks: beyond X and D it needs O(N) memory, never an N x N temporary.
    """
    return rows_stress(np.asarray(X, dtype=np.float64), np.asarray(D), 0, len(X))


def rows_stress(X, D, start, stop):
    """The stress of the pairs i < j with i in [start, stop): float64 X, D an array or row source.

    A row block computes its columns from its first row on and masks the pairs j <= i of its own
    square, so blocks of at most 1 / UPPER_PARTS of the points keep that wasted work to
    1 / UPPER_PARTS of the pairs (one block of every row would compute each pair twice).
    """
    blocks = row_blocks(stop, len(X), start, most=max(UPPER_MIN_ROWS, -(-len(X) // UPPER_PARTS)))
    with np.errstate(over="ignore", invalid="ignore"):
        return float(sum(_upper_stress(X, D, first, last) for first, last in blocks))


def _upper_stress(X, D, start, stop):
    """The stress of the pairs i < j with i in [start, stop)."""
    C = residuals(X, D, start, stop, columns_from=start)  # column k is j = start + k
    rows = stop - start
    np.square(C, out=C)
    return float(C[:, rows:].sum()) + float(C[:, :rows].sum(where=_above_diagonal(rows)))


@functools.lru_cache(maxsize=2)
def _above_diagonal(rows):
    """The mask of j > i in a rows x rows block (at most a row block's size: BLOCK_BYTES / 8
    bytes), kept for the next block and the next call: building it costs as much as the sum."""
    mask = np.triu(np.ones((rows, rows), dtype=bool), 1)
    mask.flags.writeable = False
    return mask


def gradient(X: ArrayLike, D: ArrayLike) -> np.ndarray:
    """Exact gradient of :func:`stress` with respect to X.

    Parameters
    ----------
    X : array_like, shape (N, dim)
        Positions; a floating dtype is kept, any other is computed in float64.
    D : array_like, shape (N, N)
        Distances, symmetric.

    Returns
    -------
    numpy.ndarray, shape (N, dim)
        ``g_i = 4 sum_j (|X_i - X_j|^2 - D_ij^2)(X_i - X_j)``, in X's floating dtype.

    Notes
    -----
    Works in row blocks, with O(N) memory beyond X and D.
    """
    X = np.asarray(X)
    dtype = X.dtype if X.dtype.kind == "f" else np.float64
    X = X.astype(dtype, copy=False)
    D = np.asarray(D)
    grad = np.empty_like(X)
    for start, stop in row_blocks(len(X), len(X)):
        grad[start:stop] = _gradient_rows(X, D, start, stop)
    return grad


def _gradient_rows(X, D, start, stop):
    C = residuals(X, D, start, stop)
    return 4.0 * (C.sum(axis=1)[:, None] * X[start:stop] - C @ X)
