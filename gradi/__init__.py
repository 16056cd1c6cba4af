"""gradi: distance geometry by gradient descent, in every stack a Python user would consider.

Given the measured distances D between N points ("drones"), recover their positions X by
minimising the stress ``S(X) = sum_{i<j} (|X_i - X_j|^2 - D_ij^2)^2`` with plain gradient steps.
Every backend (pure Python, NumPy, JAX, C++, Mojo) computes the same thing.
"""

from . import backends, shapes
from .errors import BackendUnavailableError, DegenerateStartWarning, DivergenceError, GradiError
from .problem import distance_matrix, gradient, stress
from .solver import Result, solve

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "DegenerateStartWarning", "DivergenceError", "GradiError", "Result",
    "backends",
    "distance_matrix", "gradient", "shapes", "solve", "stress",
]
