"""When to stop: the one place that says what ``tol`` means.

A solve with ``tol`` checks every ``check_every`` iterations the stress S that the backend
reports for the positions its last step started from (``Backend.descend(..., stress=True)``: the
kernel's own C_ij = |X_i - X_j|^2 - D_ij^2 squared, summed per row or tile, those sums added in
float64, so the check costs one multiply-add per pair once per interval, and no pass of its own
over D). It stops at the first check where either rule holds:

1. **Relative decrease**: ``S_before - S_now < tol * S_before``. Measured distances carry noise,
   so the stress levels off above 0; once an interval takes off less than ``tol`` of it, the
   positions are within about ``tol`` of the stress they can reach.
2. **Normalised stress**: ``S_now <= max((tol / EXACT_MARGIN)**2, floor) * Q``, where
   ``Q = sum_{i<j} D_ij^4`` is the stress of every point at one place (X = 0). ``sqrt(S / Q)``
   is the relative RMS error of the squared distances the positions reproduce, so this rule
   says the distances are matched to a relative ``tol / EXACT_MARGIN``, which puts the positions
   within a relative ``tol`` of the shape: Procrustes disparity at most ``tol**2`` (measured on
   circle, spiral and text shapes of 300 and 1000 points: at most 0.16 ``tol**2`` at ``tol``
   1e-4; matched only to ``tol``, the text shapes stopped at 14 ``tol**2``, their soft modes
   moving the positions far more than the residuals show). Exact distances need this rule:
   their stress falls geometrically towards 0, so rule 1's relative decrease stays constant and
   may never drop below ``tol``.
   ``floor`` is what the working dtype can resolve (``RESOLUTION_ULPS`` units in the last place
   of 1, squared): a ``tol`` finer than the dtype stops where rounding leaves the stress, instead
   of running to ``niter``.

A stress that rose since the last check (or is not finite) is never taken as converged: a run
whose step is too large keeps going until it diverges (DivergenceError) or reaches ``niter``. The
first check has no previous stress, so only rule 2 can stop it. Both rules compare ratios of
stresses, so they do not depend on the problem's scale; they see only numbers the run computes
deterministically, at whole intervals, so a run stops at the same iteration every time and on
every chunking, and its positions are those of the same iterations without ``tol``.
"""

import numpy as np

from .problem import row_blocks

# Each check ends a backend call, whose fixed cost a longer interval spreads thinner; a run stops
# at most this many iterations after the rule first holds.
DEFAULT_CHECK_EVERY = 20
EXACT_MARGIN = 10  # rule 2 matches the squared distances to tol / EXACT_MARGIN (see above)
# The smallest normalised stress (S / Q) a dtype resolves, in units in the last place of 1: the
# squared distances the kernels compute are rounded to a few ulps of D^2, and their residuals
# to a few more, so S / Q cannot settle much below (this many ulps)^2.
RESOLUTION_ULPS = 64


def collapsed_stress(D, start=0, stop=None):
    """``sum_j D_ij^4 / 2`` over rows i in [start, stop): for every row of a distance matrix D,
    ``Q = sum_{i<j} D_ij^4``, the stress of every point at one place; for some of its rows (a
    process's, D possibly a row source), their share of Q. Each row's sum in D's dtype (as the
    kernels sum the stress), the rows' in float64: Q only scales a bound, and this is one pass
    over D instead of a float64 copy of it.

    Read in row blocks, so beyond D this needs O(N) memory.
    """
    total = 0.0
    for first, last in row_blocks(D.shape[0] if stop is None else stop, D.shape[1], start):
        squares = np.asarray(D[first:last])
        squares = squares * squares
        # not BLAS: no thread pool to wake
        total += float(np.einsum("ij,ij->i", squares, squares).sum(dtype=np.float64))
    return total / 2


def stress_bound(tol, collapsed, dtype):
    """The stress at or below which rule 2 stops: ``max((tol / EXACT_MARGIN)**2,
    floor(dtype)) * Q``, with Q (``collapsed``) from ``collapsed_stress``."""
    floor = (RESOLUTION_ULPS * np.finfo(dtype).eps) ** 2
    return max((tol / EXACT_MARGIN) ** 2, floor) * collapsed


def converged(before, now, tol, bound=0.0):
    """True when the stress ``now`` (``before`` at the previous check, None at the first)
    meets either rule of the module docstring: ``bound`` is rule 2's (see stress_bound)."""
    if before is not None and not now <= before:
        return False
    return now <= bound or (before is not None and before - now < tol * before)
