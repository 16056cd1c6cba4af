"""The problem, defined once: stress, its exact gradient, and distance matrices.

Stress is ``S(X) = sum_{i<j} (|X_i - X_j|^2 - D_ij^2)^2``, each unordered pair once. Its exact
gradient is ``g_i = 4 sum_j (|X_i - X_j|^2 - D_ij^2)(X_i - X_j)``. The original blog post summed
the loss over ordered pairs (twice this stress) while using this same gradient, so its reported
loss was 2S; gradi's S makes the gradient exact.

These NumPy functions are the reference every backend is checked against. Stress is accumulated
in float64 whatever the input dtype, so that it can be compared across dtypes and backends.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A validated problem, the same for every backend: no backend, thread count or recording.

    D (N x N) and X0 (N x dim) are C-contiguous arrays of the problem's dtype; ``lr`` is the step
    size (resolved when "auto"), ``niter`` the iterations asked for.
    """

    D: np.ndarray
    X0: np.ndarray
    lr: float
    niter: int

    @property
    def n(self):
        return self.D.shape[0]

    @property
    def dim(self):
        return self.X0.shape[1]

    @property
    def dtype(self):
        return self.D.dtype


@dataclass(frozen=True)
class ProblemSize:
    """What a backend's ``check`` looks at (N, dim, dtype): known before any array is built."""

    n: int
    dim: int
    dtype: np.dtype


def distance_matrix(points):
    """Euclidean distances between the rows of ``points`` (N x dim), as an N x N float64 array."""
    P = np.asarray(points, dtype=np.float64)
    if P.ndim == 1:
        P = P[:, None]
    P = P - P.mean(axis=0)  # distances ignore translation; centring avoids cancellation far out
    sq = np.sum(P * P, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (P @ P.T)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(np.maximum(d2, 0.0))


def residuals(X, D):
    """C_ij = |X_i - X_j|^2 - D_ij^2, computed pairwise (no cancellation-prone expansion)."""
    diff = X[:, None, :] - X[None, :, :]
    return np.einsum("ijk,ijk->ij", diff, diff) - D * D


def stress(X, D):
    """Stress of positions X (N x dim) against distances D (N x N), in float64."""
    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    C = residuals(X, D)
    return float(np.sum(np.triu(C, 1) ** 2))


def gradient(X, D):
    """Exact gradient of :func:`stress` with respect to X, in X's floating dtype."""
    X = np.asarray(X)
    dtype = X.dtype if X.dtype.kind == "f" else np.float64
    X = X.astype(dtype, copy=False)
    C = residuals(X, np.asarray(D, dtype=dtype))
    return 4.0 * (C.sum(axis=1)[:, None] * X - C @ X)
