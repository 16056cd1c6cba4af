"""The ``gradi`` command line: ``gradi backends``, ``solve``, ``bench``, ``machine``, ``launch``.

Every failure is one line on stderr that starts with the command (``gradi solve: error: ...``),
never a traceback; an option out of its range is named (``argument --tol: ...``). Bad arguments,
bad input files and problems refused before solving exit with code 2 (a missing optional
package, e.g. plotly for --html, counts as bad input); a diverging run, an output that cannot
be written (a full disk, a closed pipe) and a bench in which no case could be measured exit
with 1; Ctrl-C exits with 130 (an interrupted bench first writes what it measured). Output
paths are checked before solving: none may be an input file or another output (compared as
files), and the path printed is the file written.

Memory is judged from N alone, before any N x N array exists: ``gradi solve`` refuses a
command whose whole peak (gradi.memory.plan: what the process holds, its input D, the solve, the
recording and the pictures) does not fit in the memory available, and ``--dry-run`` prints that
peak without reading D's values; ``gradi bench`` refuses a size whose cases cannot be built.

A multi-process run (``--coordinator/--num-processes/--process-id`` on ``solve`` and ``bench``,
or ``gradi launch -n K -- gradi solve ...``) is ``jax-sharded`` only; only process 0 prints
results and writes files. A process that cannot join the run within ``--connect-timeout``, or
that loses another process of it, prints one line and exits with code 3 (gradi.sharded.distributed);
a process of the run that fails or is interrupted ends at once (Ctrl-C: 130, an interrupted
multi-process bench writes nothing), so the others end too; ``gradi launch`` exits with the code
of the first process that failed.
"""

import argparse
import dataclasses
import importlib
import math
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from . import backends, host, io, memory, pictures, shapes
from .align import procrustes_disparity
from .bench import counted, machine, plots, probes, report, roofline, solution, solution_report, sweep
from .columns import aligned
from .convergence import DEFAULT_CHECK_EVERY
from .errors import DivergenceError
from .problem import ProblemSize, distance_matrix
from .rows import MatrixRows, PointRows
from .sharded import distributed, launch
from .sharded.backend import JaxSharded
from .solver import solve
from .validation import MAX_NITER, MAX_THREADS, ensure_runnable, resolve_threads

SHARDED = JaxSharded.name  # the backend of multi-process runs

DEFAULT_POINTS = 100
DEFAULT_DISTANCES_DIM = 2  # solve()'s default dimension
LOCKSTEP_BUDGET = 1e9  # seconds per run: a budget no run reaches (multi-process bench)


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class OutputError(Exception):
    """An output file could not be written after the solve (a full disk, a vanished folder)."""


def _lr(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive finite number, got {text!r}")
    return value


def _integer(minimum, maximum=None):
    """An argparse type: an integer in [minimum, maximum], the range named in its error."""
    large_power_of_two = maximum is not None and maximum > 1024 and maximum & (maximum - 1) == 0
    shown = f"2**{maximum.bit_length() - 1}" if large_power_of_two else maximum
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {shown}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}, got {value}")
        return value
    return parse


