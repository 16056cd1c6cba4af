"""A user's files: tables of numbers in (CSV), distance matrices in and positions out (CSV or .npy).

The format follows the extension: ``.csv`` is UTF-8 text (a byte-order mark, as spreadsheet
programs write, is skipped), one row per line, numbers separated by commas (blank lines and lines
starting with ``#`` are skipped); ``.npy`` is NumPy's binary format. The size of a matrix
(``matrix_size``) is known before any number is read — from the .npy header, or by counting a
CSV's rows — so a solve too large for the machine is refused first; the numbers are then read a
row block at a time into the dtype the solve works in. An input must be a regular file: it is
read more than once, which a FIFO or a device cannot give. Every refusal is a ValueError naming
the file and, for CSV, the line and column. What distances must satisfy as a problem (finite, non-negative,
symmetric, zero diagonal) is checked by gradi.validation, as for any D.
"""

import csv
import json
import math
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from .problem import BLOCK_BYTES, block_rows, row_blocks

FORMATS = (".csv", ".npy")
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)
NPY_START = np.lib.format.MAGIC_PREFIX


def matrix_format(path, what):
    """The format (".csv" or ".npy") of ``path`` from its extension; ValueError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{what} {path} must end in .csv or .npy, got "
                         f"{repr(suffix) if suffix else 'no extension'}")
    return suffix


def read_csv(path, what="file"):
    """(values, line numbers): the numbers of a CSV file as a float64 rows x columns array.

    Every row must have the same number of columns and every cell must be a finite number that
    float64 holds without underflow (a non-zero cell may not read as 0 or lose precision).
    """
    blocks = list(_csv_blocks(path, what))
    if not blocks:
        return np.empty((0, 0)), []
    return (np.concatenate([values for _, values in blocks]),
            [number for numbers, _ in blocks for number in numbers])


def _csv_blocks(path, what):
    """(line numbers, float64 values) of a CSV file's rows, a block at a time.

    A block holds at most a ``gradi.problem.block_rows`` of the first row's width and about
    ``BLOCK_BYTES`` of text, so a large file is read with O(row) memory beyond what the caller
    keeps of each block.
    """
    kept, text, first, rows = [], 0, None, 1
    with _open_input(path, what) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if first is None:  # the block's rows: any bound will do, as the text budget stops it too
                    first = (number, line)
                    rows = block_rows(BLOCK_BYTES, len(_cells(line)))
                kept.append((number, line))
                text += len(line)
                if len(kept) >= rows or text >= BLOCK_BYTES:
                    yield _parsed(path, kept, first)
                    kept, text = [], 0
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {what} {path}: {_reason(exc)}") from None
    if kept:
        yield _parsed(path, kept, first)


def _parsed(path, kept, first):
    """(line numbers, values) of the CSV lines ``kept``, which must be as wide as ``first``."""
    try:
        values = np.loadtxt([line for _, line in kept], delimiter=",", ndmin=2, dtype=np.float64,
                            quotechar='"', comments=None)
    except ValueError:
        raise _malformed(path, kept, first) from None
    if values.shape[1] != len(_cells(first[1])):
        raise _malformed(path, kept, first)
    _check_cells(path, kept, values)
    return [number for number, _ in kept], values


def _cells(line):
    return next(csv.reader([line]))


def _malformed(path, kept, first):
    """The ValueError that says where CSV lines that NumPy could not read go wrong."""
    first_number, first_line = first
    width = len(_cells(first_line))
    for number, line in kept:
        cells = _cells(line)
        if len(cells) != width:
            return ValueError(f"{path}, line {number}: {len(cells)} columns, but line {first_number} "
                              f"has {width}; every row needs the same number of columns")
        for column, cell in enumerate(cells, start=1):
            try:
                float(cell)
            except ValueError:
                return ValueError(f"{path}, line {number}, column {column}: {cell.strip()!r} "
                                  f"is not a number")
    return ValueError(f"{path}: not a comma-separated table of numbers")


def _check_cells(path, kept, values):
    """Refuse cells that are not finite, or that underflow float64 (read as 0 or subnormal)."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        cell = _cells(kept[row][1])[column].strip()
        raise ValueError(f"{path}, line {kept[row][0]}, column {column + 1}: {cell!r} is not finite")
    suspicious = np.abs(values) < SMALLEST_NORMAL  # read as 0 (from "0" or an underflow) or subnormal
    for row in np.flatnonzero(suspicious.any(axis=1)):
        cells = _cells(kept[row][1])
        for column in np.flatnonzero(suspicious[row]):
            cell = cells[column].strip()
            if _underflowed(values[row, column], cell):
                raise ValueError(f"{path}, line {kept[row][0]}, column {column + 1}: {cell!r} "
                                 f"underflows float64 (smallest normal {SMALLEST_NORMAL:.3g}); "
                                 f"rescale the file's numbers")


