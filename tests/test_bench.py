"""``gradi bench``: a tiny sweep's table, JSON, CSV and figures; exclusion of a wrong backend;
budget scaling and skipping; Ctrl-C keeping partial results; implementation sizes; bad arguments."""

import csv
import json
import time

import pytest

import gradi
from gradi.bench import plots, report, sourcelines, sweep
from gradi.backends.base import Backend
from gradi.backends.numpy_matrix import Workspace, descend_matrix
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


def slow(seconds_per_iteration):
    def descend(X, D, lr, niter):
        time.sleep(seconds_per_iteration * niter)
        return numpy_steps(X, D, lr, niter)
    return descend


def read_json(out):
    return json.loads((out / "bench.json").read_text())


def test_tiny_sweep_writes_table_json_csv_and_two_figures(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "x python" in out.out and "GFLOP/s" in out.out and "fastest is" in out.out
    assert "[8/8] numpy N=8 dim=3 ..." in out.err
    for name in ("table.txt", "bench.json", "bench.csv", "bench-log.png", "bench-linear.png"):
        assert f"wrote {tmp_path / name}" in out.out

    document = read_json(tmp_path)
    assert document["format"] == "gradi-bench/1" and document["interrupted"] is False
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
    assert numpy_row["speedup_vs_numpy"] == pytest.approx(1.0)
    assert numpy_row["pair_updates_per_second"] == pytest.approx(64 * 5 / numpy_row["seconds"])
    assert numpy_row["gflops"] == pytest.approx(numpy_row["pair_updates_per_second"] * 15 / 1e9)
    assert numpy_row["check_error"] <= numpy_row["check_tolerance"] == 1e-5
    assert numpy_row["source_lines"] > 10 and numpy_row["prepare_seconds"] >= 0

    with open(tmp_path / "bench.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and rows[0]["backend"] == "python"
    assert len(rows[0]["repeat_seconds"].split(";")) == 2

    for name in ("bench-log.png", "bench-linear.png"):
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
    register(monkeypatch, "sleepy", slow(0.01))
    settings = sweep.Settings(backends=("numpy", "sleepy"), sizes=(6,), dims=(2,), niter=200,
                              repeats=2, budget=0.2)
    outcome = sweep.run_sweep(settings)
    numpy_row, sleepy = report.rows(outcome)
    assert not numpy_row["scaled"] and numpy_row["iterations_run"] == 200
    assert sleepy["scaled"] and 1 <= sleepy["iterations_run"] <= 20
    assert sleepy["seconds"] == pytest.approx(sleepy["seconds_per_iteration"] * 200)
    assert sleepy["seconds"] >= 0.01 * 200
    table = report.format_table(report.rows(outcome))
    assert f"{sleepy['iterations_run']}/200" in table and "* scaled" in table


def quadratic(seconds_per_pair):
    """A backend whose iterations cost ``seconds_per_pair * N^2``, as the real ones do."""
    def descend(X, D, lr, niter):
        time.sleep(seconds_per_pair * len(X) ** 2 * niter)
        return numpy_steps(X, D, lr, niter)
    return descend


@pytest.mark.parametrize("budget, words", [
    (0.04, "extrapolated from a smaller N"),  # 0.2 s per iteration predicted: over 4 x the budget
    (0.1, "one iteration took"),  # predicted within 4 x the budget: a probe decides
])
def test_a_backend_whose_next_size_would_exceed_the_budget_is_skipped(monkeypatch, budget, words):
    register(monkeypatch, "sleepy", quadratic(0.002 / 25))
    settings = sweep.Settings(backends=("sleepy",), sizes=(5, 50), dims=(3,), niter=3, repeats=1,
                              budget=budget)
    small, large = sweep.run_sweep(settings).measurements
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
    assert (tmp_path / "bench.csv").exists() and (tmp_path / "bench-log.png").exists()


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
