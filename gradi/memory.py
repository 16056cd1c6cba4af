"""How much memory a solve, and a whole command, needs; whether this machine has it.

Both estimates depend on N, dim, dtype and threads (and the pictures asked for), never on the
numbers in D, so a problem too large for the machine is refused before any N x N array exists.
tests/test_memory.py measures the real peaks against them.

- ``needed``: what ``gradi.solve`` allocates beyond the caller's arrays: gradi's own work
  (``gradi_bytes``: the working copy of D, row-block temporaries, position copies) plus the
  backend's (``Backend.working_bytes``). ``Backend.check`` refuses a solve with ``shortfall``.
- ``plan``: what a whole ``gradi solve`` holds at its peak as a process (its peak resident
  memory, VmHWM, what ``/usr/bin/time`` reports). Its first part is measured, not assumed: the
  process's resident memory when the plan is made, which holds the interpreter and every
  library imported by then (NumPy, the backend's JAX or compiled extension, what the report
  needs), so the estimate holds whatever the stack; the plan then adds what the command will
  allocate: the input D, read or built in the working dtype (``input_bytes``), ``needed``, the
  recorded positions (``recording_bytes``), and the pictures drawn after the solve, when the
  N x N arrays are gone (``picture_bytes``). ``case_bytes`` is the part of a ``gradi bench``
  case before any backend runs.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import host
from .problem import BLOCK_TEMPORARIES, block_rows

POSITION_COPIES = 8  # float64 N x dim arrays alive at once in validation and solve
SMALL_BYTES = 1 << 20  # NumPy's iteration buffers (8192 elements an operand) and small objects
INPUT_BLOCKS = 4  # row-block temporaries while D is read or built: a CSV block's text, its
# numbers, NumPy's parse buffer, and a block's conversion
RETAINED_BYTES = 8 << 20  # freed memory the allocator keeps resident: glibc keeps up to twice its
# mmap threshold, which freeing any mapped array (a row block, a backend's buffer) raises to its
# size, so the reading, checking and converting passes leave freed chunks of a few MiB behind
REPORT_POSITION_COPIES = 4  # float64 N x dim arrays of the report: Procrustes, the written positions
# Drawing after the solve, (whatever N, per number drawn): the libraries it imports beyond what
# the output checks did, the figure and its canvas, the GIF's frames as images (FRAMES of them),
# plotly's page (its figure and JSON). tests/test_memory.py measures each against this.
PICTURE_BYTES = {"plot": (32 << 20, 256), "animate": (160 << 20, 512), "html": (96 << 20, 192)}


def gradi_bytes(n, dim, dtype, whole=True):
    """Bytes gradi's own work needs: D in ``dtype`` (unless read from a row source, ``whole``
    False), its row-block temporaries, copies of X.

    Validation checks and converts D, the step-size rule and the reference stress read it, all
    in row blocks (gradi.problem.row_blocks), so beyond D itself gradi needs a few blocks of at
    most ``BLOCK_BYTES`` (one row when a row is larger), a few N x dim position arrays, and
    ``SMALL_BYTES`` whatever N.
    """
    return (whole * n * n * np.dtype(dtype).itemsize + BLOCK_TEMPORARIES * _block(n)
            + POSITION_COPIES * 8 * n * dim + SMALL_BYTES)


def _block(n):
    """Bytes of one float64 row block of an N x N matrix (gradi.problem.block_rows)."""
    return 8 * n * block_rows(n, n)


def needed(backend, n, dim, dtype, threads, whole=True):
    """Bytes a solve of N points in ``dim`` dimensions needs on ``backend`` with ``threads``
    (``whole``: D held whole in this process rather than read from a row source)."""
    return gradi_bytes(n, dim, dtype, whole) + backend.working_bytes(n, dim, np.dtype(dtype).itemsize, threads)


def input_bytes(n, dim, dtype, whole=True):
    """Bytes of the input of a command: D read or built in ``dtype`` (gradi.io, gradi.problem
    work in row blocks, so no float64 N x N copy exists; none when read from a row source,
    ``whole`` False), the shape's points, and the blocks."""
    return whole * n * n * np.dtype(dtype).itemsize + 8 * n * dim + INPUT_BLOCKS * _block(n)


