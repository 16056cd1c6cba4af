"""How much memory a solve needs, and whether this machine has it: checked before allocating.

The estimate is what gradi itself allocates (its float64 work while validating D and computing
the reference stress, see ``gradi_bytes``) plus what the backend allocates on top
(``Backend.working_bytes``). It depends on N, dim, dtype and threads only, so a problem too
large for the machine is refused before any N x N array exists.
"""

import numpy as np

from . import host


def gradi_bytes(n, dim, dtype):
    """Bytes gradi's own work needs: D in dtype, plus its float64 N x N work while validating.

    Validation holds the caller's D converted to float64 and one float64 temporary (the
    symmetry check and symmetrising), the reference stress forms pairwise differences
    (dim + 1 float64 N x N arrays, see gradi.problem).
    """
    return n * n * (np.dtype(dtype).itemsize + max(2, dim + 1) * 8)


def needed(backend, n, dim, dtype, threads):
    """Bytes a solve of N points in ``dim`` dimensions needs on ``backend`` with ``threads``."""
    return gradi_bytes(n, dim, dtype) + backend.working_bytes(n, dim, np.dtype(dtype).itemsize, threads)


def shortfall(backend, n, dim, dtype, threads):
    """Why a solve cannot fit in the memory left (a sentence), or None when it fits or is unknown."""
    need, have = needed(backend, n, dim, dtype, threads), host.available_memory()
    if have is None or need <= have:
        return None
    return (f"problem too large: N={n} with backend {backend.name!r} in {np.dtype(dtype).name} "
            f"needs about {need / 2**30:.1f} GiB, but only {have / 2**30:.1f} GiB is available; "
            f"use a smaller N, float32, or another backend")
