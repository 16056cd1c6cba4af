"""Exceptions raised by gradi.

Invalid input raises the built-in ValueError or TypeError (as numpy and scipy do); gradi's own
classes below cover what only gradi can say: a run that diverged, or a backend that cannot run.
"""


class GradiError(Exception):
    """Base class of the errors only gradi raises."""


class DivergenceError(GradiError, FloatingPointError):
    """The positions, or the stress, became non-finite: the step size is too large.

    ``iteration`` is the first iteration after which ``what`` ("positions" or "stress") is
    non-finite; the positions before it were finite.
    """

    def __init__(self, iteration, lr, backend, what="positions"):
        self.iteration = iteration
        self.lr = lr
        self.backend = backend
        self.what = what
        super().__init__(
            f"gradient descent diverged: the {what} became non-finite at iteration {iteration} "
            f"(backend {backend!r}, lr={lr:.3g}); use a smaller lr, e.g. lr={lr / 10:.3g}, "
            f"or lr='auto'"
        )


class BackendUnavailableError(GradiError, ValueError):
    """The requested backend exists but cannot run here (missing package, failed build...)."""
