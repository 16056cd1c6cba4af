"""When to stop: a solve with ``tol`` stops once the stress has stopped improving.

The criterion is the relative decrease of the stress over a check interval of ``check_every``
iterations: stop when ``(S_before - S_now) / S_before < tol``, or when the stress is exactly 0.
It needs no target (a user with measured distances has none), is invariant to the scale of the
problem, and is checked on the positions every backend returns between two calls — the same
for every backend, and a whole number of intervals so the stop is deterministic. A stress that
rises is not taken as converged: a run whose step is too large keeps going until it diverges
(DivergenceError) or reaches ``niter``.

The check evaluates the stress in float64 with the centred Gram expansion in row blocks — about
ten times cheaper than the pairwise reference (``gradi.problem.stress``) and O(N x block) in
memory. Its rounding (about eps x scale^2 per pair) only matters once the stress has reached
that floor, where it stops improving anyway.
"""

import numpy as np

DEFAULT_CHECK_EVERY = 10
BLOCK_ROWS = 512


class StressGauge:
    """Stress of positions X against the D of one problem, computed for the stopping test."""

    def __init__(self, D):
        self.D = D

    def __call__(self, X):
        X = np.asarray(X, dtype=np.float64)
        Xc = X - X.mean(axis=0)
        sq = np.einsum("ij,ij->i", Xc, Xc)
        total = 0.0
        for start in range(0, len(X), BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            D_rows = np.asarray(self.D[rows], dtype=np.float64)
            C = Xc[rows] @ Xc.T
            C *= -2.0
            C += sq[rows, None]
            C += sq[None, :]
            C -= D_rows * D_rows
            total += float(np.einsum("ij,ij->", C, C))
        return 0.5 * total  # every unordered pair was counted twice; C_ii is rounding only


def converged(before, now, tol):
    """True when the stress went from ``before`` to ``now`` with a relative decrease below ``tol``."""
    if now == 0.0:
        return True
    return now <= before and (before - now) < tol * before
