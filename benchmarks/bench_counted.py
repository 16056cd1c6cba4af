"""Counted work per pair-update: deterministic tracks that can gate a 5% change (gradi.bench.counted)."""

from gradi.bench import counted

from . import common


def _counts():
    """{backend: per-pair figures, or ("skip"|"fail", why)} for every backend, counted once.

    asv runs each (benchmark, parameter) in a process of its own; counting every backend in
    ``setup_cache`` (once per ``asv run``, several at a time) lets both tracks share one valgrind
    run per backend.
    """
    reason = counted.unavailable_reason()
    if reason is not None:
        return {name: ("skip", reason) for name in common.BACKEND_NAMES}
    result = {}
    for name, outcome in counted.count_all(common.BACKEND_NAMES).items():
        if isinstance(outcome, counted.Count):
            result[name] = {"instructions": outcome.instructions_per_pair,
                            "cycles": outcome.cycles_per_pair}
        else:
            result[name] = ("skip" if isinstance(outcome, counted.NotCountable) else "fail", str(outcome))
    return result


class Counted:
    """Instructions and estimated cycles per pair-update (N^2 x iterations) of one ``descend``
    call at one thread, counted under valgrind on the x86-64-v3 path (``gradi.bench.counted``:
    N=200 and 100 iterations, python and numpy-loops N=30 and 4, float32 sphere). Deterministic
    to well under 1%, the same on every runner. Without valgrind every row skips with the reason.
    Values are kept to 5 significant digits.
    """

    params = [common.BACKEND_NAMES]
    param_names = ["backend"]
    version = "1"

    def setup_cache(self):
        return _counts()

    setup_cache.timeout = 3600

    def setup(self, counts, backend):
        outcome = counts.get(backend, ("skip", f"backend {backend!r} was not counted"))
        if isinstance(outcome, tuple):
            kind, why = outcome
            if kind == "skip":
                raise NotImplementedError(why)
            raise RuntimeError(why)
        self.figures = outcome

    def track_instructions(self, counts, backend):
        return common.significant(self.figures["instructions"], 5)

    track_instructions.unit = "instructions/pair-update"

    def track_cycles(self, counts, backend):
        return common.significant(self.figures["cycles"], 5)

    track_cycles.unit = "est. cycles/pair-update"
