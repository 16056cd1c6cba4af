"""Target shapes: the blog's circle and sphere, seeded random clouds, a spiral, a helix, text, CSV files.

Every shape returns an N x dim float64 array of points; ``gradi.distance_matrix`` turns it into
the measurements D that the drones would report.
"""

import os
import warnings

import numpy as np
from numpy.typing import ArrayLike

from . import io
from .problem import sum_of_squares


def _check_n(n, minimum=2, name="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n}")
    return int(n)


def circle(n: int) -> np.ndarray:
    """N points evenly spaced on the unit circle, as in the blog.

    Parameters
    ----------
    n : int
        Number of points, at least 2.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2.
    """
    n = _check_n(n)
    t = 2.0 * np.pi * np.arange(n) / n
    return np.column_stack([np.cos(t), np.sin(t)])


def sphere(n: int) -> np.ndarray:
    """N points on the unit sphere by the golden spiral, as in the blog.

    Parameters
    ----------
    n : int
        Number of points, at least 2.

    Returns
    -------
    numpy.ndarray, shape (n, 3), float64

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2.
    """
    n = _check_n(n)
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0 ** 0.5) * i
    return np.column_stack([np.cos(azimuth) * np.sin(polar),
                            np.sin(azimuth) * np.sin(polar),
                            np.cos(polar)])


def cube(n: int, dim: int = 3, seed: int = 42) -> np.ndarray:
    """N seeded uniform random points in the unit cube [0, 1]^dim.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    dim : int, default 3
        Dimension, at least 1.
    seed : int, default 42
        Seed of numpy's default generator: the same seed gives the same points.

    Returns
    -------
    numpy.ndarray, shape (n, dim), float64

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2, or dim not an integer >= 1.
    """
    n = _check_n(n)
    dim = _check_n(dim, minimum=1, name="dim")
    return np.random.default_rng(seed).random((n, dim))


def random_start(D: ArrayLike, dim: int, seed: int = 42) -> np.ndarray:
    """Seeded start positions: uniform in a cube whose side is the RMS of the distances D.

    Scaling by D keeps the start comparable in size to the target whatever units D uses.

    Parameters
    ----------
    D : array_like, shape (N, N)
        Distances (read in row blocks: no N x N temporary).
    dim : int
        Dimension of the positions.
    seed : int, default 42
        Seed of numpy's default generator.

    Returns
    -------
    numpy.ndarray, shape (N, dim), float64
        In [0, side]^dim with side = RMS(D), or 1 when D is all zero.
    """
    D = np.asarray(D)
    return cube_start(len(D), dim, np.sqrt(sum_of_squares(D, 0, len(D)) / D.size), seed)


def cube_start(n, dim, side, seed=42):
    """N seeded positions uniform in [0, side]^dim (side 1 when ``side`` is 0): random_start's
    start, for a caller that knows the RMS of the distances."""
    return np.random.default_rng(seed).random((n, dim)) * (float(side) or 1.0)


def spiral(n: int, turns: float = 3.0) -> np.ndarray:
    """N points along an Archimedean spiral of radius 1, roughly evenly spaced by arc length.

    The spiral's arc length grows like t^2, so t ~ sqrt(k) spaces the points about evenly.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    turns : float, default 3.0
        Turns of the spiral.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2.
    """
    n = _check_n(n)
    fraction = np.sqrt((np.arange(n) + 0.5) / n)
    t = 2.0 * np.pi * turns * fraction
    return np.column_stack([fraction * np.cos(t), fraction * np.sin(t)])


def helix(n: int, turns: float = 3.0, height: float = 2.0) -> np.ndarray:
    """N points evenly spaced along a helix of radius 1.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    turns : float, default 3.0
        Turns of the helix.
    height : float, default 2.0
        Its height along z, centred on 0.

    Returns
    -------
    numpy.ndarray, shape (n, 3), float64

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2.
    """
    n = _check_n(n)
    fraction = (np.arange(n) + 0.5) / n
    t = 2.0 * np.pi * turns * fraction
    return np.column_stack([np.cos(t), np.sin(t), height * (fraction - 0.5)])


