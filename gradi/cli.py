"""The ``gradi`` command line: ``gradi backends``, ``gradi solve``, ``gradi bench``, ``gradi launch``.

Bad arguments and bad input print one line (``gradi: error: ...``) and exit with code 2,
never a traceback (a missing optional package, e.g. plotly for --html, counts as bad input);
a diverging run prints why and exits with code 1; an interrupted bench exits with 130 after
writing what it measured. In a multi-process run (``--coordinator/--num-processes/--process-id``
or ``gradi launch``) a process that cannot join the run, or that loses another process, prints
one line and exits with code 3 (gradi.distributed); only process 0 prints results and writes files.
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from . import backends, distributed, launch, pictures, rowsolve, shapes
from .bench import machine, plots, report, sweep
from .align import procrustes_disparity
from .errors import DivergenceError
from .problem import distance_matrix
from .solver import solve

SHAPES = {"circle": (shapes.circle, 2), "sphere": (shapes.sphere, 3), "cube": (shapes.cube, None),
          "spiral": (shapes.spiral, 2), "helix": (shapes.helix, 3), "text": (shapes.text, 2)}
DEFAULT_POINTS = 100
LOCKSTEP_BUDGET = 1e9  # seconds per run: a budget no run reaches (multi-process bench)


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


def _shape(text):
    if text in SHAPES or text.lower().endswith(".csv"):
        return text
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(sorted(SHAPES))} or a .csv file, "
                                     f"got {text!r}")


def _positive(convert):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
        return value
    return parse


def _positive_ints(text):
    items = [item.strip() for item in text.split(",")]
    try:
        values = tuple(int(item) for item in items)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 1, got {text!r}")
    return values


def _backend_names(text):
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in backends.BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"known backends: {', '.join(backends.BACKENDS)}")
    return names


def build_parser():
    parser = _Parser(prog="gradi", description="Distance geometry by gradient descent, "
                     "solved in every stack a Python user would consider.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("backends", help="list backends and whether they can run here")
    listing.set_defaults(run=run_backends)

    solving = commands.add_parser("solve", help="recover a shape from its distance matrix")
    solving.add_argument("--shape", default="circle", type=_shape,
                         help=f"target shape: {', '.join(sorted(SHAPES))} (default circle), or a CSV "
                              f"file of points, one 'x,y' or 'x,y,z' per line")
    solving.add_argument("-n", "--points", type=int, default=None,
                         help=f"number of points N (default {DEFAULT_POINTS}; a CSV file sets its own)")
    solving.add_argument("--dim", type=int, default=None,
                         help="dimension (default: the shape's own, 2 for circle, 3 for sphere)")
    solving.add_argument("--backend", default="numpy", help="backend name (see gradi backends)")
    solving.add_argument("--threads", type=int, default=None, help="threads for parallel backends")
    solving.add_argument("--lr", type=_lr, default="auto", help="step size, or 'auto' (default)")
    solving.add_argument("--niter", type=int, default=1000, help="iterations (default 1000)")
    solving.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    solving.add_argument("--seed", type=int, default=42, help="seed of the start positions")
    solving.add_argument("--plot", metavar="PNG", help="write the final shape and the stress curve")
    solving.add_argument("--animate", metavar="GIF", help="write an animation of the points converging")
    solving.add_argument("--html", metavar="HTML", help="write an interactive page (needs plotly)")
    _add_multiprocess_options(solving)
    solving.set_defaults(run=run_solve)

    sweeping = commands.add_parser(
        "bench", help="time every backend over problem sizes: table, JSON, CSV and figures",
        description="Sweep backends x N x dim on the same problems, check each backend against "
                    "the reference, and time it. Defaults: every backend, N=10,100,1000, dim=2,3, "
                    "1000 iterations, float32, 3 repeats, each parallel backend's default threads "
                    "(all cores for most).")
    sweeping.add_argument("--quick", action="store_true",
                          help="a fast sweep (a few minutes): every backend, N up to 1000 where "
                               "one iteration fits the budget of 0.5 s per run")
    sweeping.add_argument("--backends", type=_backend_names, default=None,
                          help="comma-separated backend names (default: every registered backend)")
    sweeping.add_argument("--sizes", type=_positive_ints, default=None, help="comma-separated N values")
    sweeping.add_argument("--dims", type=_positive_ints, default=None, help="comma-separated dimensions")
    sweeping.add_argument("--niter", type=_positive(int), default=None, help="iterations per run")
    sweeping.add_argument("--threads", type=_positive(int), default=None,
                          help="threads for parallel backends (default: each backend's own, "
                               "all cores for most)")
    sweeping.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    sweeping.add_argument("--repeats", type=_positive(int), default=None, help="timed runs per measurement")
    sweeping.add_argument("--budget", type=_positive(float), default=None,
                          help="seconds per timed run before iterations are cut and the time "
                               "scaled (default 10, --quick 0.5)")
    sweeping.add_argument("--out", type=Path, default=None,
                          help="output folder (default results/bench-<timestamp>)")
    _add_multiprocess_options(sweeping)
    sweeping.set_defaults(run=run_bench)

    launching = commands.add_parser(
        "launch", help="run a gradi command as K local processes of one multi-process run",
        description="Start K processes of COMMAND on this host (loopback only) as one jax.distributed "
                    "run: each gets the coordinator's address, the process count and its index. "
                    "If one fails, the others are stopped and launch exits with its code.")
    launching.add_argument("-n", "--processes", type=_positive(int), required=True,
                           help="number of processes K")
    launching.add_argument("command", nargs=argparse.REMAINDER,
                           help="the command after --, e.g. -- gradi solve --backend jax-sharded ...")
    launching.set_defaults(run=run_launch)
    return parser


def _add_multiprocess_options(parser):
    """The settings of jax.distributed.initialize, for one process of a multi-process run."""
    group = parser.add_argument_group(
        "multi-process run (jax-sharded only; gradi launch sets these for local runs)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="address of process 0, which listens there")
    group.add_argument("--num-processes", type=_positive(int), default=None, help="processes in the run")
    group.add_argument("--process-id", type=int, default=None, help="this process's index, 0..K-1")
    group.add_argument("--connect-timeout", type=_positive(float), default=distributed.CONNECT_TIMEOUT,
                       help=f"seconds to wait for every process to join before giving up with exit "
                            f"code {distributed.EXIT_CODE} (default {distributed.CONNECT_TIMEOUT:g})")


def _multiprocess_run(args):
    """Join the multi-process run the flags (or gradi launch's variables) describe; False if alone."""
    given = (args.coordinator, args.num_processes, args.process_id)
    if any(value is not None for value in given):
        if None in given:
            raise ValueError("--coordinator, --num-processes and --process-id go together")
        settings = distributed.Settings(*given, connect_timeout=args.connect_timeout)
    else:
        settings = distributed.from_environment(args.connect_timeout)
    if settings is None or settings.num_processes == 1:
        return False
    chosen = args.backend if args.command == "solve" else ",".join(args.backends or ())
    if chosen != rowsolve.BACKEND:
        raise ValueError(f"a multi-process run needs --backend{'s' if args.command == 'bench' else ''} "
                         f"{rowsolve.BACKEND}, got {chosen or 'every backend'}")
    distributed.initialize(settings)
    return True


def run_launch(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return launch.launch(command, args.processes)


def run_backends(args):
    rows = [("name", "language", "tier", "parallel", "dtypes", "status")]
    for backend in backends.BACKENDS.values():
        rows.append((backend.name, backend.language, backend.tier,
                     "yes" if backend.parallel else "no", ",".join(backend.dtypes), backend.status()))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print()
    for backend in backends.BACKENDS.values():
        note = f"; {backend.precision_note}" if backend.precision_note else ""
        print(f"{backend.name.ljust(widths[0])}  {backend.summary}{note}")
    return 0


def make_target(shape, n, dim):
    """Points of the named shape or CSV file; ``dim`` only applies to shapes without a fixed one."""
    if shape not in SHAPES:
        points = shapes.load(shape)
        if n not in (None, len(points)):
            raise ValueError(f"{shape} has {len(points)} points; -n must be {len(points)} or omitted")
        if dim not in (None, points.shape[1]):
            raise ValueError(f"{shape} is {points.shape[1]}-D; --dim must be {points.shape[1]} or omitted")
        return points
    make, own_dim = SHAPES[shape]
    n = DEFAULT_POINTS if n is None else n
    if own_dim is not None:
        if dim not in (None, own_dim):
            raise ValueError(f"shape {shape!r} is {own_dim}-D; --dim must be {own_dim} or omitted")
        return make(n)
    return make(n, 3 if dim is None else dim)


def run_solve(args):
    multiprocess = _multiprocess_run(args)
    wanted = [(path, save) for path, save in ((args.plot, pictures.save_plot),
                                              (args.animate, pictures.save_animation),
                                              (args.html, pictures.save_html)) if path]
    if args.plot or args.animate:
        pictures.require("matplotlib", "plots", "--plot" if args.plot else "--animate")
    if args.html:
        pictures.require("plotly.graph_objects", "html", "--html")
    for path, _ in wanted:
        if not Path(path).resolve().parent.is_dir():
            raise ValueError(f"cannot write {path}: its folder does not exist")
    target = make_target(args.shape, args.points, args.dim)
    record_every = pictures.record_every_for(args.niter) if wanted else None
    if args.backend == rowsolve.BACKEND:  # each process computes only its rows of D
        result = rowsolve.solve_rows(rowsolve.PointRows(target, args.dtype), target.shape[1], lr=args.lr,
                                     niter=args.niter, threads=args.threads, seed=args.seed,
                                     record_every=record_every)
    else:
        result = solve(distance_matrix(target), target.shape[1], backend=args.backend,
                       lr=args.lr, niter=args.niter, threads=args.threads, dtype=args.dtype,
                       seed=args.seed, record_every=record_every)
    if distributed.process_index() != 0:
        return 0
    processes = f", processes={distributed.process_count()}" if multiprocess else ""
    print(f"backend {result.backend}, N={target.shape[0]}, dim={target.shape[1]}, "
          f"{result.dtype}, threads={result.threads}{processes}, lr={result.lr:.4g}, niter={result.niter}")
    print(f"final stress      {result.stress:.6g}")
    print(f"shape error       {procrustes_disparity(target, result.X):.3g} "
          f"(Procrustes disparity, 0 = same shape)")
    print(f"time              {result.elapsed:.4g} s "
          f"(+ {result.prepare_seconds:.3g} s compile/warm-up)")
    for path, save in wanted:
        save(target, result, path)
        print(f"wrote             {path}")
    return 0


def bench_settings(args):
    """Settings of a sweep: the defaults, then --quick's, then whatever was given explicitly."""
    chosen = {"backends": args.backends or tuple(backends.BACKENDS), "dtype": args.dtype,
              "threads": args.threads, **(sweep.QUICK if args.quick else {})}
    for name in ("sizes", "dims", "niter", "repeats", "budget"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    return sweep.Settings(**chosen)


def _lockstep(settings, args):
    """A multi-process sweep's settings: no time budget, so every process takes the same steps.

    The budget cuts runs by each process's own clock, which would let the processes' collectives
    fall out of step; without it every run does ``niter`` iterations.
    """
    if args.budget is not None:
        raise ValueError("--budget does not apply to a multi-process bench: every run does --niter "
                         "iterations, so that all processes take the same steps")
    return dataclasses.replace(settings, budget=LOCKSTEP_BUDGET)


def run_bench(args):
    settings = bench_settings(args)
    multiprocess = _multiprocess_run(args)
    if multiprocess:
        settings = _lockstep(settings, args)
    if distributed.process_index() != 0:
        sweep.run_sweep(settings)
        return 0
    out_dir = args.out or Path("results") / time.strftime("bench-%Y%m%d-%H%M%S")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {out_dir}: {exc.strerror}") from None
    print(f"gradi bench: {len(settings.backends)} backends, N={','.join(map(str, settings.sizes))}, "
          f"dim={','.join(map(str, settings.dims))}, {settings.niter} iterations, {settings.dtype}, "
          f"{settings.repeats} repeats, budget {settings.budget:g} s per run", file=sys.stderr)
    load = machine.busy_load()
    if load and load[0] > (os.cpu_count() or 1) / 2:
        print(f"gradi bench: note: the machine is busy (load average {load[0]:.1f} on "
              f"{os.cpu_count()} cores); timings will be slower and noisier", file=sys.stderr)
    outcome = sweep.run_sweep(settings, sweep.Progress(sys.stderr))
    if outcome.interrupted:
        print(f"\ninterrupted: writing the {len(outcome.measurements)} measurements that finished",
              file=sys.stderr)
    rows = report.rows(outcome)
    text = "\n".join([report.format_table(rows), *report.headlines(rows)])
    if multiprocess:
        text += (f"\n{rowsolve.BACKEND} ran as {distributed.process_count()} processes of one "
                 f"jax.distributed run; threads = devices per process")
    paths = report.write_results(out_dir, outcome, rows, text, sys.argv)
    try:
        paths += plots.save_bench_figures(rows, out_dir)
    except ImportError as exc:
        print(f"gradi: figures skipped ({exc}); pip install 'gradi[plots]'", file=sys.stderr)
    print(text)
    print("\n".join(f"wrote {path}" for path in paths))
    return 130 if outcome.interrupted else 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"gradi: error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"gradi: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
