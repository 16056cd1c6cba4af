"""Registry of backends: one module per backend family, one table mapping names to backends.

Modules are imported eagerly but cheaply; each backend imports its heavy library (JAX, the
compiled C++ or Mojo extension) only when first used, so ``gradi backends`` (which asks each
backend's ``status``, never ``load``) is fast and a missing library only makes its own backends
unavailable.
"""

from ..sharded import backend as jax_sharded
from . import cpp, jax_backends, mojo, numpy_loops, numpy_matrix, python_lists
from .base import Backend

_MODULES = (python_lists, numpy_loops, numpy_matrix, jax_backends, jax_sharded, cpp, mojo)

BACKENDS = {backend.name: backend for module in _MODULES for backend in module.BACKENDS}


def names():
    """Names of every registered backend, in registry order."""
    return list(BACKENDS)


def get(name):
    """The backend called ``name``; ValueError listing the known names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a backend name (str), got {type(name).__name__}; "
                        f"known backends: {', '.join(BACKENDS)}")
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}") from None


def available():
    """Names of the backends that can run on this machine."""
    return [name for name, backend in BACKENDS.items() if backend.available]


__all__ = ["BACKENDS", "Backend", "available", "get", "names"]
