"""Exceptions raised by gradi.

Invalid input raises the built-in ValueError or TypeError (as numpy and scipy do); gradi's own
classes below cover what only gradi can say: a run that diverged, or a backend that cannot run.
"""


class GradiError(Exception):
    """Base class of the errors only gradi raises."""


class DivergenceError(GradiError, FloatingPointError):
    """The iterate became non-finite: the step size is too large for this problem."""

    def __init__(self, iteration, lr, backend):
        self.iteration = iteration
        self.lr = lr
        self.backend = backend
        super().__init__(
            f"gradient descent diverged: positions became non-finite by iteration {iteration} "
            f"(backend {backend!r}, lr={lr:.3g}); use a smaller lr, e.g. lr={lr / 10:.3g}, "
            f"or lr='auto'"
        )


class BackendUnavailableError(GradiError, ValueError):
    """The requested backend exists but cannot run here (missing package, failed build...)."""
