"""A user's files: tables of numbers in (CSV), distance matrices in and positions out (CSV or .npy).

The format follows the extension: ``.csv`` is text, one row per line, numbers separated by commas
(blank lines and lines starting with ``#`` are skipped); ``.npy`` is NumPy's binary format, read
memory-mapped so that its size is known (``matrix_size``) before any of it is read, and a solve
too large for the machine is refused first. Every refusal is a ValueError naming the file and,
for CSV, the line and column. What distances must satisfy as a problem (finite, non-negative,
symmetric, zero diagonal) is checked by gradi.validation, as for any D.
"""

import csv
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

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
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} {path}: {_reason(exc)}") from None
    kept = [(number, line) for number, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    numbers = [number for number, _ in kept]
    if not kept:
        return np.empty((0, 0)), numbers
    try:
        values = np.loadtxt([line for _, line in kept], delimiter=",", ndmin=2, dtype=np.float64,
                            quotechar='"', comments=None)
    except ValueError:
        raise _malformed(path, kept) from None
    _check_cells(path, kept, values)
    return values, numbers


def _cells(line):
    return next(csv.reader([line]))


def _malformed(path, kept):
    """The ValueError that says where a CSV file that NumPy could not read goes wrong."""
    first_number, first_line = kept[0]
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
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    rows += 1
                    columns = columns or len(_cells(line.rstrip("\r\n")))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} {path}: {_reason(exc)}") from None
    return rows, columns


def matrix_size(path):
    """N of the N x N matrix in ``path``, from the .npy header or the CSV's first row.

    Lets a caller refuse a problem too large for the machine before reading the file; the rest
    of the file is checked (square, numbers) by ``read_distances``.
    """
    if matrix_format(path, "distance file") == ".npy":
        return _open_npy(path).shape[0]
    rows, columns = csv_shape(path, "distance file")
    if not rows:
        raise ValueError(f"{path}: no distances in the file (only blank or # lines)")
    return columns


def _open_npy(path):
    """The matrix of a .npy file, memory-mapped read-only: only its header is read here."""
    try:
        with open(path, "rb") as handle:
            is_npy = handle.read(len(NPY_START)) == NPY_START
        matrix = np.load(path, mmap_mode="r", allow_pickle=False) if is_npy else None
    except OSError as exc:
        raise ValueError(f"cannot read distance file {path}: {_reason(exc)}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable .npy array: {exc}") from None
    if not isinstance(matrix, np.ndarray):
        raise ValueError(f"{path} is not a NumPy .npy file (it does not start with NumPy's header)")
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


def read_distances(path):
    """The N x N distance matrix in ``path`` (.csv, or .npy memory-mapped read-only)."""
    if matrix_format(path, "distance file") == ".npy":
        return _open_npy(path)
    values, _ = read_csv(path, "distance file")
    if values.size == 0:
        raise ValueError(f"{path}: no distances in the file (only blank or # lines)")
    _check_square(path, values.shape)
    return values


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
