"""Measure where the tuned Mojo kernel starts to gain from a second thread (SERIAL_BELOW).

Runs the compiled kernel directly (gradi_mojo.simd, which honours ``threads`` exactly) on one
thread and on all usable cores, for growing N, dim 3, float32, best of 15 interleaved runs, and
prints the smallest N from which the parallel run is faster at every larger N tried (or that it
is faster at none of them).
Usage: python mojo/measure_threshold.py [niter ...]   (default: 100 1000)
"""

import sys

import numpy as np

from gradi import host
from gradi.backends import mojo_build
from gradi.bench.prepared import interleaved_best
from gradi.testing import make_case

SIZES = (8, 16, 32, 64, 96, 128, 160, 192, 256, 384, 512)
REPEATS = 15  # interleaved runs per thread count; the best is kept


def crossover(ext, niter, threads):
    """Smallest N of SIZES from which ``threads`` threads beat one at every larger N, or None."""
    faster = {}
    print(f"niter={niter}: N, one thread (ms), {threads} threads (ms)")
    for n in SIZES:
        X0, D, lr = make_case(n, 3, "float32")
        W = np.empty(ext.simd_workspace_size(n, 3, threads, X0.itemsize), X0.dtype)
        ext.simd_prepare(W, D, 3, threads)
        serial, parallel = interleaved_best(
            [lambda W=W, lr=lr, X0=X0, t=t: ext.simd(W, X0.copy(), lr, niter, t) for t in (1, threads)], REPEATS)
        faster[n] = parallel < serial
        print(f"  {n:4d} {serial * 1e3:9.3f} {parallel * 1e3:9.3f}")
    above = [n for n in SIZES if all(faster[m] for m in SIZES if m >= n)]
    return above[0] if above else None


def main(argv):
    threads = host.usable_cores()
    if threads < 2:
        sys.exit("one usable core: no threshold to measure")
    ext = mojo_build.load_extension()
    for niter in [int(a) for a in argv] or [100, 1000]:
        n = crossover(ext, niter, threads)
        if n is None:
            print(f"niter={niter}: up to N = {SIZES[-1]} (the largest tried), {threads} threads "
                  f"do not stay faster than one")
        else:
            print(f"niter={niter}: {threads} threads are faster than one from N = {n}")


if __name__ == "__main__":
    main(sys.argv[1:])
