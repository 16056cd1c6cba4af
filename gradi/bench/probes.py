"""Measure what bounds the pair-update loop here: clock, vector throughput, cache and memory.

The loops are C++ (native/src/probe.cpp and opmix_kernel.hpp, in ``gradi._native``):

- the clock: a chain of dependent integer multiplies (3 cycles each on every Intel Core and AMD
  Zen core; recent Intel cores fold chains of add-immediates at rename, so an add chain reads
  several times the clock there), cross-checked by a chain of dependent FMAs, which take
  ``FMA_LATENCIES`` cycles on those cores: when the two disagree by more than
  ``CLOCK_TOLERANCE``, the clock is not trusted and no per-cycle figure is given;
- independent float32 FMAs on one core for each instruction set (ISA) the tuned kernel is
  compiled for: the hardware's FMA-only peak;
- the kernels' own op mix (subtractions and FMAs, see opmix_kernel.hpp) in registers, per ISA,
  scheme (``SCHEMES``) and dim: the compute ceiling a kernel can reach on this core (on Intel
  every subtraction takes an FMA port, on AMD it goes to separate adders);
- with two usable cores or more, both of those again on every usable core at once: a VM's
  vCPUs may be SMT siblings that share one core's vector units, or share a power budget, and
  then all the cores together deliver less than the cores times one (``on_cores``);
- reads of working sets from twice the per-core cache (L2) to a buffer far larger than the
  last-level cache, by one thread (a busy machine disturbs one thread least): the largest gives
  memory's bandwidth; the knee, the largest working set still read within ``KNEE_DROP`` of the
  fastest, is the cache this process really has (a VM's sysfs may show the host socket's); then
  the largest streamed by every usable core;
- with two usable cores or more, the round trip of a cache line between two threads.

This module sizes the work, repeats each short run ``REPEATS`` times and keeps the best: on a
shared machine the run nobody interrupted is the one that shows the hardware. The repeats of the
clock, FMA and op-mix probes take turns, so that a busy spell slows one round of each rather
than every round of one (and the two clocks see the same machine), and they run in two passes,
before and after the memory probes, each probe keeping its best: a shared host's vCPU can run
slow for seconds at a time, and a ceiling read in such a spell would inflate every fraction
divided by it (README, "Fairness rules"), so a spell must now cover both passes, a few seconds apart,
to lower one. A measurement takes a few seconds.
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
FIRST_WORK = 16  # the work of a probe's first run, grown from there
FMA_LATENCIES = (4, 5)  # cycles of a dependent FMA: Skylake and later, Zen 3 and later; Haswell, Zen 1-2
CLOCK_TOLERANCE = 0.10
SCHEMES = ("full", "symmetric")  # every ordered pair, its row updated; each pair once, both rows
OP_MIX_DIMS = (2, 3)  # always measured; a sweep adds its own dims (1 to MAX_OP_MIX_DIM)
MAX_OP_MIX_DIM = 8
READ_PASSES = 5
MIN_READ_BYTES = 512 << 20
CACHE_MULTIPLE = 8  # the streamed buffer is at least this many times the last-level cache
SWEEP_FIRST_BYTES = 1 << 20  # where sysfs does not name the per-core cache
SWEEP_STEP = 2 ** 0.5
SWEEP_PASSES = 5
SWEEP_PASS_BYTES = 32 << 20  # a small working set is read as often as makes this much per pass
KNEE_DROP = 2 ** 0.5  # the cache ends where reads fall this many times below the fastest
ROUND_TRIP_ROUNDS = 2000  # round trips per run of round_trip_now (0.1-1 ms)


@dataclass(frozen=True)
class VectorUnit:
    """One instruction set's vector FMA throughput on one core (float32 FMA instructions)."""

    isa: str
    vector_bytes: int
    fma_per_second: float
    fma_per_cycle: float | None  # None where the clock is not trusted
    all_cores_fma_per_second: float | None = None  # every usable core at once, in total; None on one

    def lanes(self, itemsize):
        return self.vector_bytes // itemsize

    def fma_rate(self, cores):
        """FMA instructions per second on ``cores`` cores (``on_cores``)."""
        return on_cores(self.fma_per_second, self.all_cores_fma_per_second, cores)


