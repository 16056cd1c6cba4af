"""Measure where cpp-simd starts to gain from threads: the data behind kSimdParallelMinN.

For each N, times ``descend_simd`` on one thread and on ``--threads`` threads (the serial cut-off
disabled), float32, dim 3, best of ``--repeats`` interleaved runs of about 50 ms each, and prints
the ratio. The threshold is the smallest N from which every larger N measured is faster in
parallel. Run it on a quiet machine: ``python native/measure_threshold.py``.
"""

import argparse
import time

from gradi import _native
from gradi.testing import make_case


def best_time(X0, D, lr, niter, threads, repeats):
    times = []
    for _ in range(repeats):
        X = X0.copy()
        start = time.perf_counter()
        _native.descend_simd(X, D, lr, niter, threads, parallel_min_n=0)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"isa {_native.simd_isa()}, float32, dim 3, 1 vs {args.threads} threads")
    faster = {}
    for n in args.sizes:
        X0, D, lr = make_case(n, 3, "float32")
        niter = max(20, int(3e7 / (n * n)))  # about 50 ms serially
        serial = parallel = float("inf")
        for _ in range(args.repeats):  # interleaved so that load changes hit both alike
            serial = min(serial, best_time(X0, D, lr, niter, 1, 1))
            parallel = min(parallel, best_time(X0, D, lr, niter, args.threads, 1))
        faster[n] = parallel < serial
        print(f"N={n:5d} niter={niter:6d}  1 thread {serial / niter * 1e6:8.2f} us/iter  "
              f"{args.threads} threads {parallel / niter * 1e6:8.2f} us/iter  "
              f"speed-up {serial / parallel:5.2f}")
    sizes = sorted(faster)
    threshold = next((n for k, n in enumerate(sizes) if all(faster[m] for m in sizes[k:])), None)
    print(f"parallel pays from N = {threshold}" if threshold else "parallel never paid")


if __name__ == "__main__":
    main()
