"""When to stop: a solve with ``tol`` stops once the stress has stopped improving.

The criterion is the relative decrease of the stress over a check interval of ``check_every``
iterations: stop when ``(S_before - S_now) / S_before < tol``, or when the stress is exactly 0.
It needs no target (a user with measured distances has none), is invariant to the scale of the
problem, and is checked on the positions every backend returns between two calls — the same
for every backend, and a whole number of intervals so the stop is deterministic. A stress that
rises is not taken as converged: a run whose step is too large keeps going until it diverges
(DivergenceError) or reaches ``niter``.

The check evaluates the reference stress (``gradi.problem.stress``: pairwise, float64, in row
blocks), the function the result's own stress uses: one definition of the stress everywhere.
(A centred Gram expansion was used first, for speed, until it measured slower than the row
blocks; the README's "Chunked solves" gives the figures.)
"""

DEFAULT_CHECK_EVERY = 10


def converged(before, now, tol):
    """True when the stress went from ``before`` to ``now`` with a relative decrease below ``tol``."""
    if now == 0.0:
        return True
    return now <= before and (before - now) < tol * before
