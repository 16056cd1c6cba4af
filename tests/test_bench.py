"""``gradi bench``: a tiny sweep's table, JSON, CSV, results file and figures; exclusion of a
wrong backend; budget scaling and skipping; a robust iteration count; Ctrl-C keeping partial
results; implementation sizes; bad arguments; what the figures show.

Where a sweep's decisions depend on time, its clock is injected (``FakeClock``): the fake
backends spend seconds on it instead of sleeping, so the outcome is the same on a busy machine."""

import csv
import itertools
import json
import shlex

import numpy as np
import pytest
import threadpoolctl

import gradi
from gradi.backends.base import Backend
from gradi.backends.numpy_matrix import Workspace, descend_matrix
from gradi.bench import plots, probes, report, sourcelines, sweep
from gradi.cli import main

TINY = ["bench", "--backends", "python,numpy", "--sizes", "5,8", "--dims", "2,3", "--niter", "5",
        "--repeats", "2"]


class _Fake(Backend):
    """A backend built on the numpy kernel, to inject misbehaviour into a sweep."""

    language = "NumPy"
    sources = ("gradi/backends/numpy_matrix.py",)

    def __init__(self, name, descend):
        self.name = name
        self._descend = descend

    def descend(self, state, X, niter):
        return self._descend(X, state.problem.D, state.problem.lr, niter)


def numpy_steps(X, D, lr, niter):
    """The numpy backend's kernel on (X, D, lr): what the fake backends run when they behave."""
    return descend_matrix(X, Workspace(D, 1), lr, niter)


def register(monkeypatch, name, descend):
    monkeypatch.setitem(gradi.backends.BACKENDS, name, _Fake(name, descend))


class FakeClock:
    """A sweep's clock whose seconds pass only when a fake backend spends them, plus a
    microsecond per reading (so that a real backend's run takes more than no time)."""

    TICK = 1e-6

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += self.TICK
        return self.now

    def spend(self, seconds):
        self.now += seconds


def slow(clock, seconds_per_iteration):
    def descend(X, D, lr, niter):
        clock.spend(seconds_per_iteration * niter)
        return numpy_steps(X, D, lr, niter)
    return descend


FIGURES = ("bench-log.png", "bench-linear.png", "bench-roofline.png")
FILES = ("table.txt", "bench.json", "bench.csv", "results.md", *FIGURES)


def read_json(out):
    return json.loads((out / "bench.json").read_text())


