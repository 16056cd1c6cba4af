"""Shape error up to rotation, reflection, translation and scale (Procrustes alignment).

Distances determine positions only up to a rigid motion and a reflection, so recovered points
are compared with the target after the best such alignment (``scipy.spatial.procrustes``, which
also normalises scale; a disparity of 0 means the same shape).
"""

import numpy as np


def _procrustes(target, X):
    from scipy.spatial import procrustes  # imported here: 0.2 s that only solving commands need

    return procrustes(np.asarray(target, np.float64), np.asarray(X, np.float64))


def procrustes_disparity(target, X):
    """Sum of squared differences after aligning X onto target, both scaled to unit norm."""
    return float(_procrustes(target, X)[2])


def aligned(target, X):
    """(target, X) standardised and X rotated onto target, for plotting them together."""
    standard_target, standard_X, _ = _procrustes(target, X)
    return standard_target, standard_X
