"""Measure what bounds the pair-update loop here: clock, vector FMA throughput, memory bandwidth.

The loops are C++ (native/src/probe.cpp, in ``gradi._native``): a chain of dependent integer
adds (one per cycle, so adds per second is the clock), independent float32 FMAs on one core for
each instruction set the tuned kernel is compiled for, streaming reads of a buffer far larger
than the last-level cache, by one thread and by every usable core, and (with two usable cores or
more) the round trip of a cache line between two threads. This module sizes the work,
repeats each short run ``REPEATS`` times and keeps the best: on a shared machine the run nobody
interrupted is the one that shows the hardware. A measurement takes about a second.
"""

import functools
import importlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import host
from .machine import busy_load

REPEATS = 15
RUN_SECONDS = 0.002  # one timed run: short enough to fit in a time slice on a busy machine
READ_PASSES = 8
MIN_READ_BYTES = 256 << 20
CACHE_MULTIPLE = 8  # the read buffer is at least this many times the last-level cache
ROUND_TRIP_ROUNDS = 2000  # round trips per run of round_trip_now (0.1-1 ms)


@dataclass(frozen=True)
class VectorUnit:
    """One instruction set's vector FMA throughput on one core (float32 FMA instructions)."""

    isa: str
    vector_bytes: int
    fma_per_second: float
    fma_per_cycle: float

    def lanes(self, itemsize):
        return self.vector_bytes // itemsize


@dataclass(frozen=True)
class Hardware:
    """What one measurement found; rates are the best of ``REPEATS`` runs."""

    cpu: str | None
    cores: int  # usable cores (CPU affinity)
    clock_hz: float
    vector_units: tuple  # of VectorUnit, narrowest first
    read_bytes: int
    read_bandwidth: dict  # threads -> bytes per second
    last_level_cache_bytes: int | None
    load_average: list | None
    round_trip_seconds: float | None  # a cache line between two threads and back; None on one core
    seconds: float  # how long the measurement took

    @property
    def widest(self):
        return self.vector_units[-1]

    def unit(self, isa):
        return next(unit for unit in self.vector_units if unit.isa == isa)

    def bandwidth(self, threads):
        """Read bandwidth that ``threads`` threads can reach: the best measured with at most that many."""
        return max(rate for count, rate in self.read_bandwidth.items() if count <= max(threads, 1))

    def as_dict(self):
        document = asdict(self)
        document["read_bandwidth"] = {str(k): v for k, v in self.read_bandwidth.items()}
        return document


def measure():
    """Run every probe once; ImportError when the C++ extension that holds them is missing."""
    try:
        native = importlib.import_module("gradi._native")
    except ImportError as exc:
        raise ImportError(f"the probes are in the C++ extension, which is not built: {exc}") from exc
    started = time.perf_counter()
    cores = host.usable_cores()
    clock = _best_rate(lambda adds: (adds, native.probe_add_chain(adds)), 1 << 12)
    units = []
    for isa in native.simd_isas():
        rate = _best_rate(lambda rounds, isa=isa: native.probe_fma(isa, rounds), 1 << 6)
        units.append(VectorUnit(isa, native.probe_vector_bytes(isa), rate, rate / clock))
    units.sort(key=lambda unit: unit.vector_bytes)
    cache = last_level_cache_bytes()
    read_bytes = _read_bytes(cache)
    threads = sorted({1, cores if native.has_openmp() else 1})
    bandwidth = {count: read_bytes / min(native.probe_read(read_bytes, count, READ_PASSES))
                 for count in threads}
    round_trip = None
    if cores > 1:
        round_trip = 1 / _best_rate(lambda rounds: (rounds, native.probe_handoff(rounds)), 1 << 4)
    return Hardware(cpu=host.cpuinfo_field("model name"), cores=cores, clock_hz=clock,
                    vector_units=tuple(units), read_bytes=read_bytes, read_bandwidth=bandwidth,
                    last_level_cache_bytes=cache, load_average=busy_load(),
                    round_trip_seconds=round_trip, seconds=time.perf_counter() - started)


@functools.cache
def measured():
    """(Hardware, None) from one measurement per process, or (None, why it could not run)."""
    try:
        return measure(), None
    except (ImportError, OSError, MemoryError) as exc:
        return None, f"cannot measure the ceilings: {exc}".splitlines()[0]


def round_trip_now(rounds=ROUND_TRIP_ROUNDS):
    """The core-to-core round trip right now, in seconds (the median of 5 short runs, about a
    millisecond): what a parallel figure taken at this moment paid between its threads. None
    with one usable core or without the C++ extension."""
    if host.usable_cores() < 2:
        return None
    try:
        native = importlib.import_module("gradi._native")
    except ImportError:
        return None
    return sorted(native.probe_handoff(rounds) / rounds for _ in range(5))[2]


def _best_rate(run, work):
    """Best units per second of ``run(work) -> (units, seconds)``.

    The work grows until one run lasts a quarter of ``RUN_SECONDS``, is then sized to last
    ``RUN_SECONDS`` at the best speed seen, and run ``REPEATS`` times.
    """
    best, seconds = 0.0, 0.0
    while seconds < RUN_SECONDS / 4:
        work *= 4
        _, seconds = run(work)
        best = max(best, work / seconds)
    work = max(1, round(best * RUN_SECONDS))
    rate = 0.0
    for _ in range(REPEATS):
        units, seconds = run(work)
        rate = max(rate, units / seconds)
    return rate


def _read_bytes(cache):
    """Size of the streamed buffer: ``CACHE_MULTIPLE`` x the last-level cache, at least
    ``MIN_READ_BYTES``, at most a quarter of the memory still available."""
    wanted = max(MIN_READ_BYTES, CACHE_MULTIPLE * (cache or 0))
    available = host.available_memory()
    return min(wanted, available // 4) if available else wanted


def last_level_cache_bytes(root=Path("/sys/devices/system/cpu/cpu0/cache")):
    """Size of the largest data or unified cache of CPU 0 (Linux sysfs), or None."""
    sizes = []
    for index in root.glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            sizes.append(_size_bytes((index / "size").read_text().strip()))
        except (OSError, ValueError):
            continue
    return max(sizes, default=None)


def _size_bytes(text):
    """'32768K' -> 33554432 (sysfs cache sizes: a number and an optional K, M or G)."""
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KMGkmg")) * scale
