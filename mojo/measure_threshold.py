"""Measure where the tuned Mojo kernel starts to gain from a second thread (SERIAL_BELOW).

Runs the compiled kernel directly (gradi_mojo.simd, which honours ``threads`` exactly) on one
thread and on all usable cores, for growing N, dim 3, float32, best of 15 interleaved runs, and
prints the smallest N from which the parallel run is faster at every larger N tried (or that it
is faster at none of them).
Usage: python mojo/measure_threshold.py [niter ...]   (default: 100 1000)
"""

import sys
import time

import numpy as np

from gradi import host
from gradi.backends import mojo_build
from gradi.testing import make_case

SIZES = (8, 16, 32, 64, 96, 128, 160, 192, 256, 384, 512)


def best_seconds(run, X0, niter, threads_list, repeats=15):
    """Best time for each thread count, runs interleaved so a busy spell hits them alike."""
    best = {threads: float("inf") for threads in threads_list}
    for _ in range(repeats):
        for threads in threads_list:
            X = X0.copy()
            start = time.perf_counter()
            run(X, niter, threads)
            best[threads] = min(best[threads], time.perf_counter() - start)
    return best


def crossover(ext, niter, threads):
    """Smallest N of SIZES from which ``threads`` threads beat one at every larger N, or None."""
    faster = {}
    print(f"niter={niter}: N, one thread (ms), {threads} threads (ms)")
    for n in SIZES:
        X0, D, lr = make_case(n, 3, "float32")
        W = np.empty(ext.simd_workspace_size(n, 3, threads, X0.itemsize), X0.dtype)
        ext.simd_prepare(W, D, 3, threads)
        best = best_seconds(lambda X, k, t: ext.simd(W, X, lr, k, t), X0, niter, (1, threads))
        serial, parallel = best[1], best[threads]
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
