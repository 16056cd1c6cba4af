"""``lr="auto"``: a step size derived from the problem, safe for plain gradient descent.

Gradient descent on a smooth function converges when lr < 2/L, L being the largest eigenvalue
of the Hessian along the path. For one pair term (|d|^2 - D^2)^2 as a function of d = X_i - X_j
the Hessian is 4(|d|^2 - D^2) I + 8 d d^T, whose norm is at most 12 max(|d|^2, D^2). Summed over
pairs (a graph Laplacian of these blocks), Gershgorin's theorem bounds L by
``24 max_i sum_j max(|d_ij|^2, D_ij^2)``. Taking |d_ij| from the start X0 makes the step shrink
when the start is much larger than the target, as it must; taking D covers a start smaller than
the target, which grows towards it. ``AUTO_SAFETY`` trades speed for margin: the bound is loose
by about the dimension factor, so the step stays below 2/L in practice.
"""

import numpy as np

from .problem import distance_matrix

AUTO_SAFETY = 1.0


def auto_lr(D, X0):
    """Step size for distances D (N x N) and start X0 (N x dim); see the module docstring."""
    D = np.asarray(D, dtype=np.float64)
    start_sq = distance_matrix(X0) ** 2
    row_bound = np.maximum(start_sq, D * D).sum(axis=1).max()
    if row_bound == 0.0:
        return 1.0
    return float(AUTO_SAFETY / (24.0 * row_bound))
