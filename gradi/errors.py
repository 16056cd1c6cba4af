"""Exceptions and warnings raised by gradi.

Invalid input raises the built-in ValueError or TypeError (as numpy and scipy do); gradi's own
classes below cover what only gradi can say: a run that diverged, a backend that cannot run, a
start that cannot reach every dimension.
"""


class GradiError(Exception):
    """Base class of the errors only gradi raises."""


class DivergenceError(GradiError, FloatingPointError):
    """The positions, or the stress, became non-finite: the step size is too large.

    ``iteration`` is the first iteration after which ``what`` ("positions" or "stress") is
    non-finite in the caller's units, the positions and stress before it being finite; ``lr``
    is the step in the caller's units and ``auto`` whether ``lr="auto"`` chose it (then the
    advice is an explicit smaller step, not lr='auto' again).
    """

    def __init__(self, iteration, lr, backend, what="positions", auto=False):
        self.iteration = iteration
        self.lr = lr
        self.backend = backend
        self.what = what
        self.auto = auto
        advice = (f"lr='auto' chose lr={lr:.3g}, but the path left the region it was derived "
                  f"for; pass a smaller lr explicitly, e.g. lr={lr / 10:.3g}" if auto else
                  f"use a smaller lr, e.g. lr={lr / 10:.3g}, or lr='auto'")
        super().__init__(
            f"gradient descent diverged: the {what} became non-finite at iteration {iteration} "
            f"(backend {backend!r}, lr={lr:.3g}); {advice}"
        )


class BackendUnavailableError(GradiError, ValueError):
    """The requested backend exists but cannot run here (missing package, failed build...)."""


class DegenerateStartWarning(UserWarning):
    """The start X0 spans fewer dimensions than it could, and gradient descent cannot leave them."""
