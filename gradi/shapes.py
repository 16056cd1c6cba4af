"""Target shapes: the blog's circle and sphere, seeded random clouds, and more.

Every shape returns an N x dim float64 array of points; ``gradi.distance_matrix`` turns it into
the measurements D that the drones would report.
"""

import numpy as np


def _check_n(n, minimum=2):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer number of points, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"n must be at least {minimum} points, got {n}")
    return int(n)


def circle(n):
    """N points evenly spaced on the unit circle (dim 2), as in the blog."""
    n = _check_n(n)
    t = 2.0 * np.pi * np.arange(n) / n
    return np.column_stack([np.cos(t), np.sin(t)])


def sphere(n):
    """N points on the unit sphere (dim 3) by the golden spiral, as in the blog."""
    n = _check_n(n)
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0 ** 0.5) * i
    return np.column_stack([np.cos(azimuth) * np.sin(polar),
                            np.sin(azimuth) * np.sin(polar),
                            np.cos(polar)])


def cube(n, dim=3, seed=42):
    """N seeded uniform random points in the unit cube [0, 1]^dim."""
    n = _check_n(n)
    return np.random.default_rng(seed).random((n, dim))


def random_start(D, dim, seed=42):
    """Seeded start positions: uniform in a cube whose side is the RMS of the distances D.

    Scaling by D keeps the start comparable in size to the target whatever units D uses.
    """
    D = np.asarray(D, dtype=np.float64)
    side = float(np.sqrt(np.mean(D * D))) or 1.0
    return np.random.default_rng(seed).random((D.shape[0], dim)) * side