@dataclass(frozen=True)
class OpMix:
    """The kernels' op mix of one scheme and dim with one ISA's vectors: pair-vectors (one row
    against one vector of columns) per second, in registers, on one core and on every usable
    core at once (in total; None on one core)."""

    isa: str
    scheme: str
    dim: int
    pair_vectors_per_second: float
    all_cores_pair_vectors_per_second: float | None = None


@dataclass(frozen=True)
class Hardware:
    """What one measurement found; rates are the best of ``REPEATS`` runs."""

    cpu: str | None
    cores: int  # usable cores (CPU affinity)
    clock_hz: float | None  # from the dependent multiplies; None off x86-64
    fma_latency_cycles: float | None  # the cross-check: a dependent FMA's cycles at clock_hz
    vector_units: tuple  # of VectorUnit, narrowest first
    op_mix: tuple  # of OpMix
    read_bytes: int
    read_bandwidth: dict  # threads -> bytes per second, streaming read_bytes
    read_sweep: tuple  # of (working-set bytes, bytes per second) on one thread, up to read_bytes
    cache_knee_bytes: int | None  # the largest working set read within KNEE_DROP of the fastest
    last_level_cache_bytes: int | None  # what sysfs says
    load_average: list | None
    round_trip_seconds: float | None  # a cache line between two threads and back; None on one core
    seconds: float  # how long the measurement took

    @property
    def widest(self):
        return self.vector_units[-1]

    @property
    def clock_agrees(self):
        """Whether the cross-check confirms the clock (None where there is no cross-check)."""
        return clock_agrees(self.fma_latency_cycles)

    @property
    def cycle_hz(self):
        """The clock that per-cycle figures use: None where unmeasured or contradicted."""
        return trusted_clock(self.clock_hz, self.fma_latency_cycles)

    def unit(self, isa):
        return next(unit for unit in self.vector_units if unit.isa == isa)

    def op_mix_rate(self, isa, scheme, dim, cores=1):
        """Pair-vectors per second of the op mix on ``cores`` cores (``on_cores``), or None where
        it was not measured."""
        mix = self.op_mix_of(isa, scheme, dim)
        return None if mix is None else on_cores(mix.pair_vectors_per_second, mix.all_cores_pair_vectors_per_second,
                                                 cores)

    def op_mix_of(self, isa, scheme, dim):
        """The OpMix measured for this case, or None."""
        return next((mix for mix in self.op_mix if (mix.isa, mix.scheme, mix.dim) == (isa, scheme, dim)), None)

    def bandwidth(self, threads):
        """Read bandwidth that ``threads`` threads can reach: the best measured with at most that many."""
        return max(rate for count, rate in self.read_bandwidth.items() if count <= max(threads, 1))

    def as_dict(self):
        document = asdict(self)
        document["read_bandwidth"] = {str(k): v for k, v in self.read_bandwidth.items()}
        document["read_sweep"] = [list(point) for point in self.read_sweep]
        return document


def on_cores(one_core, all_cores, cores):
    """A rate on ``cores`` cores from the rate of one core and that of every usable core at once
    (None where there is one): ``cores`` times one core's, but never more than all the cores
    reached together."""
    rate = one_core * max(cores, 1)
    return rate if all_cores is None else min(rate, all_cores)


def clock_agrees(fma_latency_cycles):
    """True if a dependent FMA's measured cycles lie within ``CLOCK_TOLERANCE`` of a known FMA
    latency, False if not, None without a cross-check."""
    if fma_latency_cycles is None:
        return None
    return any(abs(fma_latency_cycles / latency - 1) <= CLOCK_TOLERANCE for latency in FMA_LATENCIES)


def trusted_clock(clock_hz, fma_latency_cycles):
    """``clock_hz`` unless the cross-check contradicts it (then None)."""
    return None if clock_agrees(fma_latency_cycles) is False else clock_hz