def _underflowed(value, cell):
    """Whether a cell below float64's smallest normal lost its value: subnormal, or 0 read from non-zero text."""
    mantissa = cell.lower().partition("e")[0]
    return value != 0 or any(digit in mantissa for digit in "123456789")


def csv_shape(path, what="file"):
    """(rows, columns of the first row) of a CSV file, counted without parsing any number.

    Lets a caller refuse a problem too large for the machine from the file's size alone.
    """
    rows, columns = 0, 0
    with _open_input(path, what) as handle:
        try:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    rows += 1
                    columns = columns or len(_cells(line.rstrip("\r\n")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {what} {path}: {_reason(exc)}") from None
    return rows, columns


def _open_input(path, what, binary=False):
    """``path`` opened for reading (text: UTF-8, a byte-order mark skipped), refused unless it
    is a regular file.

    gradi reads an input more than once (its size first, then its numbers), which a FIFO or a
    device cannot give; it is opened without blocking (a FIFO with no writer would wait for
    one) and refused with a ValueError naming it.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {_reason(exc)}") from None
    kind = _special_kind(os.fstat(descriptor).st_mode)
    if kind is not None:
        os.close(descriptor)
        raise ValueError(f"cannot read {what} {path}: it is {kind}, not a regular file"
                         + ("" if kind == "a folder" else "; gradi reads its input more than once, "
                            "so save it to a file first"))
    os.set_blocking(descriptor, True)
    if binary:
        return open(descriptor, "rb")
    return open(descriptor, encoding="utf-8-sig", newline="")


def _special_kind(mode):
    """What a file that is not a regular file is (a FIFO, a device...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def matrix_size(path):
    """N of the N x N matrix in ``path``, from the .npy header or a CSV's count of rows and of
    the first row's columns (both checked square).

    Lets a caller refuse a problem too large for the machine before reading any number; the
    numbers are checked by ``read_distances``.
    """
    if matrix_format(path, "distance file") == ".npy":
        return _open_npy(path).shape[0]
    return _csv_matrix_shape(path)[0]


def _csv_matrix_shape(path):
    """(N, N) of a CSV distance file, counted; ValueError if it is empty or not square."""
    rows, columns = csv_shape(path, "distance file")
    if not rows:
        raise ValueError(f"{path}: no distances in the file (only blank or # lines)")
    _check_square(path, (rows, columns))
    return rows, columns


def _open_npy(path):
    """The matrix of a .npy file, memory-mapped read-only: only its header is read here."""
    with _open_input(path, "distance file", binary=True) as handle:
        try:
            is_npy = handle.read(len(NPY_START)) == NPY_START
        except OSError as exc:
            raise ValueError(f"cannot read distance file {path}: {_reason(exc)}") from None
    if not is_npy:
        raise ValueError(f"{path} is not a NumPy .npy file (it does not start with NumPy's header)")
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as exc:
        raise ValueError(f"cannot read distance file {path}: {_reason(exc)}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable .npy array: {exc}") from None
    if matrix.dtype.kind not in "iuf":
        raise ValueError(f"{path} holds {matrix.dtype} values; distances must be real numbers "
                         f"(int or float)")
    _check_square(path, matrix.shape)
    return matrix


def _check_square(path, shape):
    if len(shape) != 2:
        raise ValueError(f"{path} is not a matrix: it holds an array of shape {shape}; distances "
                         f"are an N x N matrix")
    if shape[0] != shape[1]:
        raise ValueError(f"{path} is not square: {shape[0]} rows x {shape[1]} columns; distances "
                         f"are an N x N matrix")
    if shape[0] < 2:
        raise ValueError(f"{path}: distances between at least 2 points are needed, got N={shape[0]}")


def read_distances(path, dtype=None):
    """The N x N distance matrix in ``path``.

    Without ``dtype``: a .npy file memory-mapped read-only as stored (only its header is read
    here), a CSV file in float64. With ``dtype``: a new array of that dtype, read and converted
    a row block at a time (``gradi.problem.row_blocks``), so that a float32 solve of a float64
    file or of a CSV never holds a float64 N x N copy; a distance ``dtype`` cannot hold (beyond
    float32's range) is refused, naming the file.
    """
    if matrix_format(path, "distance file") == ".npy":
        matrix = _open_npy(path)
        return matrix if dtype is None else _converted_npy(path, matrix, np.dtype(dtype))
    rows, _ = _csv_matrix_shape(path)
    D, start = np.empty((rows, rows), dtype=np.float64 if dtype is None else dtype), 0
    for _, values in _csv_blocks(path, "distance file"):
        if start + len(values) > rows:
            raise ValueError(f"{path} changed while it was read; read it again")
        _store(path, D[start:start + len(values)], values)
        start += len(values)
        del values  # not held while the next block is parsed
    return D


def _converted_npy(path, matrix, dtype):
    """The memory-mapped .npy ``matrix`` read into a new ``dtype`` array, a row block at a time.

    Read by plain file reads, not through the map: pages the map had read would stay in this
    process's resident memory, a second N x N.
    """
    n = matrix.shape[0]
    D = np.empty((n, n), dtype=dtype)
    transposed = not matrix.flags.c_contiguous  # Fortran order: the file's rows are D's columns
    with _open_input(path, "distance file", binary=True) as handle:
        for start, stop in row_blocks(n, n):
            _store(path, D[:, start:stop].T if transposed else D[start:stop],
                   _stored_rows(path, handle, matrix, start, stop))
    return D


def _stored_rows(path, handle, matrix, start, stop):
    """Rows start..stop of the .npy file as stored (``matrix`` is its memory map, for the layout)."""
    n = matrix.shape[1]
    handle.seek(matrix.offset + start * n * matrix.dtype.itemsize)
    block = np.fromfile(handle, matrix.dtype, (stop - start) * n)
    if block.size != (stop - start) * n:
        raise ValueError(f"{path} changed while it was read; read it again")
    return block.reshape(stop - start, n)


def _store(path, rows, values):
    """Copy ``values`` into ``rows`` of the matrix being read, refusing numbers its dtype cannot hold."""
    with np.errstate(over="ignore"):
        rows[...] = values
    if rows.dtype.itemsize < 8 and np.isinf(rows).any() and np.isfinite(values).all():
        raise ValueError(f"{path}: distances up to {float(np.max(values)):.3g} do not fit in "
                         f"{rows.dtype.name} (largest {float(np.finfo(rows.dtype).max):.3g}); solve "
                         f"in float64, or rescale the distances")


def same_file_key(path):
    """What identifies the file ``path`` names: its device and inode when it exists (a hard link
    or a symbolic link is the same file), else its resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("file", info.st_dev, info.st_ino)


def check_writable(path, what):
    """Refuse (ValueError) an output path that cannot be written, before any work is done: a
    folder, a missing folder, a place where files cannot be created (read-only, /proc), or an
    existing file that cannot be opened for writing. Nothing is created or changed."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {what} {path}: its folder {path.parent} does not exist")
    try:
        if path.exists():  # non-blocking: opening a FIFO without a reader fails rather than waits
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
        else:
            tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as exc:
        raise ValueError(f"cannot write {what} {path}: {_reason(exc)}") from None


def write_positions(path, X):
    """Write positions (N x dim) as CSV (every digit needed to read them back exactly) or .npy."""
    X = np.asarray(X)
    if matrix_format(path, "positions file") == ".npy":
        with open(path, "wb") as handle:
            np.save(handle, X, allow_pickle=False)
    else:
        digits = 9 if X.dtype == np.float32 else 17  # round-trip precision of the dtype
        np.savetxt(path, X, delimiter=",", fmt=f"%.{digits}g")


def write_json(path, document):
    """Write ``document`` as indented JSON (non-finite floats become null)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_finite_or_none(document), handle, indent=2)
        handle.write("\n")


def _finite_or_none(value):
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _reason(exc):
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
