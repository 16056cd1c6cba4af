"""How much memory a solve needs, and whether this machine has it: checked before allocating.

The estimate is what gradi itself allocates (see ``gradi_bytes``) plus what the backend
allocates on top (``Backend.working_bytes``); the caller's own arrays are not counted. It
depends on N, dim, dtype and threads only, so a problem too large for the machine is refused
before any N x N array exists. tests/test_memory.py measures the real peak against it.
"""

import numpy as np

from . import host
from .problem import block_rows

BLOCK_TEMPORARIES = 5  # row-block temporaries gradi keeps at once (the stress: 4, see gradi.problem)
POSITION_COPIES = 8  # float64 N x dim arrays alive at once in validation and solve


def gradi_bytes(n, dim, dtype):
    """Bytes gradi's own work needs: D in ``dtype``, its row-block temporaries, copies of X.

    Validation checks and converts D, the step-size rule and the reference stress read it, all
    in row blocks (gradi.problem.row_blocks), so beyond D itself gradi needs a few blocks of at
    most ``BLOCK_BYTES`` (one row when a row is larger) and a few N x dim position arrays.
    """
    block = 8 * n * block_rows(n, n)
    return n * n * np.dtype(dtype).itemsize + BLOCK_TEMPORARIES * block + POSITION_COPIES * 8 * n * dim


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
