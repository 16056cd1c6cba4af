"""How one process's partial results combine with the other processes' of a run.

A solve in one process holds every row of D, and its partial sums are the whole sums. In a
multi-process run (gradi.sharded) each process holds some rows, and what the solve computes from
rows — the checks of D, the step size, the stress, the pace of its chunks — must be combined
over every process, in float64, so that every process takes the same decisions. This is the one
interface the solve uses for that; gradi.sharded.distributed gives the multi-process one.
"""

import numpy as np


class Alone:
    """The group of a one-process solve: a partial result is already the whole."""

    def sum(self, value):
        """``value`` (a number or a small array) summed over the processes, in float64."""
        return np.asarray(value, dtype=np.float64)

    def max(self, value):
        """``value`` (a number or a small array) at its largest over the processes, elementwise."""
        return np.asarray(value, dtype=np.float64)

    def agree(self, settings):
        """Refuse (ValueError) unless every process has the same ``settings`` ({name: value})."""

    def check_symmetric(self, D, rows, tolerance):
        """Refuse (ValueError) unless the ``rows`` of D of every process make one D symmetric to
        ``tolerance`` (alone: validation compared every pair already)."""


ALONE = Alone()
