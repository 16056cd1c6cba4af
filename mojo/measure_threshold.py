"""Measure where the tuned Mojo kernel starts to gain from a second thread (SERIAL_BELOW).

Runs the compiled kernel directly (gradi_mojo.simd, which honours ``threads`` exactly) on one
thread and on all cores, for growing N, dim 3, float32, best of 15 interleaved runs, and prints the
smallest N from which the parallel run is faster at every larger N tried.
Usage: python mojo/measure_threshold.py [niter ...]   (default: 100 1000)
"""

import os
import sys
import time

from gradi.backends import mojo_build
from gradi.testing import make_case

SIZES = (8, 16, 32, 64, 96, 128, 160, 192, 256, 384, 512)


def best_seconds(kernel, X0, D, lr, niter, threads_list, repeats=15):
    """Best time for each thread count, runs interleaved so a busy spell hits them alike."""
    best = {threads: float("inf") for threads in threads_list}
    for _ in range(repeats):
        for threads in threads_list:
            X = X0.copy()
            start = time.perf_counter()
            kernel(X, D, lr, niter, threads)
            best[threads] = min(best[threads], time.perf_counter() - start)
    return best


def crossover(niter, threads):
    kernel = mojo_build.load_extension().simd
    faster = {}
    print(f"niter={niter}: N, one thread (ms), {threads} threads (ms)")
    for n in SIZES:
        X0, D, lr = make_case(n, 3, "float32")
        best = best_seconds(kernel, X0, D, lr, niter, (1, threads))
        serial, parallel = best[1], best[threads]
        faster[n] = parallel < serial
        print(f"  {n:4d} {serial * 1e3:9.3f} {parallel * 1e3:9.3f}")
    above = [n for n in SIZES if all(faster[m] for m in SIZES if m >= n)]
    return above[0] if above else None


def main(argv):
    threads = os.cpu_count() or 1
    if threads < 2:
        sys.exit("one core: no threshold to measure")
    for niter in [int(a) for a in argv] or [100, 1000]:
        print(f"niter={niter}: parallel is faster from N = {crossover(niter, threads)}")


if __name__ == "__main__":
    main(sys.argv[1:])
