"""Fraction of the op-mix ceiling: how close each tuned and idiomatic backend comes to what this
core's vector units allow, a figure that reads the same on runners of different CPU models."""

import importlib

from gradi import host
from gradi.backends import BACKENDS
from gradi.bench import probes, roofline

from . import common

# The tuned and idiomatic backends, literal as every parameter list (see common); a test keeps
# it equal to the registry's backends of those tiers.
TRACKED = ["numpy", "jax", "jax-sharded", "cpp-simd", "mojo-simd"]
DIM = 3
ROUNDS = 5


class CeilingFraction:
    """Pair-updates per second of one call of ITERATIONS steps on the sphere (dim 3, float32, the
    backend's default threads; best of ROUNDS samples of at least 20 ms, ``common.interleaved_best``)
    over the op-mix ceiling of the scheme it runs (each pair once for the tuned tier, every pair
    for the rest) on as many cores as it has threads, with the vectors of the ISA it runs (the
    widest here for all but a tuned backend). The ceiling is the kernels' own subtractions and
    FMAs run in registers on that many cores at once (``gradi.bench.probes.op_mix_rate``),
    measured in the same process just after the backend, so the fraction stays comparable when
    the runner's CPU model changes, where seconds do not. Unit "fraction": 1 is the ceiling.
    Kept to 3 significant digits.
    """

    params = [TRACKED, [1000]]
    param_names = ["backend", "N"]
    unit = "fraction"
    version = "2"  # 2: the ceiling of several cores measured on them at once

    def setup_cache(self):
        return common.references()

    def setup(self, references, backend, n):
        self.threads = common.default_threads(backend)
        self.run = common.prepared(references, backend, n, DIM, self.threads)
        try:
            self.native = importlib.import_module("gradi._native")
        except ImportError as exc:
            raise NotImplementedError(f"the ceiling's probe is in the C++ extension, not built: {exc}") from None

    def track_fraction(self, references, backend, n):
        (seconds,) = common.interleaved_best([self.run], ROUNDS)
        rate = n * n * common.ITERATIONS / seconds
        isas = sorted(self.native.simd_isas(), key=self.native.probe_vector_bytes)
        isa = (roofline.backend_isa(backend) if BACKENDS[backend].tier == "tuned" else None) or isas[-1]
        scheme = roofline.scheme_of(BACKENDS[backend].tier)
        cores = min(self.threads, host.usable_cores())
        ceiling = roofline.op_mix_pair_updates(probes.op_mix_rate(isa, scheme, DIM, cores),
                                               self.native.probe_vector_bytes(isa), common.DTYPE, scheme)
        return common.significant(rate / ceiling, 3)
