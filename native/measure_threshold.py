"""Measure where cpp-simd starts to gain from threads: the data behind kSimdParallelMinN.

For each N, times ``SimdState.descend`` (the state built once, outside the timing) on one thread
and on ``--threads`` threads (the serial cut-off disabled), float32, dim 3, best of ``--repeats``
interleaved runs of about 30 ms each, and prints the ratio. The threshold is the smallest N from
which every larger N measured is faster in parallel. Run it on a quiet machine:
``python native/measure_threshold.py``.
"""

import argparse

from gradi import _native
from gradi.bench.prepared import interleaved_best
from gradi.testing import make_case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[64, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"isa {_native.simd_isa()}, float32, dim 3, 1 vs {args.threads} threads")
    faster = {}
    for n in args.sizes:
        X0, D, lr = make_case(n, 3, "float32")
        niter = max(20, int(4e8 / (n * n)))  # about 30 ms serially
        one = _native.SimdState(D, 3, lr, 1)
        team = _native.SimdState(D, 3, lr, args.threads, parallel_min_n=0)
        runs = [lambda state=state, X0=X0, niter=niter: state.descend(X0.copy(), niter) for state in (one, team)]
        serial, parallel = interleaved_best(runs, args.repeats)  # interleaved: load changes hit both alike
        faster[n] = parallel < serial
        print(f"N={n:5d} niter={niter:6d}  1 thread {serial / niter * 1e6:8.2f} us/iter  "
              f"{args.threads} threads {parallel / niter * 1e6:8.2f} us/iter  "
              f"speed-up {serial / parallel:5.2f}")
    sizes = sorted(faster)
    threshold = next((n for k, n in enumerate(sizes) if all(faster[m] for m in sizes[k:])), None)
    print(f"parallel pays from N = {threshold}" if threshold else "parallel never paid")


if __name__ == "__main__":
    main()
