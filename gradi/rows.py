"""Row sources: a distance matrix D that is never whole in one place.

``gradi.solve`` takes D as an array, or as a row source when D would not fit in one process (a
multi-process ``jax-sharded`` run): each process then reads only the rows it owns, a block at a
time. ``PointRows`` computes blocks of the distance matrix of a shape's points; ``MatrixRows``
reads blocks of a memory-mapped ``.npy``. Both answer ``D[rows, columns]`` with slices (what
gradi.validation, gradi.problem and the backends ask of a D) in float64 (the solve's dtype is
gradi.solve's argument, as for an array D), times ``factor``: the
power of two gradi.validation sets when the problem runs rescaled (1 while it checks D as given),
with a zero diagonal once validation has checked the diagonal (``zero_diagonal``), as gradi.solve
zeroes it in an array D.
"""

import mmap
import os
import weakref
from pathlib import Path

import numpy as np

from . import io
from .problem import squared_distances


class RowSource:
    """D (N x N) read by blocks: subclasses implement ``block``; ``symmetric`` when exact by
    construction (validation then skips the symmetry check)."""

    symmetric = False

    def __init__(self, n):
        self.shape = (n, n)
        self.factor = 1.0
        self.zero_diagonal = False

    def block(self, first, last, left, right):
        """D[first:last, left:right] as given, in float64 (a new array)."""
        raise NotImplementedError

    def __getitem__(self, index):
        rows, columns = index if isinstance(index, tuple) else (index, slice(None))
        if not isinstance(rows, slice) or not isinstance(columns, slice):
            raise TypeError(f"a row source is read by slices, got {index!r}")
        (first, last, row_step), (left, right, column_step) = (rows.indices(self.shape[0]),
                                                                columns.indices(self.shape[1]))
        if row_step != 1 or column_step != 1:
            raise ValueError("a row source is read by contiguous slices")
        block = self.block(first, max(first, last), left, max(left, right))
        if self.zero_diagonal:
            _zero_diagonal(block, first, left)
        if self.factor != 1.0:
            block *= self.factor
        return block


class PointRows(RowSource):
    """The distance matrix of ``points`` (N x dim), computed by blocks, never all at once.

    Computed as gradi.distance_matrix does (coordinate differences in float64), so it is valid
    distances by construction: exactly symmetric, with an exactly zero diagonal.
    """

    symmetric = True

    def __init__(self, points):
        P = np.asarray(points, dtype=np.float64)
        if P.ndim != 2 or P.shape[0] < 2 or not np.all(np.isfinite(P)):
            raise ValueError(f"points must be a finite N x dim array with N >= 2, got shape {P.shape}")
        super().__init__(P.shape[0])
        self.points = P

    def block(self, first, last, left, right):
        d2 = squared_distances(self.points, first, last, left, right)
        return np.sqrt(d2, out=d2)


class MatrixRows(RowSource):
    """A square matrix in a ``.npy`` file, read by blocks: reading a block reads only its rows.

    Blocks of rows (what a solve reads during a run, and a process's own rows) are read with
    ``preadv`` into memory the block owns, so a file truncated or rewritten meanwhile is an
    error naming the file (a short read, or a changed size or modification time), never the
    SIGBUS that reading a mapping past the file's new end gives. Strips of columns across every
    row (validation compares rows with columns) come from a memory mapping, checked unchanged
    before each read; the pages read are let go of right after (``madvise(MADV_DONTNEED)``):
    they stay in the page cache but no longer count in this process's resident memory, which
    stays its share of D plus small buffers although validation reads a strip of every row.
    Fortran-ordered files, whose rows are not contiguous, are read from the mapping only.
    """

    def __init__(self, path):
        self.path = Path(path)
        if io.matrix_format(path, "distance file") != ".npy":
            raise ValueError(f"{path}: jax-sharded reads distances from a .npy file (memory-mapped, "
                             f"so no process loads it whole); convert it with numpy.save")
        io.read_distances(path)  # the header: a real, square matrix, with io's messages
        self.matrix, self.map, self.offset, self.fd = _map_npy(self.path)
        weakref.finalize(self, os.close, self.fd)
        self.stamp = _stamp(self.fd)
        super().__init__(self.matrix.shape[0])

    def block(self, first, last, left, right):
        self._check_unchanged()
        n = self.shape[0]
        if self.matrix.flags.c_contiguous and (last - first < n or right - left == n):
            return np.array(self._rows(first, last)[:, left:right], dtype=np.float64)
        block = np.array(self.matrix[first:last, left:right], dtype=np.float64)
        if hasattr(mmap, "MADV_DONTNEED"):
            self.map.madvise(mmap.MADV_DONTNEED)
        return block

    def _rows(self, first, last):
        """Rows [first, last) as stored, read from the file into a new array."""
        rows = np.empty((last - first, self.shape[1]), dtype=self.matrix.dtype)
        buffer = memoryview(rows).cast("B")
        start, done = self.offset + first * self.shape[1] * rows.itemsize, 0
        while done < len(buffer):
            count = os.preadv(self.fd, [buffer[done:]], start + done)
            if count == 0:
                self._changed()
            done += count
        self._check_unchanged()
        return rows

    def _check_unchanged(self):
        if _stamp(self.fd) != self.stamp:
            self._changed()

    def _changed(self):
        raise ValueError(f"{self.path} changed while gradi was reading it (its size or modification "
                         f"time is not what it was when the run opened it): a run reads its distance "
                         f"file until it ends; leave it unchanged meanwhile, or give the run a copy")


def _stamp(fd):
    """(size, modification time) of an open file: what a change of its content changes."""
    status = os.fstat(fd)
    return status.st_size, status.st_mtime_ns


def _zero_diagonal(block, first, left):
    """Set the entries of ``block`` (rows from ``first``, columns from ``left``) where i == j to 0."""
    rows, columns = block.shape
    start, stop = max(first, left), min(first + rows, left + columns)
    if start < stop:
        index = np.arange(start, stop)
        block[index - first, index - left] = 0.0


def _map_npy(path):
    """(array viewing the mapped file, the mapping, the data's offset, a file descriptor held
    open on it) of a checked .npy file (format 1.0 or 2.0)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"{path}: .npy format version {version} is not supported; save it again "
                             f"with numpy.save")
        shape, fortran_order, dtype = readers[version](handle)
        offset = handle.tell()
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        fd = os.dup(handle.fileno())
    order = "F" if fortran_order else "C"
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset, order=order), mapping, offset, fd