def cache_knee(sweep):
    """The largest working set of ``sweep`` ((bytes, bytes/s) pairs, growing) read within
    ``KNEE_DROP`` of the fastest, or None where no working set is read that much slower (no cache
    beyond the first one's, or none that this sweep outgrew).

    A working set is judged by the best rate of it and every larger one: reads only slow down as
    the working set grows, so a slower reading among faster larger ones was a disturbed run.
    """
    envelope, best = [], 0.0
    for size, rate in reversed(sweep):
        best = max(best, rate)
        envelope.append((size, best))
    fast = [size for size, rate in envelope if rate * KNEE_DROP >= best]
    return None if len(fast) == len(sweep) else max(fast)


def sweep_sizes(first, largest):
    """Working sets from ``first`` up by ``SWEEP_STEP`` to ``largest`` (included)."""
    sizes, size = [], first
    while size < largest:
        sizes.append(int(size) // 64 * 64)
        size *= SWEEP_STEP
    return sizes + [largest]


def measure(dims=OP_MIX_DIMS):
    """Run every probe (the op mix for ``dims``), the compute ones in two passes around the memory
    ones (see the module docstring); ImportError without the C++ extension."""
    try:
        native = importlib.import_module("gradi._native")
    except ImportError as exc:
        raise ImportError(f"the probes are in the C++ extension, which is not built: {exc}") from exc
    started = time.perf_counter()
    cores = host.usable_cores()
    chains = _clock_chains(native)
    isas = sorted(native.simd_isas(), key=native.probe_vector_bytes)
    cases = [(isa, scheme, dim) for isa in isas for scheme in SCHEMES for dim in dims]

    def compute(threads):
        return [*(functools.partial(native.probe_fma, isa, threads=threads) for isa in isas),
                *(_op_mix_run(native, *case, threads=threads) for case in cases)]

    counts = (1, cores) if cores > 1 else (1,)  # every compute probe on one core, then on all at once
    runs = [*chains, *(run for count in counts for run in compute(count))]
    first_pass = best_rates(runs)
    cache, read_bytes, sweep, bandwidth = _memory(native, cores)
    round_trip = None
    if cores > 1:
        round_trip = 1 / best_rates([lambda rounds: (rounds, native.probe_handoff(rounds))])[0]
    rates = [max(first, second) for first, second in zip(first_pass, best_rates(runs))]
    clock = rates[0] if chains else None
    fma_latency = clock / rates[1] if len(chains) == 2 else None
    cycle_hz = trusted_clock(clock, fma_latency)
    per_count = len(isas) + len(cases)
    one, every = rates[len(chains):][:per_count], rates[len(chains) + per_count:] or [None] * per_count
    units = [VectorUnit(isa, native.probe_vector_bytes(isa), rate, cycle_hz and rate / cycle_hz, all_rate)
             for isa, rate, all_rate in zip(isas, one, every)]
    mixes = tuple(OpMix(*case, rate, all_rate)
                  for case, rate, all_rate in zip(cases, one[len(isas):], every[len(isas):]))
    return Hardware(cpu=host.cpuinfo_field("model name"), cores=cores, clock_hz=clock,
                    fma_latency_cycles=fma_latency, vector_units=tuple(units), op_mix=mixes,
                    read_bytes=read_bytes, read_bandwidth=bandwidth,
                    read_sweep=sweep, cache_knee_bytes=cache_knee(sweep),
                    last_level_cache_bytes=cache, load_average=busy_load(),
                    round_trip_seconds=round_trip, seconds=time.perf_counter() - started)


def _memory(native, cores):
    """(the last-level cache sysfs names, the streamed buffer's bytes, the read sweep, the read
    bandwidth by threads): the memory probes of ``measure``."""
    caches = sysfs_caches()
    cache = max(caches.values(), default=None)  # the last level
    read_bytes = _read_bytes(cache)
    sizes = sweep_sizes(2 * caches[2] if caches.get(2) else SWEEP_FIRST_BYTES, read_bytes)
    sweep = tuple(zip(sizes, native.probe_read_sweep(sizes, 1, SWEEP_PASSES, SWEEP_PASS_BYTES)))
    bandwidth = {1: sweep[-1][1]}
    if cores > 1 and native.has_openmp():
        bandwidth[cores] = read_bytes / min(native.probe_read(read_bytes, cores, READ_PASSES))
    return cache, read_bytes, sweep, bandwidth


@functools.cache
def measured(dims=OP_MIX_DIMS):
    """(Hardware, None) from one measurement per process and ``dims``, or (None, why it could not run)."""
    try:
        return measure(dims), None
    except (ImportError, OSError, MemoryError) as exc:
        return None, f"cannot measure the ceilings: {exc}".splitlines()[0]


def measured_for(dims):
    """``measured`` with the op mix also for ``dims`` (those the probe has a loop for)."""
    return measured(tuple(sorted(set(OP_MIX_DIMS) | {dim for dim in dims if 1 <= dim <= MAX_OP_MIX_DIM})))


def op_mix_rate(isa, scheme, dim, cores=1):
    """Pair-vectors per second of the kernels' op mix of ``scheme`` in ``dim`` dimensions with the
    vectors of ``isa``, on ``cores`` cores at once (the best of ``REPEATS`` short runs, about
    0.04 s)."""
    return best_rates([_op_mix_run(importlib.import_module("gradi._native"), isa, scheme, dim, cores)])[0]


def _op_mix_run(native, isa, scheme, dim, threads=1):
    """The op-mix probe of one case on ``threads`` cores at once as ``run(rounds) -> (pair-vectors,
    seconds)``."""
    return functools.partial(native.probe_op_mix, isa, dim, scheme == "symmetric", threads=threads)


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


def _clock_chains(native):
    """The clock's chains this machine has, as ``run(links) -> (units, seconds)``: the dependent
    multiplies (none off x86-64), then the dependent FMAs that cross-check them (none without FMA)."""
    chains = []
    for chain in (native.probe_mul_chain, native.probe_fma_chain):
        try:
            chain(1)
        except RuntimeError:
            break
        chains.append(chain)
    return chains


def best_rates(runs):
    """The best units per second of each ``run(work) -> (units, seconds)`` of ``runs``.

    Each run's work grows from ``FIRST_WORK`` until one run lasts a quarter of ``RUN_SECONDS``
    and is then sized to last ``RUN_SECONDS`` at the best pace seen; then ``REPEATS`` rounds run
    each once in turn.
    """
    works = [_sized(run) for run in runs]
    rates = [0.0] * len(runs)
    for _ in range(REPEATS):
        for k, (run, work) in enumerate(zip(runs, works)):
            units, seconds = run(work)
            rates[k] = max(rates[k], units / seconds)
    return rates


def _sized(run):
    """The work that makes one run of ``run`` last about ``RUN_SECONDS``."""
    work, pace, seconds = FIRST_WORK, 0.0, 0.0  # pace: work per second
    while seconds < RUN_SECONDS / 4:
        work *= 4
        _, seconds = run(work)
        pace = max(pace, work / seconds)
    return max(1, round(pace * RUN_SECONDS))


def _read_bytes(cache):
    """Size of the streamed buffer: ``CACHE_MULTIPLE`` x the last-level cache, at least
    ``MIN_READ_BYTES``, at most a quarter of the memory still available."""
    wanted = max(MIN_READ_BYTES, CACHE_MULTIPLE * (cache or 0))
    available = host.available_memory()
    return min(wanted, available // 4) if available else wanted


def sysfs_caches(root=Path("/sys/devices/system/cpu/cpu0/cache")):
    """{level: bytes} of CPU 0's data and unified caches (Linux sysfs); empty where it does not say."""
    sizes = {}
    for index in root.glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            sizes[level] = max(sizes.get(level, 0), _size_bytes((index / "size").read_text().strip()))
        except (OSError, ValueError):
            continue
    return sizes


def _size_bytes(text):
    """'32768K' -> 33554432 (sysfs cache sizes: a number and an optional K, M or G)."""
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KMGkmg")) * scale