def _fraction(text):
    """An argparse type: a number strictly between 0 and 1 (a relative decrease)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def _file_name(text):
    """An argparse type: a path that is not empty (an empty one would silently name nothing)."""
    if not text:
        raise argparse.ArgumentTypeError("needs a file name, got an empty one")
    return text


def _shape(text):
    if text in shapes.NAMED or text.lower().endswith(".csv"):
        return text
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(sorted(shapes.NAMED))} or a .csv file, "
                                     f"got {text!r}")


def _positive(convert):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
        if value == math.inf:
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        return value
    return parse


def _seconds(maximum):
    """An argparse type: a number of seconds in (0, maximum]."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= maximum:
            raise argparse.ArgumentTypeError(f"must be a number of seconds in (0, {maximum:g}], got {text!r}")
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
    return tuple(dict.fromkeys(values))  # each value once, in the order given


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
    _solve_arguments(solving)
    _add_multiprocess_options(solving)
    solving.set_defaults(run=run_solve)

    sweeping = commands.add_parser(
        "bench", help="time every backend over problem sizes: table, JSON, CSV and figures",
        description="Sweep backends x N x dim on the same problems, check each backend against "
                    "the reference, and time it. Defaults: every backend, N=10,100,1000, dim=2,3, "
                    "1000 iterations, float32, 3 repeats, each parallel backend's default threads "
                    "(all cores for most).")
    sweeping.add_argument("--quick", action="store_true",
                          help="a fast sweep (about a minute on 2 idle cores): every backend, N up "
                               "to 1000 where one iteration fits the budget of 0.5 s per run")
    sweeping.add_argument("--backends", type=_backend_names, default=None,
                          help="comma-separated backend names (default: every registered backend)")
    sweeping.add_argument("--sizes", type=_positive_ints, default=None, help="comma-separated N values")
    sweeping.add_argument("--dims", type=_positive_ints, default=None, help="comma-separated dimensions")
    sweeping.add_argument("--niter", type=_integer(1, MAX_NITER), default=None, help="iterations per run")
    sweeping.add_argument("--threads", type=_integer(1, MAX_THREADS), default=None,
                          help="threads for parallel backends (default: each backend's own, "
                               "all cores for most)")
    sweeping.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    sweeping.add_argument("--repeats", type=_positive(int), default=None, help="timed runs per measurement")
    sweeping.add_argument("--budget", type=_positive(float), default=None,
                          help="seconds per timed run before iterations are cut and the time "
                               "scaled (default 10, --quick 0.5)")
    sweeping.add_argument("--out", type=lambda text: Path(_file_name(text)), default=None,
                          help="output folder (default results/bench-<timestamp>)")
    _add_to_solution_arguments(sweeping)
    _add_measure_option(sweeping)
    _add_multiprocess_options(sweeping)
    sweeping.set_defaults(run=run_bench)
    _add_machine_command(commands)
    _add_launch_command(commands)
    return parser


