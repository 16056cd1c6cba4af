"""Shape error up to rotation, reflection, translation and scale (Procrustes alignment).

Distances determine positions only up to a rigid motion and a reflection, so recovered points
are compared with the target after the best such alignment (``scipy.spatial.procrustes``, which
also normalises scale; a disparity of 0 means the same shape). For drawing, ``onto`` moves the
points rigidly onto the target instead, keeping both at the target's scale.
"""

import numpy as np


def procrustes_disparity(target, X):
    """Sum of squared differences after aligning X onto target, both scaled to unit norm."""
    from scipy.spatial import procrustes  # imported here: 0.2 s that only solving commands need

    return float(procrustes(np.asarray(target, np.float64), np.asarray(X, np.float64))[2])


def onto(target, X):
    """X after the rotation or reflection and translation that best match it to target.

    Least squares (orthogonal Procrustes), without scaling: the result is in the target's
    coordinates and units, so a recovered shape of the wrong size shows as one.
    """
    T = np.asarray(target, np.float64)
    X = np.asarray(X, np.float64)
    t_centre, x_centre = T.mean(axis=0), X.mean(axis=0)
    U, _, Vt = np.linalg.svd((X - x_centre).T @ (T - t_centre))
    return (X - x_centre) @ (U @ Vt) + t_centre
