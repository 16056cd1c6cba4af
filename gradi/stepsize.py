"""``lr="auto"``: a step size derived from the problem, safe for plain gradient descent.

Gradient descent on a smooth function converges when lr < 2/L, L being the largest eigenvalue
of the Hessian along the path. For one pair term (|d|^2 - D^2)^2 as a function of d = X_i - X_j
the Hessian is 4(|d|^2 - D^2) I + 8 d d^T, whose norm is at most 12 max(|d|^2, D^2). Summed over
pairs (a graph Laplacian of these blocks), Gershgorin's theorem bounds L by
``24 max_i sum_j max(|d_ij|^2, D_ij^2)``. Taking |d_ij| from the start X0 makes the step shrink
when the start is much larger than the target, as it must; taking D covers a start smaller than
the target, which grows towards it. ``AUTO_SAFETY`` trades speed for margin: the bound is loose
by about the dimension factor, so the step stays below 2/L in practice.

The step scales as 1/scale^2 with the problem: gradi.validation computes it on the problem at a
representable scale (gradi.problem.Problem), where the bound is a normal float64 number.
"""

import numpy as np

from .group import ALONE
from .problem import row_blocks, squared_block, squared_distances

AUTO_SAFETY = 1.0


def auto_lr(D, X0, rows=None, group=ALONE):
    """Step size for distances D (N x N) and start X0 (N x dim); see the module docstring.

    Works in row blocks (O(N) memory beyond D and X0). Returns inf when the bound underflows
    float64 (a problem far below gradi's representable scales). With ``rows`` (start, stop), D
    may be a row source (gradi.rows): the bound is taken over those rows, then over ``group``.
    """
    X0 = np.asarray(X0, dtype=np.float64)
    start, stop = (0, len(X0)) if rows is None else rows
    row_bound = max((_row_bound(D, X0, first, last) for first, last in row_blocks(stop, len(X0), start)),
                    default=0.0)
    row_bound = float(group.max(row_bound))
    if row_bound == 0.0:
        return 1.0
    with np.errstate(divide="ignore", over="ignore"):
        return float(AUTO_SAFETY / (24.0 * np.float64(row_bound)))


def _row_bound(D, X0, start, stop):
    """max over rows i in [start, stop) of sum_j max(|x_i - x_j|^2, D_ij^2)."""
    bound = squared_distances(X0, start, stop)
    np.maximum(bound, squared_block(D, start, stop), out=bound)
    return float(bound.sum(axis=1).max())