def _add_multiprocess_options(parser):
    """The settings of jax.distributed.initialize, for one process of a multi-process run."""
    group = parser.add_argument_group(
        "multi-process run (jax-sharded only; gradi launch sets these for local runs)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="address of process 0, which listens there")
    group.add_argument("--num-processes", type=_integer(1, distributed.MAX_PROCESSES), default=None,
                       help="processes in the run")
    group.add_argument("--process-id", type=_integer(0, distributed.MAX_PROCESSES - 1), default=None,
                       help="this process's index, 0..K-1")
    group.add_argument("--connect-timeout", type=_seconds(distributed.MAX_CONNECT_TIMEOUT),
                       default=distributed.CONNECT_TIMEOUT,
                       help=f"seconds to wait for every process to join before giving up with exit "
                            f"code {distributed.EXIT_CODE} (default {distributed.CONNECT_TIMEOUT:g})")


def _add_launch_command(commands):
    launching = commands.add_parser(
        "launch", help="run a gradi command as K local processes of one multi-process run",
        description="Start K processes of COMMAND on this host (loopback only) as one jax.distributed "
                    "run: each gets the coordinator's address, the process count and its index. "
                    "If one fails, the others are stopped and launch exits with its code.")
    launching.add_argument("-n", "--processes", type=_integer(1, distributed.MAX_PROCESSES), required=True,
                           help="number of processes K")
    launching.add_argument("argv", metavar="COMMAND", nargs=argparse.REMAINDER,
                           help="the command after --, e.g. -- gradi solve --backend jax-sharded ...")
    launching.set_defaults(run=run_launch)


def run_launch(args):
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return launch.launch(command, args.processes)


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
    if chosen != SHARDED:
        raise ValueError(f"a multi-process run needs --backend{'s' if args.command == 'bench' else ''} "
                         f"{SHARDED}, got {chosen or 'every backend'}")
    distributed.initialize(settings, f"gradi {args.command}")
    return True


def _add_to_solution_arguments(sweeping):
    sweeping.add_argument("--to-solution", action="store_true",
                          help="instead of the fixed-iteration sweep: seconds for each backend (stopped "
                               "by its own tol), scikit-learn's SMACOF and s_gd2 to reach a target accuracy "
                               "(defaults: N=300,1000, dim=2,3, budget 10 s per solver and case)")
    sweeping.add_argument("--target", type=_positive(float), default=None,
                          help=f"with --to-solution: the Procrustes disparity to reach "
                               f"(default {solution.DEFAULT_TARGET:g})")
    sweeping.add_argument("--shape", choices=sorted(shapes.NAMED), default=None,
                          help="with --to-solution: the shape every case recovers (default circle in 2-D, "
                               "sphere in 3-D; a shape of its own dimension sets --dims)")


def _add_machine_command(commands):
    measuring = commands.add_parser(
        "machine", help="measure this machine's ceilings: clock, vector FMA rate, the kernels' op mix, "
                        "cache, memory bandwidth, core-to-core round trip",
        description="Measure, in a few seconds, what bounds the pair-update loop here: the clock "
                    "(dependent multiplies, cross-checked by dependent FMAs), vector FMA throughput "
                    "and the kernels' own op mix per core for each instruction set, the usable cores, "
                    "the cache (the knee of a read sweep), the memory read bandwidth and the "
                    "core-to-core round trip; then print the pair-update ceilings they give (op mix, "
                    "FMA-only and memory, dim 2 and 3). gradi bench stores the same in bench.json.")
    measuring.set_defaults(run=run_machine)


def run_machine(args):
    hardware, reason = probes.measured()
    if hardware is None:
        raise ImportError(reason)
    print(roofline.describe(hardware, hardware.cores))
    return 0


def run_backends(args):
    rows = [("name", "language", "tier", "parallel", "dtypes", "status")]
    for backend in backends.BACKENDS.values():
        rows.append((backend.name, backend.language, backend.tier,
                     "yes" if backend.parallel else "no", ",".join(backend.dtypes), backend.status()))
    print("\n".join(aligned(rows, width_of=len(rows[0]) - 1)))
    print()
    summaries = [(backend.name, "; ".join(filter(None, (backend.summary, backend.precision_note))))
                 for backend in backends.BACKENDS.values()]
    print("\n".join(aligned(summaries, width_of=1)))
    return 0


def _solve_arguments(solving):
    """The options of ``gradi solve``: what to solve, how, and which files to write."""
    source = solving.add_mutually_exclusive_group()
    source.add_argument("--shape", default="circle", type=_shape,
                        help=f"target shape: {', '.join(sorted(shapes.NAMED))} (default circle), or a "
                             f"CSV file of points, one 'x,y' or 'x,y,z' per line")
    source.add_argument("--distances", metavar="FILE", type=_file_name, default=None,
                        help="solve your own N x N distance matrix instead of a shape: a .csv file "
                             "(one row per line, numbers separated by commas) or a .npy file "
                             "(memory-mapped)")
    solving.add_argument("-n", "--points", type=_integer(2), default=None,
                         help=f"number of points N (default {DEFAULT_POINTS}; a file sets its own)")
    solving.add_argument("--dim", type=_integer(1), default=None,
                         help=f"dimension (default: the shape's own, 2 for circle, 3 for sphere; "
                              f"{DEFAULT_DISTANCES_DIM} with --distances)")
    solving.add_argument("--backend", default="numpy", help="backend name (see gradi backends)")
    solving.add_argument("--threads", type=_integer(1, MAX_THREADS), default=None,
                         help="threads for parallel backends")
    solving.add_argument("--lr", type=_lr, default="auto", help="step size, or 'auto' (default)")
    solving.add_argument("--niter", type=_integer(0, MAX_NITER), default=1000, help="iterations (default 1000)")
    solving.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    solving.add_argument("--seed", type=_integer(0), default=42, help="seed of the start positions")
    solving.add_argument("--tol", type=_fraction, default=None,
                         help="stop once the stress decreased by less than this fraction over a "
                              "check interval (default: run all --niter iterations)")
    solving.add_argument("--check-every", type=_integer(1, MAX_NITER), default=None,
                         help=f"iterations between two convergence checks with --tol (default {DEFAULT_CHECK_EVERY})")
    solving.add_argument("--dry-run", action="store_true",
                         help="check everything and print the plan (sizes, step size, memory needed "
                              "and available) without solving or writing anything")
    solving.add_argument("--plot", metavar="IMAGE", type=_file_name,
                         help="write the final positions and the stress curve (PNG, or the format "
                              "the extension names: .svg, .pdf, ...)")
    solving.add_argument("--animate", metavar="GIF", type=_file_name, help="write a GIF of the points converging")
    solving.add_argument("--html", metavar="HTML", type=_file_name, help="write an interactive page (needs plotly)")
    solving.add_argument("--out", metavar="FILE", type=_file_name,
                         help="write the recovered positions (N x dim), as .csv or .npy")
    solving.add_argument("--json", metavar="FILE", type=_file_name, help="write a summary of the run as JSON")


class _Source:
    """What ``gradi solve`` solves: a named shape, a CSV file of points, or a distance file.

    ``n`` and ``dim`` are known before anything is built or parsed (from -n, a .npy header,
    a count of a CSV file's rows), so a problem too large for this machine is refused from N
    alone; ``target`` is the shape's points (None for a distance file) once ``distances`` has
    built D. ``files`` are the input files, [(option, path)], which no output may overwrite.
    """

    def __init__(self, args):
        self.target = None
        if args.distances is not None:
            self.name, self.n = args.distances, io.matrix_size(args.distances)
            _must_match("-n", args.points, self.n, f"{args.distances} has {self.n} points")
            self.dim = DEFAULT_DISTANCES_DIM if args.dim is None else args.dim
            self.files = [("--distances", args.distances)]
        elif args.shape in shapes.NAMED:
            self.name = args.shape
            self.n = DEFAULT_POINTS if args.points is None else args.points
            own_dim = shapes.NAMED[args.shape][1]
            _must_match("--dim", args.dim, own_dim, f"shape {args.shape!r} is {own_dim}-D")
            self.dim = own_dim or (3 if args.dim is None else args.dim)
            self.files = []
        else:
            self.name = args.shape
            self.n, self.dim = io.csv_shape(args.shape, "shape file")  # counted, not parsed yet
            _must_match("-n", args.points, self.n, f"{args.shape} has {self.n} points")
            _must_match("--dim", args.dim, self.dim, f"{args.shape} is {self.dim}-D")
            self.files = [("--shape", args.shape)]
        self._distances, self._dtype = args.distances, args.dtype

    def distances(self):
        """D (N x N) in the solve's dtype: read from the file, or computed from the shape's
        points, a row block at a time (no float64 N x N copy of a float32 D)."""
        if self._distances is not None:
            return io.read_distances(self._distances, self._dtype)
        self.target = self._points()
        return distance_matrix(self.target, self._dtype)

    def rows(self):
        """D as a row source for jax-sharded (gradi.rows): never whole in one place."""
        if self._distances is not None:
            return MatrixRows(self._distances)
        self.target = self._points()
        return PointRows(self.target)

    def _points(self):
        if self.name in shapes.NAMED:
            return shapes.named(self.name, self.n, self.dim)
        return shapes.load(self.name, self._dtype)


def _must_match(option, given, value, fact):
    if given is not None and value is not None and given != value:
        raise ValueError(f"{fact}; {option} must be {value} or omitted")


def run_solve(args):
    multiprocess = _multiprocess_run(args)
    if args.check_every is not None and args.tol is None:
        raise ValueError("--check-every only applies with --tol; give --tol too")
    source = _Source(args)
    outputs = _outputs(args, source.files)
    runner = backends.get(args.backend)
    threads = resolve_threads(runner, args.threads)
    pictures_asked = [option for option, _ in outputs if option in ("plot", "animate", "html")]
    record_every = pictures.record_every_for(args.niter) if pictures_asked else None
    whole = runner.name != SHARDED  # jax-sharded: each process reads only its rows of D
    ensure_runnable(runner, ProblemSize(source.n, source.dim, np.dtype(args.dtype), whole), threads)
    # Loaded before the plan, which measures what the process holds: the backend's runtime, and
    # the report's Procrustes.
    runner.load_runtime()
    if args.distances is None:
        importlib.import_module("scipy.spatial")
    records = 0 if record_every is None else -(-args.niter // record_every) + 1
    plan = memory.plan(runner, source.n, source.dim, args.dtype, threads, records, pictures_asked, whole)
    reason = memory.too_large(runner, source.n, args.dtype, plan.more)
    if reason is not None:
        raise ValueError(reason)
    if args.dry_run:
        if distributed.process_index() == 0:
            lr = "auto (chosen from D when solving)" if args.lr == "auto" else f"{args.lr:.4g}"
            _plan(args, runner.name, threads, source, lr, plan,
                  "every check that does not need D's values (checked when solving)")
        return 0
    D = source.distances() if whole else source.rows()
    result = solve(D, source.dim, backend=runner.name, lr=args.lr, niter=args.niter,
                   threads=threads, dtype=args.dtype, seed=args.seed, record_every=record_every,
                   tol=args.tol, check_every=args.check_every)
    if distributed.process_index() == 0:  # every process has the result; process 0 prints and writes
        _report(args, outputs, source, result,
                f", processes={distributed.process_count()}" if multiprocess else "")
    return 0


def _report(args, outputs, source, result, processes=""):
    """Print the outcome of a solve and write the files asked for."""
    disparity = None if source.target is None else procrustes_disparity(source.target, result.X)
    print(_header(result.backend, source.n, source.dim, result.dtype, result.threads,
                  f"{result.lr:.4g}" + (" (auto)" if args.lr == "auto" else ""))
          + f"{processes}, iterations={result.iterations} of {result.niter} ({result.stop_reason})")
    print(f"final stress      {result.stress:.6g}")
    if disparity is not None:
        print(f"shape error       {disparity:.3g} (Procrustes disparity, 0 = same shape)")
    print(f"time              {result.elapsed:.4g} s (+ {result.prepare_seconds:.3g} s compile/warm-up)")
    _write(outputs, source, result, _summary(args, source, result, disparity))


def _header(backend, n, dim, dtype, threads, lr):
    return f"backend {backend}, N={n}, dim={dim}, {dtype}, threads={threads}, lr={lr}"


def _plan(args, backend, threads, source, lr, plan, checked="every check"):
    """Print what a solve would do (the dry run), what this machine has, and what was checked."""
    have, installed = host.available_memory(), host.physical_memory()
    print(_header(backend, source.n, source.dim, args.dtype, threads, lr)
          + f", niter={args.niter}" + (f", tol={args.tol:g}" if args.tol else ""))
    size = memory.size_text
    print(f"memory            about {size(plan.peak, round_up=True)} at the peak, {size(plan.held)} of it "
          f"in use now; " + (f"{size(have)} available of {size(installed)}" if have and installed
                             else "available unknown"))
    print(f"machine           {host.cpuinfo_field('model name') or 'CPU unknown'}, "
          f"{host.usable_cores()} usable cores")
    print(f"dry run           {checked} passed; nothing was solved or written")


def _outputs(args, inputs):
    """[(option, path)] of the files asked for, each checked before solving: its format, that
    the libraries it needs are installed, that the path can be written, and that it is neither
    an input file (``inputs``, [(option, path)]) nor another output (compared as files: the same
    device and inode, or the same resolved path)."""
    if args.plot or args.animate:
        pictures.require("matplotlib", "plots", "--plot" if args.plot else "--animate")
    if args.html:
        pictures.require("plotly.graph_objects", "html", "--html")
    if args.plot:
        pictures.plot_format(args.plot)
    if args.out:
        io.matrix_format(args.out, "--out")
    outputs, seen = [], {io.same_file_key(path): (option, path) for option, path in inputs}
    for option in ("plot", "animate", "html", "out", "json"):
        path = getattr(args, option)
        if path:
            io.check_writable(path, f"--{option}")
            same, named = seen.setdefault(io.same_file_key(path), (f"--{option}", path))
            if same in dict(inputs):
                raise ValueError(f"--{option} {path} is the input file {same} {named}: writing it would "
                                 f"destroy the input; choose another name")
            if same != f"--{option}":
                raise ValueError(f"{same} {named} and --{option} {path} name the same file")
            outputs.append((option, path))
    return outputs


def _summary(args, source, result, disparity):
    return {"format": "gradi-solve/1", "input": source.name, "n": source.n, "dim": source.dim,
            "backend": result.backend, "threads": result.threads,
            "processes": distributed.process_count(), "dtype": result.dtype,
            "lr": result.lr, "lr_auto": args.lr == "auto", "niter": result.niter,
            "iterations": result.iterations, "stop_reason": result.stop_reason, "tol": args.tol, "seed": args.seed,
            "final_stress": result.stress, "seconds": result.elapsed,
            "prepare_seconds": result.prepare_seconds, "procrustes_disparity": disparity}


def _write(outputs, source, result, summary):
    """Write every output asked for; a failure (a full disk...) is an OutputError naming the file."""
    writers = {"plot": lambda path: pictures.save_plot(source.target, result, path),
               "animate": lambda path: pictures.save_animation(source.target, result, path),
               "html": lambda path: pictures.save_html(source.target, result, path),
               "out": lambda path: io.write_positions(path, result.X),
               "json": lambda path: io.write_json(path, summary)}
    for option, path in outputs:
        try:
            writers[option](path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote             {path}")


def bench_settings(args):
    """Settings of a sweep: the defaults, then --quick's, then whatever was given explicitly."""
    chosen = {"backends": args.backends or tuple(backends.BACKENDS), "dtype": args.dtype,
              "threads": args.threads, **(sweep.QUICK if args.quick else {})}
    for name in ("sizes", "dims", "niter", "repeats", "budget"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    return sweep.Settings(**chosen)


def _add_measure_option(sweeping):
    sweeping.add_argument("--measure", choices=["time", "instructions"], default="time",
                          help="time (default): the sweep; instructions: count one descend call "
                               "of each backend under valgrind and print instructions and "
                               "estimated cycles per pair-update (uses --backends only)")


def run_counted(args):
    """``gradi bench --measure instructions``: the counted table (gradi.bench.counted)."""
    reason = counted.unavailable_reason()
    if reason is not None:
        raise ValueError(f"--measure instructions: {reason}")
    names = args.backends or tuple(backends.BACKENDS)
    print(f"gradi bench --measure instructions: {len(names)} backends under {counted.valgrind_version()} "
          f"callgrind, one descend call each, one thread, {counted.DTYPE} sphere, "
          f"{counted.COUNTED_CPU} code path (takes a few minutes)", file=sys.stderr)
    outcomes = counted.count_all(names)
    print(counted.format_table(outcomes))
    return 1 if any(isinstance(outcome, counted.CountFailed) for outcome in outcomes.values()) else 0


def _output_folder(args, stem):
    out_dir = args.out or Path("results") / time.strftime(f"{stem}-%Y%m%d-%H%M%S")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {out_dir}: {exc.strerror}") from None
    return out_dir


def run_to_solution(args):
    """``gradi bench --to-solution``: time to a target accuracy, every backend and the peers."""
    chosen = {"backends": args.backends or tuple(backends.BACKENDS), "dtype": args.dtype,
              "threads": args.threads}
    for name in ("sizes", "dims", "repeats", "budget", "target", "shape"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    settings = solution.Settings(**chosen)
    _refuse_sizes_too_large(settings)
    out_dir = _output_folder(args, "to-solution")
    outcomes = solution.run(settings, lambda what: print(f"gradi bench: {what}", file=sys.stderr))
    text = solution_report.format_table(outcomes, settings)
    try:
        paths = solution_report.write_results(out_dir, outcomes, settings, text, sys.argv)
    except OSError as exc:
        raise OutputError(f"cannot write the results in {out_dir}: {exc.strerror or exc}") from None
    print(text)
    print("\n".join(f"wrote {path}" for path in paths))
    counts = Counter(outcome.status for outcome in outcomes)
    if not counts["ok"] + counts["not reached"]:
        found = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no cases"
        print(f"gradi bench: error: no solver could be run ({found}); the reasons are above", file=sys.stderr)
        return 1
    return 0


def _refuse_sizes_too_large(settings):
    """Refuse (ValueError) a size of which even the smallest case, its D and the validated copy,
    cannot fit in the memory left: no backend could run it. (Each case is checked again when the
    sweep reaches it, and skipped with the reason if memory has run short meanwhile.)"""
    for n in settings.sizes:
        reason = memory.refusal(f"--sizes {n} is too large: a case of N={n}",
                                memory.case_bytes(n, min(settings.dims), settings.dtype))
        if reason is not None:
            raise ValueError(f"{reason}; give smaller sizes")


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
    multiprocess = _multiprocess_run(args)
    if multiprocess and (args.measure != "time" or args.to_solution):
        raise ValueError("a multi-process bench times the fixed-iteration sweep only; --measure "
                         "instructions and --to-solution run in one process")
    for name in ("target", "shape"):
        if getattr(args, name) is not None and not args.to_solution:
            raise ValueError(f"--{name} only applies with --to-solution")
    if args.measure == "instructions":
        return run_counted(args)
    if args.to_solution:
        return run_to_solution(args)
    settings = bench_settings(args)
    _refuse_sizes_too_large(settings)
    if multiprocess:
        settings = _lockstep(settings, args)
    if distributed.process_index() != 0:
        sweep.run_sweep(settings)
        return 0
    out_dir = _output_folder(args, "bench")
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
        text += (f"\n{SHARDED} ran as {distributed.process_count()} processes of one "
                 f"jax.distributed run; threads = devices per process")
    try:
        paths = report.write_results(out_dir, outcome, rows, text, sys.argv)
        paths += plots.save_bench_figures(rows, out_dir)
    except ImportError as exc:
        print(f"gradi bench: figures skipped ({exc}); pip install 'gradi[plots]'", file=sys.stderr)
    except OSError as exc:
        raise OutputError(f"cannot write the results in {out_dir}: {exc.strerror or exc}") from None
    print(text)
    print("\n".join(f"wrote {path}" for path in paths))
    if outcome.interrupted:
        return 130
    counts = Counter(measurement.status for measurement in outcome.measurements)
    if not counts["ok"]:
        found = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no cases"
        print(f"gradi bench: error: no case could be measured ({found}); the reasons are above",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    """Run the command line and return its exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)  # a parse error exits here with code 2 (argparse)
    command = f"gradi {args.command}"
    try:
        code = _run(args, command)
        sys.stdout.flush()  # here, not at exit: a closed pipe or a full disk is reported as an error
    except KeyboardInterrupt:
        say(f"{command}: interrupted")
        code = 130
    except OSError as exc:  # files raise OutputError (see _write, run_bench): this is standard output
        _discard_stdout()
        say(f"{command}: error: cannot write to standard output: {exc.strerror or exc}")
        code = 1
    distributed.leave(code)  # a failed process of a multi-process run ends now, with the others
    return code


def _run(args, command):
    """Run the chosen subcommand; errors become one line starting with ``command``."""
    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        say(f"{command}: warning: {message}")

    with warnings.catch_warnings():
        warnings.showwarning = one_line_warning
        try:
            return args.run(args)
        except DivergenceError as exc:
            say(f"{command}: {exc}")
            return 1
        except OutputError as exc:
            say(f"{command}: error: {exc}")
            return 1
        except (ValueError, TypeError, ImportError) as exc:
            say(f"{command}: error: {exc}")
            return 2


def say(line):
    """``line`` on standard error in one write, so that the lines of the processes of a
    multi-process run, sharing one standard error, do not mix."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _discard_stdout():
    """Send what is left for standard output to /dev/null, so that the interpreter's own flush
    at exit does not fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a file descriptor (e.g. captured by a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
