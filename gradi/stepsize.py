"""``lr="auto"``: a step size derived from the problem, safe for plain gradient descent.

Gradient descent on a smooth function converges when lr < 2/L, L being the largest eigenvalue
of the Hessian along the path (negative curvature only pushes the positions out of a saddle).
For one pair term (|d|^2 - D^2)^2 as a function of d = X_i - X_j the Hessian is
4(|d|^2 - D^2) I + 8 d d^T, whose largest eigenvalue (along d) is 12|d|^2 - 4 D^2: at most
``W_ij = 12 M_ij - 4 D_ij^2`` while |d|^2 <= M_ij = max(|d_0|^2, D_ij^2), and never below
8 D^2, so W >= 0. Summed over pairs, the Hessian is at most the graph Laplacian of the weights
W (times the identity in each coordinate): L <= lambda_max(diag(W 1) - W).

That Laplacian's largest eigenvalue has an eigenvector orthogonal to the constant vector, and
on those vectors W acts as ``c (1 1^T - I) + E`` does, with E = W - c off the diagonal, for
any number c: so for every c, ``lambda_max <= c + max_i (sum_j W_ij + sum_{j != i} |W_ij - c|)``
(Gershgorin's theorem on diag(W 1) + c I - E). c = 0 is plain Gershgorin, ``2 max_i sum_j
W_ij``, twice the eigenvalue for a complete graph of equal weights; c near the mean weight is
exact there, and close on gradi's shapes (tests/test_divergence.py holds it within 1.5 times). c is
taken from means that cost O(N) given sum D^2: the mean of W would be 12 mean(M) - 4 mean(D^2),
and mean(M) >= max(mean |d_0|^2, mean D^2), which is used.

Taking |d_0| from the start X0 makes the step shrink when the start is much larger than the
target, as it must; taking D covers a start smaller than the target, which grows towards it. The
step is ``AUTO_SAFETY / bound``: half the 2/L limit, for margin (the path may stretch a pair
beyond M on its way).

The step scales as 1/scale^2 with the problem: gradi.validation computes it on the problem at a
representable scale (gradi.problem.Problem), where the bound is a normal float64 number.
"""

import numpy as np

from .group import ALONE
from .problem import row_blocks, squared_block, squared_distances, sum_of_squares

AUTO_SAFETY = 1.0


def auto_lr(D, X0, rows=None, group=ALONE, squares=None):
    """Step size for distances D (N x N) and start X0 (N x dim); see the module docstring.

    Works in row blocks (O(N) memory beyond D and X0), in X0's dtype (float64 for integers).
    Returns inf when the bound underflows float64 (a problem far below gradi's representable
    scales). With ``rows`` (start, stop), D may be a row source (gradi.rows): the bound is taken
    over those rows, then over ``group``.
    ``squares`` is sum D_ij^2 over the whole of D when the caller has it (validation does).
    """
    X0 = np.asarray(X0)
    X0 = X0.astype(np.result_type(X0, np.float32), copy=False)
    n = len(X0)
    start, stop = (0, n) if rows is None else rows
    if squares is None:
        squares = float(group.sum(sum_of_squares(D, start, stop)))
    shift = _mean_weight(X0, squares)
    row_bound = max((_row_bound(D, X0, shift, first, last) for first, last in row_blocks(stop, n, start)),
                    default=0.0)
    row_bound = float(group.max(row_bound))
    if row_bound == 0.0:
        return 1.0
    with np.errstate(divide="ignore", over="ignore"):
        return float(AUTO_SAFETY / (shift + np.float64(row_bound)))


def _mean_weight(X0, squares):
    """The c of the module docstring: 12 max(mean |d_0|^2, mean D^2) - 4 mean D^2 over pairs
    i != j, from sum_ij |x_i - x_j|^2 = 2 N sum_i |x_i - mean(x)|^2 and sum_ij D_ij^2."""
    n = len(X0)
    pairs = n * (n - 1)
    if pairs == 0:
        return 0.0
    X0 = np.asarray(X0, dtype=np.float64)
    spread = 2.0 * n * float(np.sum((X0 - X0.mean(axis=0)) ** 2)) / pairs
    target = squares / pairs
    return 12.0 * max(spread, target) - 4.0 * target


def _row_bound(D, X0, shift, start, stop):
    """max over rows i in [start, stop) of sum_j W_ij + sum_{j != i} |W_ij - shift|, in X0's
    dtype: float32 rounds the bound by about 1e-6 of it, far inside AUTO_SAFETY's margin, and
    takes half the time of float64."""
    weights = squared_distances(X0, start, stop)
    targets = squared_block(D, start, stop, dtype=X0.dtype)
    np.maximum(weights, targets, out=weights)
    weights *= 12.0
    targets *= 4.0
    weights -= targets  # W; its diagonal is 0 (d_ii = 0, D_ii = 0)
    degrees = weights.sum(axis=1)
    weights -= shift
    deviations = np.abs(weights, out=weights).sum(axis=1) - shift  # less the diagonal's |0 - c|, c >= 0
    return float((degrees + deviations).max())
