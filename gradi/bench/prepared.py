"""A backend prepared once on one problem, and best-of timing: what every measurement shares.

``gradi bench`` (the sweep and the to-solution comparison), the asv suite, the counted run and
the threshold scripts all do the same: prepare a backend on a validated problem once (compiling,
laying out D; never timed), then time ``descend`` calls from the start X0, and keep the best of
several samples — the one least disturbed by the rest of the machine. They do it here.
"""

import time

import numpy as np


class PreparedRun:
    """One backend on one problem with ``threads``: prepared once, run from X0 as often as asked.

    ``prepare_seconds`` is the one-off set-up. Times are read from ``clock`` (seconds; a test
    injects one). Use as a context manager, or ``close()``.
    """

    def __init__(self, backend, problem, threads=1, clock=time.perf_counter):
        self.backend, self.problem, self.clock = backend, problem, clock
        started = clock()
        self.state = backend.prepare(problem, threads)
        self.prepare_seconds = clock() - started

    def start(self):
        """A fresh copy of the start X0, in the layout and dtype ``descend`` takes."""
        return np.array(self.problem.X0, dtype=self.backend.working_dtype(self.problem.dtype), order="C")

    def descend(self, iterations, X=None):
        """The positions after ``iterations`` steps from X (default: a fresh start); non-finite
        results are returned, not warned about (the callers report divergence themselves)."""
        with np.errstate(all="ignore"):
            return self.backend.descend(self.state, self.start() if X is None else X, iterations)

    def timed(self, iterations, X=None):
        """(positions, seconds) of one ``descend`` call; the start's copy is not timed."""
        X = self.start() if X is None else X
        started = self.clock()
        X = self.descend(iterations, X)
        return X, self.clock() - started

    def close(self):
        self.state.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def best_of(call, repeats, window=0.0):
    """(what ``call()`` returned last, its best wall time over ``repeats`` calls, and more calls
    until ``window`` seconds have passed since the first)."""
    best, first, calls = float("inf"), time.perf_counter(), 0
    while calls < repeats or time.perf_counter() - first < window:
        started = time.perf_counter()
        value = call()
        best = min(best, time.perf_counter() - started)
        calls += 1
    return value, best


def seconds(call, number=1):
    """Seconds that ``number`` calls of ``call()`` take together."""
    started = time.perf_counter()
    for _ in range(number):
        call()
    return time.perf_counter() - started


def calls_per_sample(call, sample_seconds=0.02):
    """How many calls make one timing sample last at least ``sample_seconds`` (as timeit's autorange)."""
    number = 1
    while (elapsed := seconds(call, number)) < sample_seconds:
        number = max(2 * number, int(1.2 * number * sample_seconds / max(elapsed, 1e-9)))
    return number


def interleaved_best(calls, rounds, sample_seconds=None):
    """Best seconds per call of each of ``calls`` over ``rounds`` samples each.

    Samples of the calls alternate, so a slow spell of the machine hits all of them; the best
    sample is the one least disturbed by other processes, which is what a ratio should compare.
    A sample is one call, or as many as last ``sample_seconds`` when it is given.
    """
    numbers = [1 if sample_seconds is None else calls_per_sample(call, sample_seconds) for call in calls]
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for index, (call, number) in enumerate(zip(calls, numbers)):
            best[index] = min(best[index], seconds(call, number) / number)
    return best