def case_bytes(n, dim, dtype):
    """Bytes before any backend runs: the input D and gradi's validated copy of it."""
    return input_bytes(n, dim, dtype) + gradi_bytes(n, dim, dtype)


def recording_bytes(backend, n, dim, dtype, records):
    """Bytes of ``records`` recorded positions: the copy in the backend's working dtype, and the
    history's in ``dtype`` and in float64 (the pictures' frames, moved onto the target)."""
    itemsize = np.dtype(dtype).itemsize + backend.working_dtype(dtype).itemsize + 8
    return records * n * dim * itemsize


def picture_bytes(pictures, n, dim, records):
    """Bytes of drawing ``pictures`` ("plot", "animate", "html"), one after the other, of N
    points and the target: matplotlib draws one frame at a time, plotly's page holds all
    ``records`` frames."""
    def drawing(kind):
        fixed, per_number = PICTURE_BYTES[kind]
        return fixed + per_number * 2 * n * dim * (records if kind == "html" else 1)
    return max(map(drawing, pictures), default=0)


@dataclass(frozen=True)
class Plan:
    """A command's memory at its peak: ``held`` now (resident, measured), ``high_water`` (the
    process's peak so far) and ``more``, what it will add at most; ``peak`` is their outcome."""

    held: int
    high_water: int
    more: int

    @property
    def peak(self):
        return max(self.high_water, self.held + self.more)


def plan(backend, n, dim, dtype, threads, records=0, pictures=(), whole=True):
    """The Plan of a ``gradi solve``: its input and the solve, then (D gone) the report's
    pictures, with the recorded positions held through both (``whole``: D held whole in this
    process rather than read from a row source)."""
    solving = (input_bytes(n, dim, dtype, whole) + needed(backend, n, dim, dtype, threads, whole)
               + RETAINED_BYTES)
    reporting = picture_bytes(pictures, n, dim, records) + REPORT_POSITION_COPIES * 8 * n * dim
    more = recording_bytes(backend, n, dim, dtype, records) + max(solving, reporting)
    held, high_water = resident_bytes()
    return Plan(held, high_water, more)


def resident_bytes():
    """(resident bytes now, peak resident bytes so far) of this process; (0, 0) where unknown."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def size_text(count, round_up=False):
    """``count`` bytes in a binary unit to 3 significant digits, e.g. "1.45 GiB"; rounded up with
    ``round_up``, so that an estimate printed is never below the one computed."""
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            value = count / scale
            if round_up:
                step = 10.0 ** (math.floor(math.log10(value)) - 2)
                value = math.ceil(value / step) * step
            text = f"{value:.3g}"
            return f"{text if 'e' not in text else f'{value:.0f}'} {unit}"
    return f"{count} bytes"


def refusal(what, need):
    """Why ``need`` more bytes cannot be had (a sentence starting with ``what``), or None when they
    fit or the available memory is unknown."""
    have = host.available_memory()
    if have is None or need <= have:
        return None
    return f"{what} needs about {size_text(need, round_up=True)} more, but only {size_text(have)} is available"


def too_large(backend, n, dtype, need):
    """Why a problem of N points on ``backend`` that needs ``need`` more bytes cannot be solved
    here (a sentence), or None when it fits or the available memory is unknown."""
    reason = refusal(f"problem too large: N={n} with backend {backend.name!r} in {np.dtype(dtype).name}", need)
    return None if reason is None else f"{reason}; use a smaller N, float32, or another backend"


def shortfall(backend, n, dim, dtype, threads, whole=True):
    """Why a solve cannot fit in the memory left (a sentence), or None when it fits or is unknown."""
    return too_large(backend, n, dtype, needed(backend, n, dim, dtype, threads, whole))
