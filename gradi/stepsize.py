"""``lr="auto"``: a step size derived from the problem, safe for plain gradient descent.

Gradient descent on a smooth function converges when lr < 2/L, L being the largest eigenvalue
of the Hessian along the path (negative curvature only pushes the positions out of a saddle).
For one pair term (|d|^2 - D^2)^2 as a function of d = X_i - X_j the Hessian is
4(|d|^2 - D^2) I + 8 d d^T, whose largest eigenvalue (along d) is 12|d|^2 - 4 D^2: at most
12 M - 4 D^2 while |d|^2 <= M = max(|d_0|^2, D^2), and never below 8 D^2. Summed over pairs (a
graph Laplacian of these blocks, each at most that eigenvalue times the pair's Laplacian),
Gershgorin's theorem bounds L by ``2 max_i sum_j (12 M_ij - 4 D_ij^2)``. Taking |d_0| from the
start X0 makes the step shrink when the start is much larger than the target, as it must;
taking D covers a start smaller than the target, which grows towards it. The step is
``AUTO_SAFETY / bound``: half the 2/L limit, for margin (the path may stretch a pair beyond M
on its way), and the bound itself is loose by about the dimension factor.

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
        return float(AUTO_SAFETY / (2.0 * np.float64(row_bound)))


def _row_bound(D, X0, start, stop):
    """max over rows i in [start, stop) of sum_j (12 max(|x_i - x_j|^2, D_ij^2) - 4 D_ij^2)."""
    spread = squared_distances(X0, start, stop)
    targets = squared_block(D, start, stop)
    target_sums = targets.sum(axis=1)
    np.maximum(spread, targets, out=spread)
    return float((12.0 * spread.sum(axis=1) - 4.0 * target_sums).max())