def test_tiny_sweep_writes_table_json_csv_results_and_figures(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "x python" in out.out and "GFLOP/s" in out.out and "fastest is" in out.out
    assert "% ceil" in out.out and "op-mix ceiling of the scheme the backend runs" in out.out
    assert "[8/8] numpy N=8 dim=3 ..." in out.err
    for name in FILES:
        assert f"wrote {tmp_path / name}" in out.out

    document = read_json(tmp_path)
    assert document["format"] == "gradi-bench/2" and document["interrupted"] is False
    assert document["settings"]["sizes"] == [5, 8] and document["settings"]["niter"] == 5
    for field in ("cpu", "cores", "memory_bytes", "load_average", "os", "python", "packages",
                  "compiler", "gradi"):
        assert field in document["machine"]
    assert document["machine"]["packages"]["numpy"] == __import__("numpy").__version__
    results = document["results"]
    assert len(results) == 8 and {r["status"] for r in results} == {"ok"}
    numpy_row = next(r for r in results if r["backend"] == "numpy" and r["n"] == 8 and r["dim"] == 3)
    assert len(numpy_row["repeat_seconds"]) == 2 and numpy_row["iterations_run"] == 5
    assert numpy_row["seconds_min"] <= numpy_row["seconds_median"] <= numpy_row["seconds_max"]
    python_row = next(r for r in results if r["backend"] == "python" and r["n"] == 8 and r["dim"] == 3)
    assert python_row["speedup_vs_numpy"] == pytest.approx(numpy_row["seconds"] / python_row["seconds"])
    assert numpy_row["speedup_vs_python"] == pytest.approx(python_row["seconds"] / numpy_row["seconds"])
    assert numpy_row["pair_updates_per_second"] == pytest.approx(64 * 5 / numpy_row["seconds"])
    assert numpy_row["gflops"] == pytest.approx(numpy_row["pair_updates_per_second"] * 15 / 1e9)
    assert numpy_row["check_error"] <= numpy_row["check_tolerance"] == 1e-5
    assert numpy_row["source_lines"] > 10

    hardware, reason = probes.measured_for([2, 3])
    if hardware is None:
        assert document["roofline"] == {"unavailable": reason} and numpy_row["fraction_of_ceiling"] is None
    else:
        roof = document["roofline"]
        assert roof["hardware"]["clock_hz"] == hardware.clock_hz and roof["cores"] == hardware.cores

        def ceiling(kind):
            return next(c["pair_updates_per_second"] for c in roof["ceilings"]
                        if (c["kind"], c["isa"], c["scheme"], c["dtype"], c["dim"])
                        == (kind, hardware.widest.isa, "full", "float32", 3))
        assert numpy_row["isa"] == hardware.widest.isa and numpy_row["scheme"] == "full"
        assert numpy_row["op_mix_ceiling"] == pytest.approx(ceiling("op_mix"))
        assert numpy_row["fma_ceiling"] == pytest.approx(ceiling("fma"))
        rate = numpy_row["pair_updates_per_second"]
        assert numpy_row["fraction_of_ceiling"] == pytest.approx(rate / ceiling("op_mix"))
        assert numpy_row["fraction_of_fma_ceiling"] == pytest.approx(rate / ceiling("fma"))

    results = (tmp_path / "results.md").read_text()
    command = shlex.join(["gradi", *document["command"][1:]])  # this process's argv, as bench.json's
    assert f"`{command}`" in results and document["finished"] in results
    assert (tmp_path / "table.txt").read_text().strip() in results
    if hardware is not None:
        assert "op mix" in results and (hardware.cpu or "unknown CPU") in results

    with open(tmp_path / "bench.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and rows[0]["backend"] == "python"
    assert len(rows[0]["repeat_seconds"].split(";")) == 2

    for name in FIGURES:
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size == plots.FIGURE_PIXELS


def test_a_backend_that_disagrees_is_flagged_and_excluded(tmp_path, capsys, monkeypatch):
    register(monkeypatch, "wrong", lambda X, D, lr, niter: numpy_steps(X, D, 1.5 * lr, niter))
    assert main(["bench", "--backends", "numpy,wrong", "--sizes", "6", "--dims", "2", "--niter", "30",
                 "--repeats", "1", "--out", str(tmp_path)]) == 0
    assert "excluded: wrong N=6 dim=2: disagrees with the float64 reference" in capsys.readouterr().out
    wrong = next(r for r in read_json(tmp_path)["results"] if r["backend"] == "wrong")
    assert wrong["status"] == "excluded" and wrong["check_error"] > wrong["check_tolerance"]
    assert wrong["repeat_seconds"] == [] and wrong["seconds"] is None and wrong["speedup_vs_numpy"] is None


def test_a_backend_over_budget_runs_fewer_iterations_and_is_marked_scaled(monkeypatch):
    clock = FakeClock()
    register(monkeypatch, "sleepy", slow(clock, 0.01))
    settings = sweep.Settings(backends=("numpy", "sleepy"), sizes=(6,), dims=(2,), niter=200,
                              repeats=2, budget=0.2)
    outcome = sweep.run_sweep(settings, clock=clock)
    numpy_row, sleepy = report.rows(outcome)
    assert not numpy_row["scaled"] and numpy_row["iterations_run"] == 200
    assert sleepy["scaled"] and sleepy["iterations_run"] == 19  # 0.2 s at 0.01 s and a few ticks each
    assert sleepy["seconds"] == pytest.approx(sleepy["seconds_per_iteration"] * 200)
    assert sleepy["seconds"] == pytest.approx(0.01 * 200, rel=1e-3)
    table = report.format_table(report.rows(outcome))
    assert f"{sleepy['iterations_run']}/200" in table and "* scaled" in table


def test_prepare_is_timed_apart_and_never_in_the_repeats(monkeypatch):
    clock = FakeClock()
    register(monkeypatch, "compiling", slow(clock, 0.001))
    compiling = gradi.backends.get("compiling")
    prepare = compiling.prepare

    def slow_prepare(problem, threads):
        clock.spend(5.0)  # a compilation: over the budget, yet it must not cut the iterations
        return prepare(problem, threads)
    monkeypatch.setattr(compiling, "prepare", slow_prepare)
    settings = sweep.Settings(backends=("compiling",), sizes=(6,), dims=(2,), niter=100, repeats=2, budget=1.0)
    (measurement,) = sweep.run_sweep(settings, clock=clock).measurements
    assert measurement.prepare_seconds == pytest.approx(5.0, rel=1e-3)
    assert measurement.iterations_run == 100 and measurement.repeat_seconds == pytest.approx([0.1, 0.1], rel=1e-3)


def test_one_stalled_run_does_not_decide_the_iteration_count(monkeypatch):
    clock = FakeClock()
    stalls = []

    def stall_once(X, D, lr, niter):
        clock.spend(1e-4 * niter)
        if niter > 1 and not stalls:  # the check run: what a thread team's first start can look like
            stalls.append(niter)
            clock.spend(0.3)
        return numpy_steps(X, D, lr, niter)
    register(monkeypatch, "stalling", stall_once)
    settings = sweep.Settings(backends=("stalling",), sizes=(6,), dims=(2,), niter=1000, repeats=1,
                              budget=0.5)
    (measurement,) = sweep.run_sweep(settings, clock=clock).measurements
    assert stalls == [sweep.CHECK_ITERATIONS] and measurement.status == "ok"
    assert not measurement.scaled and measurement.iterations_run == 1000


class _ClockedRunner:
    """A runner whose runs take the given seconds, one after the other."""

    def __init__(self, *seconds):
        self.seconds = list(seconds)
        self.calls = []

    def timed(self, iterations):
        self.calls.append(iterations)
        return None, self.seconds.pop(0)


def test_the_estimate_is_the_best_of_a_few_probes_within_about_one_budget():
    runner = _ClockedRunner(0.05, 0.001)
    assert sweep.best_seconds_per_iteration(runner, 10, 1.0, [0.4]) == pytest.approx(0.0001)
    assert runner.calls == [10, 10]  # with the measured run, sweep.PROBES runs in all
    slow = _ClockedRunner(0.3, 0.3)
    assert sweep.best_seconds_per_iteration(slow, 1, 0.5) == pytest.approx(0.3)
    assert slow.calls == [1]  # a second run would take the probes past the budget


def quadratic(clock, seconds_per_pair):
    """A backend whose iterations cost ``seconds_per_pair * N^2``, as the real ones do."""
    def descend(X, D, lr, niter):
        clock.spend(seconds_per_pair * len(X) ** 2 * niter)
        return numpy_steps(X, D, lr, niter)
    return descend


@pytest.mark.parametrize("budget, words", [
    (0.04, "extrapolated from a smaller N"),  # 0.2 s per iteration predicted: over 4 x the budget
    (0.1, "one iteration took"),  # predicted within 4 x the budget: a probe decides
])
def test_a_backend_whose_next_size_would_exceed_the_budget_is_skipped(monkeypatch, budget, words):
    clock = FakeClock()
    register(monkeypatch, "sleepy", quadratic(clock, 0.002 / 25))
    settings = sweep.Settings(backends=("sleepy",), sizes=(5, 50), dims=(3,), niter=3, repeats=1,
                              budget=budget)
    small, large = sweep.run_sweep(settings, clock=clock).measurements
    assert small.status == "ok"
    assert large.status == "skipped" and words in large.reason


def test_ctrl_c_stops_the_sweep_and_keeps_what_finished(tmp_path, capsys, monkeypatch):
    def interrupt_at_eight(X, D, lr, niter):
        if X.shape[0] == 8:
            raise KeyboardInterrupt
        return numpy_steps(X, D, lr, niter)
    register(monkeypatch, "fragile", interrupt_at_eight)
    code = main(["bench", "--backends", "numpy,fragile", "--sizes", "5,8", "--dims", "2", "--niter", "5",
                 "--repeats", "1", "--out", str(tmp_path)])
    assert code == 130
    assert "interrupted: writing the 3 measurements that finished" in capsys.readouterr().err
    document = read_json(tmp_path)
    assert document["interrupted"] is True
    finished = [(r["backend"], r["n"]) for r in document["results"]]
    assert finished == [("numpy", 5), ("fragile", 5), ("numpy", 8)]
    assert all((tmp_path / name).exists() for name in FILES)


def test_a_backend_over_budget_at_one_n_is_not_probed_again_at_the_next(monkeypatch):
    clock = FakeClock()
    sizes_run = []

    def slow_quadratic(X, D, lr, niter):
        sizes_run.append(len(X))
        return quadratic(clock, 0.002)(X, D, lr, niter)  # 0.05 s per iteration at N=5
    register(monkeypatch, "sleepy", slow_quadratic)
    settings = sweep.Settings(backends=("sleepy",), sizes=(5, 50), dims=(2,), niter=3, repeats=1, budget=0.02)
    small, large = sweep.run_sweep(settings, clock=clock).measurements
    assert small.status == "skipped" and "one iteration took" in small.reason
    assert large.status == "skipped" and "extrapolated from a smaller N" in large.reason
    assert set(sizes_run) == {5}


def test_a_backend_that_raises_is_recorded_as_failed_and_the_sweep_goes_on(monkeypatch):
    def broken(X, D, lr, niter):
        raise RuntimeError("segfault avoided\nsecond line")
    register(monkeypatch, "broken", broken)
    settings = sweep.Settings(backends=("broken", "numpy"), sizes=(5,), dims=(2,), niter=3, repeats=1)
    failed, fine = sweep.run_sweep(settings).measurements
    assert failed.status == "failed" and failed.reason == "RuntimeError: segfault avoided"
    assert fine.status == "ok"


def test_every_case_gives_every_backend_the_same_problem(monkeypatch):
    seen = []

    def spy(X, D, lr, niter):
        seen.append((X.tobytes(), D.tobytes(), lr, X.dtype.name))
        return numpy_steps(X, D, lr, niter)
    register(monkeypatch, "spy-a", spy)
    register(monkeypatch, "spy-b", spy)
    settings = sweep.Settings(backends=("spy-a", "spy-b"), sizes=(7,), dims=(3,), niter=4, repeats=1,
                              dtype="float64")
    sweep.run_sweep(settings)
    assert len(set(seen)) == 1 and seen[0][3] == "float64"


def test_the_sweep_keeps_blas_on_one_thread(monkeypatch):
    """OpenBLAS workers spin for about 0.1 s after a multi-threaded call: the harness's own
    BLAS work (D, the reference) must not leave them on the cores a backend is timed on."""
    blas_threads = []

    def spy(X, D, lr, niter):
        blas_threads.extend(pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                            if pool["user_api"] == "blas")
        return numpy_steps(X, D, lr, niter)
    register(monkeypatch, "spy", spy)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        sweep.run_sweep(sweep.Settings(backends=("spy",), sizes=(7,), dims=(3,), niter=4, repeats=1))
    assert blas_threads and set(blas_threads) == {1}


def test_parallel_rows_record_the_round_trip_just_around_their_repeats(monkeypatch):
    events = []

    def spy(X, D, lr, niter):
        events.append("run")
        return numpy_steps(X, D, lr, niter)
    register(monkeypatch, "spy", spy)
    monkeypatch.setattr(gradi.backends.BACKENDS["spy"], "parallel", True)
    trips = iter([1e-7, 4e-7])
    monkeypatch.setattr(probes, "round_trip_now", lambda: events.append("trip") or next(trips))
    outcome = sweep.run_sweep(sweep.Settings(backends=("python", "spy"), sizes=(7,), dims=(3,), niter=4,
                                             repeats=2, threads=2))
    serial_row, spy_row = report.rows(outcome)
    assert serial_row["threads"] == 1 and serial_row["round_trip_ns"] is None
    assert spy_row["threads"] == 2 and spy_row["round_trip_ns"] == pytest.approx([100, 400])
    assert events[-4:] == ["trip", "run", "run", "trip"]


def test_source_lines_skip_blanks_comments_and_docstrings(tmp_path):
    python = tmp_path / "k.py"
    python.write_text('"""Module doc."""\n\n# comment\ndef f(x):\n    """Doc\n    more."""\n'
                      '    return (x +\n\n            1)  # trailing\n')
    assert sourcelines.count_code_lines(python) == 3
    cpp = tmp_path / "k.cpp"
    cpp.write_text("// header\n/* block\n   comment */\nint f() {\n  return 1; // one\n}\n\n")
    assert sourcelines.count_code_lines(cpp) == 3
    assert sourcelines.count_backend_lines(("no/such/file.py",)) is None
    assert sourcelines.count_backend_lines(gradi.backends.get("numpy").sources) > 10


@pytest.mark.parametrize("argv, words", [
    (["bench", "--backends", "numpy,nope"], "unknown backend 'nope'"),
    (["bench", "--sizes", "10,0"], "integers >= 1"),
    (["bench", "--dims", "two"], "comma-separated integers"),
    (["bench", "--repeats", "0"], "must be a positive number"),
    (["bench", "--budget", "-1"], "must be a positive number"),
    (["bench", "--dtype", "float16"], "invalid choice"),
])
def test_bad_bench_arguments_give_one_line_and_exit_code_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_an_output_folder_that_cannot_be_created_is_one_line_and_exit_code_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["bench", "--backends", "numpy", "--sizes", "5", "--out", str(blocker / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot create the output folder" in lines[0]


def test_quick_settings_cover_every_backend_and_explicit_flags_win():
    from gradi.cli import bench_settings, build_parser
    quick = bench_settings(build_parser().parse_args(["bench", "--quick"]))
    assert quick.backends == tuple(gradi.backends.BACKENDS) and max(quick.sizes) == 1000
    assert quick.budget == sweep.QUICK["budget"]
    assert bench_settings(build_parser().parse_args(["bench", "--quick", "--dims", "3"])).dims == (3,)


def test_a_case_too_large_for_memory_is_skipped_and_the_sweep_goes_on(monkeypatch):
    from gradi import host, memory

    small = memory.needed(gradi.backends.get("numpy"), 8, 2, "float32", 1)
    monkeypatch.setattr(host, "available_memory", lambda: small)
    outcome = sweep.run_sweep(sweep.Settings(backends=("numpy",), sizes=(5, 8, 3000), dims=(2,),
                                           niter=3, repeats=1))
    status = {m.n: m.status for m in outcome.measurements}
    assert status == {5: "ok", 8: "ok", 3000: "skipped"}
    assert "problem too large" in outcome.measurements[-1].reason


def _lab(colour):
    """CIELAB coordinates of an sRGB colour (D65), for perceptual distances."""
    rgb = np.array(colour[:3], dtype=float)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _registry_rows(**fields):
    return [{"backend": b.name, "language": b.language, "tier": b.tier, "parallel": b.parallel, **fields}
            for b in gradi.backends.BACKENDS.values()]


def test_every_backend_gets_a_colour_far_from_every_other():
    pytest.importorskip("matplotlib")
    colours = plots.colours_of(_registry_rows())
    assert len(colours) == len(gradi.backends.BACKENDS) >= 11
    closest = min(np.linalg.norm(_lab(colours[a]) - _lab(colours[b]))
                  for a, b in itertools.combinations(colours, 2))
    assert closest >= 30  # delta E 1976; the light shades of the first palette were 19.5 apart


def _row(backend, n, dim, seconds, status="ok", reason="", scaled=False):
    template = gradi.backends.get(backend)
    return {"backend": backend, "language": template.language, "tier": template.tier,
            "parallel": template.parallel, "n": n, "dim": dim, "dtype": "float32", "niter": 100,
            "status": status, "reason": reason, "scaled": scaled, "seconds": seconds,
            "pair_updates_per_second": None if seconds is None else n * n * 100 / seconds,
            "ceiling_cores": None}


def _texts(figure):
    return [text.get_text().strip() for ax in figure.axes for text in ax.texts]


def test_a_backend_that_did_not_run_a_case_leaves_a_gap_that_says_why():
    pytest.importorskip("matplotlib")
    table = [_row("numpy", 10, 2, 0.01), _row("cpp", 10, 2, 0.001),
             _row("numpy", 100, 2, 0.1), _row("cpp", 100, 2, None, "skipped", "one iteration took "
                                               "3 s, over the budget of 0.5 s per run"),
             _row("jax", 10, 2, None, "skipped", "backend 'jax' is unavailable: jax is not installed"),
             _row("jax", 100, 2, None, "excluded", "disagrees with the float64 reference")]
    figure = plots._log_chart(table, plots.colours_of(table))
    assert sorted(_texts(figure)) == ["excluded", "over budget", "unavailable"]


def test_the_linear_chart_has_one_panel_per_n_each_with_its_own_scale_and_values():
    pytest.importorskip("matplotlib")
    table = [_row(name, n, dim, seconds * n * n) for name, seconds in (("numpy", 1e-6), ("cpp", 2e-7))
             for n in (10, 100, 1000) for dim in (2, 3)]
    figure = plots._linear_chart(table, plots.colours_of(table))
    figure.canvas.draw()  # settle the autoscaled limits
    assert [ax.get_title() for ax in figure.axes] == ["N = 10", "N = 100", "N = 1000"]
    tops = [ax.get_ylim()[1] for ax in figure.axes]
    assert tops[0] < 2e-3 < tops[1] < 2e-1 < tops[2]  # N=10 is not flattened by N=1000
    assert "100 µs" in _texts(figure) and "1 s" in _texts(figure)  # numpy at N=10 and N=1000


def test_the_figures_are_drawn_even_when_nothing_was_measured(tmp_path):
    pytest.importorskip("matplotlib")
    table = [_row("numpy", 10, 2, None, "failed", "RuntimeError: no"),
             _row("python", 10, 2, None, "skipped", "over the budget")]
    for row in table:
        row["ceiling_cores"] = 2  # as when the ceilings were measured
    paths = plots.save_bench_figures(table, tmp_path)
    assert [path.name for path in paths] == list(FIGURES) and all(path.stat().st_size for path in paths)
