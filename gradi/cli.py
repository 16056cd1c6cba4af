"""The ``gradi`` command line: ``gradi backends``, ``gradi solve``.

Bad arguments and bad input print one line (``gradi: error: ...``) and exit with code 2,
never a traceback; a diverging run prints why and exits with code 1.
"""

import argparse
import sys

from . import backends, shapes
from .align import procrustes_disparity
from .errors import DivergenceError
from .problem import distance_matrix
from .solver import solve

SHAPES = {"circle": (shapes.circle, 2), "sphere": (shapes.sphere, 3), "cube": (shapes.cube, None)}


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _lr(text):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, got {text!r}") from None


def build_parser():
    parser = _Parser(prog="gradi", description="Distance geometry by gradient descent, "
                     "solved in every stack a Python user would consider.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("backends", help="list backends and whether they can run here")
    listing.set_defaults(run=run_backends)

    solving = commands.add_parser("solve", help="recover a shape from its distance matrix")
    solving.add_argument("--shape", default="circle", choices=sorted(SHAPES),
                         help="target shape (default circle)")
    solving.add_argument("-n", "--points", type=int, default=100, help="number of points N")
    solving.add_argument("--dim", type=int, default=None,
                         help="dimension (default: the shape's own, 2 for circle, 3 for sphere)")
    solving.add_argument("--backend", default="numpy", help="backend name (see gradi backends)")
    solving.add_argument("--threads", type=int, default=None, help="threads for parallel backends")
    solving.add_argument("--lr", type=_lr, default="auto", help="step size, or 'auto' (default)")
    solving.add_argument("--niter", type=int, default=1000, help="iterations (default 1000)")
    solving.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    solving.add_argument("--seed", type=int, default=42, help="seed of the start positions")
    solving.set_defaults(run=run_solve)
    return parser


def run_backends(args):
    rows = [("name", "language", "tier", "parallel", "dtypes", "status")]
    for backend in backends.BACKENDS.values():
        status = "available" if backend.available else f"unavailable: {backend.unavailable_reason}"
        rows.append((backend.name, backend.language, backend.tier,
                     "yes" if backend.parallel else "no", ",".join(backend.dtypes), status))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def make_target(shape, n, dim):
    """Points of the named shape; ``dim`` only applies to shapes that have no fixed dimension."""
    make, own_dim = SHAPES[shape]
    if own_dim is not None:
        if dim not in (None, own_dim):
            raise ValueError(f"shape {shape!r} is {own_dim}-D; --dim must be {own_dim} or omitted")
        return make(n)
    return make(n, dim or 3)


def run_solve(args):
    target = make_target(args.shape, args.points, args.dim)
    result = solve(distance_matrix(target), target.shape[1], backend=args.backend,
                   lr=args.lr, niter=args.niter, threads=args.threads, dtype=args.dtype,
                   seed=args.seed)
    print(f"backend {result.backend}, N={target.shape[0]}, dim={target.shape[1]}, "
          f"{result.dtype}, threads={result.threads}, lr={result.lr:.4g}, niter={result.niter}")
    print(f"final stress      {result.stress:.6g}")
    print(f"shape error       {procrustes_disparity(target, result.X):.3g} "
          f"(Procrustes disparity, 0 = same shape)")
    print(f"time              {result.elapsed:.4g} s "
          f"(+ {result.prepare_seconds:.3g} s compile/warm-up)")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"gradi: error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"gradi: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
