"""How much memory a solve needs, and whether this machine has it: checked before allocating.

The estimate is what gradi itself allocates (see ``gradi_bytes``) plus what the backend
allocates on top (``Backend.working_bytes``); the caller's own arrays are not counted. It
depends on N, dim, dtype and threads only, so a problem too large for the machine is refused
before any N x N array exists. tests/test_memory.py measures the real peak against it.
"""

import numpy as np

from . import host
from .problem import BLOCK_TEMPORARIES, block_rows

POSITION_COPIES = 8  # float64 N x dim arrays alive at once in validation and solve
SMALL_BYTES = 1 << 20  # NumPy's iteration buffers (8192 elements an operand) and small objects


def gradi_bytes(n, dim, dtype, whole=True):
    """Bytes gradi's own work needs: D in ``dtype`` (unless read from a row source, ``whole``
    False), its row-block temporaries, copies of X.

    Validation checks and converts D, the step-size rule and the reference stress read it, all
    in row blocks (gradi.problem.row_blocks), so beyond D itself gradi needs a few blocks of at
    most ``BLOCK_BYTES`` (one row when a row is larger), a few N x dim position arrays, and
    ``SMALL_BYTES`` whatever N.
    """
    block = 8 * n * block_rows(n, n)
    return (whole * n * n * np.dtype(dtype).itemsize + BLOCK_TEMPORARIES * block
            + POSITION_COPIES * 8 * n * dim + SMALL_BYTES)


def needed(backend, n, dim, dtype, threads, whole=True):
    """Bytes a solve of N points in ``dim`` dimensions needs on ``backend`` with ``threads``
    (``whole``: D held whole in this process rather than read from a row source)."""
    return gradi_bytes(n, dim, dtype, whole) + backend.working_bytes(n, dim, np.dtype(dtype).itemsize, threads)


def shortfall(backend, n, dim, dtype, threads, whole=True):
    """Why a solve cannot fit in the memory left (a sentence), or None when it fits or is unknown."""
    need, have = needed(backend, n, dim, dtype, threads, whole), host.available_memory()
    if have is None or need <= have:
        return None
    return (f"problem too large: N={n} with backend {backend.name!r} in {np.dtype(dtype).name} "
            f"needs about {need / 2**30:.1f} GiB, but only {have / 2**30:.1f} GiB is available; "
            f"use a smaller N, float32, or another backend")