def text(n: int, word: str = "gradi") -> np.ndarray:
    """N points evenly spaced along the outline of ``word`` rendered in a bold font.

    The glyph outlines come from matplotlib's TextPath (lines and Bezier curves); each piece is
    flattened into short segments and N points are placed at equal arc-length steps over the
    total outline, so every letter gets points in proportion to its outline's length.

    Parameters
    ----------
    n : int
        Number of points, at least 2.
    word : str, default "gradi"
        The text; at least one visible character.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64
        Centred on the origin, scaled to a width of 2.

    Raises
    ------
    TypeError, ValueError
        n is not an integer >= 2, or word is empty or draws nothing (only invisible characters).
    """
    n = _check_n(n)
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty string of visible characters, got {word!r}")
    starts, ends = _outline_segments(word)
    if not len(starts):
        raise ValueError(f"word must have at least one visible character, got {word!r}: its "
                         f"outline in the font is empty")
    lengths = np.linalg.norm(ends - starts, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    positions = (np.arange(n) + 0.5) * cumulative[-1] / n
    index = np.clip(np.searchsorted(cumulative, positions, side="right") - 1, 0, len(lengths) - 1)
    along = ((positions - cumulative[index]) / lengths[index])[:, None]
    points = starts[index] + along * (ends[index] - starts[index])
    points -= 0.5 * (points.max(axis=0) + points.min(axis=0))
    return points * (2.0 / np.ptp(points, axis=0).max())


def _outline_segments(word, steps=16):
    """Start and end points of short straight segments following the outline of ``word``;
    none when it draws nothing (e.g. only zero-width characters)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import text_to_path

    vertices, codes = text_to_path.get_text_path(FontProperties(family="DejaVu Sans", weight="bold"), word)
    t = np.linspace(0.0, 1.0, steps + 1)
    curves = Path(vertices, codes).iter_bezier() if len(codes) else ()  # Path fails on an empty outline
    pieces = [curve(t) for curve, _ in curves if curve.degree >= 1]
    if not pieces:
        return np.empty((0, 2)), np.empty((0, 2))
    starts = np.concatenate([piece[:-1] for piece in pieces])
    ends = np.concatenate([piece[1:] for piece in pieces])
    keep = np.linalg.norm(ends - starts, axis=1) > 0.0
    return starts[keep], ends[keep]


def load(path: str | os.PathLike, dtype: str | np.dtype = "float64") -> np.ndarray:
    """Points from a CSV file: one point per line, 2 or 3 numbers separated by commas.

    Blank lines and lines starting with ``#`` are ignored.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    dtype : {"float32", "float64"}, default "float64"
        The dtype the points will be solved in: squared distances it cannot hold (they would
        underflow to 0 or overflow, e.g. coordinates of about 1e-30 in float32) are refused.

    Returns
    -------
    numpy.ndarray, shape (N, 2) or (N, 3), float64

    Raises
    ------
    ValueError
        The file cannot be read or is malformed (named: the file, the line and the problem),
        has fewer than 2 points, all points the same, or a scale ``dtype`` cannot hold.

    Warns
    -----
    UserWarning
        Duplicated points, which the distances cannot tell apart.
    """
    points, numbers = io.read_csv(path, "shape file")
    if len(points) < 2:
        raise ValueError(f"{path}: a shape needs at least 2 points, found {len(points)}")
    if points.shape[1] not in (2, 3):
        raise ValueError(f"{path}, line {numbers[0]}: expected 2 or 3 comma-separated numbers "
                         f"(x,y or x,y,z), got {points.shape[1]} columns")
    _check_spread(path, points, np.dtype(dtype))
    _warn_duplicates(path, points, numbers)
    return points


def _check_spread(path, points, dtype):
    """Refuse points that are all the same, or too close or too far apart for ``dtype``."""
    if np.ptp(points, axis=0).max() == 0:
        raise ValueError(f"{path}: all {len(points)} points are the same point; their distances "
                         f"are all 0, so there is no shape to recover")
    scale = float(np.max(np.abs(points)))
    unit = points / scale  # works at unit scale: squares of the raw numbers may over- or underflow
    radius = scale * float(np.sqrt(np.max(np.sum((unit - unit.mean(axis=0)) ** 2, axis=1))))
    finfo = np.finfo(dtype)
    low, high = float(np.sqrt(finfo.tiny)), float(np.sqrt(finfo.max)) / 2  # squared distances <= (2r)^2
    if not low <= radius <= high:
        direction = "underflow to 0" if radius < low else "overflow"
        raise ValueError(f"{path}: the points lie within {radius:.3g} of their centre; in {dtype.name} "
                         f"their squared distances would {direction} (it holds radii from {low:.3g} "
                         f"to {high:.3g}); multiply the coordinates by a constant so that they span "
                         f"about 1")


def _warn_duplicates(path, points, numbers):
    _, first, counts = np.unique(points, axis=0, return_index=True, return_counts=True)
    repeated = first[counts > 1]
    if len(repeated):
        examples = ", ".join(f"line {numbers[i]}" for i in sorted(repeated)[:5])
        warnings.warn(f"{path}: {int(np.sum(counts[counts > 1] - 1))} duplicated point(s), first "
                      f"seen at {examples}; duplicates are at distance 0 and cannot be told apart",
                      stacklevel=2)


NAMED = {"circle": (circle, 2), "sphere": (sphere, 3), "cube": (cube, None), "spiral": (spiral, 2),
         "helix": (helix, 3), "text": (text, 2)}
"""Shapes by name: (function of N, its dimension, or None when it takes ``dim`` (default 3))."""


def named(name, n, dim=None):
    """N points of the shape ``name`` (a key of NAMED): in its own dimension, or in ``dim`` for a
    shape that takes one (cube; default 3)."""
    make, own = NAMED[name]
    if own is not None or dim is None:
        return make(n)
    return make(n, dim)
