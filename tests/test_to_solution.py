"""``gradi bench --to-solution`` and ``gradi solve --tol`` on the command line."""

import json
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import gradi
from gradi.align import procrustes_disparity
from gradi.bench import prepared, solution
from gradi.cli import main


def test_solve_with_tol_says_how_many_iterations_ran_and_why(capsys):
    assert main(["solve", "--shape", "circle", "-n", "30", "--niter", "5000", "--tol", "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "(converged)" in out and "of 5000" in out


def test_to_solution_reaches_the_target_and_compares_with_both_peers(tmp_path, capsys):
    pytest.importorskip("sklearn.manifold")
    pytest.importorskip("s_gd2")
    code = main(["bench", "--to-solution", "--backends", "numpy", "--sizes", "30", "--dims", "2",
                 "--repeats", "1", "--target", "1e-8", "--out", str(tmp_path)])
    assert code == 0
    document = json.loads((tmp_path / "to-solution.json").read_text())
    rows = {row["solver"]: row for row in document["results"]}
    assert set(rows) == {"numpy", "smacof", "s_gd2"}
    for row in rows.values():
        assert row["status"] == "ok" and row["disparity"] <= 1e-8 and row["seconds"] > 0
    assert rows["numpy"]["iterations"] % solution.CHECK_EVERY == 0
    assert document["settings"]["tol"] == pytest.approx(1e-4)
    for peer in ("smacof", "s_gd2"):
        assert rows["numpy"][f"speedup_vs_{peer}"] == pytest.approx(rows[peer]["seconds"] / rows["numpy"]["seconds"])
    out = capsys.readouterr().out
    assert "x smacof" in out and "x s_gd2" in out and "stopped by tol=0.0001" in out
    assert (tmp_path / "to-solution.txt").exists()


def test_gradi_stops_by_its_own_rule_as_gradi_solve_does():
    """No oracle for gradi: the iterations are those gradi.solve with the target's tol runs."""
    settings = solution.Settings(backends=("numpy",), sizes=(40,), dims=(2,), target=1e-6, repeats=1)
    outcome = [o for o in solution.run(settings) if o.solver == "numpy"][0]
    alone = gradi.solve(gradi.distance_matrix(gradi.shapes.circle(40)), 2, niter=settings.max_iterations,
                        tol=settings.tol)
    assert outcome.status == "ok" and (outcome.iterations, alone.stop_reason) == (alone.iterations, "converged")
    assert outcome.stress == alone.stress


def test_without_the_peers_they_are_skipped_with_the_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solution, "peer_missing", lambda name: f"{name} is not installed")
    assert main(["bench", "--to-solution", "--backends", "numpy", "--sizes", "20", "--dims", "2",
                 "--repeats", "1", "--target", "1e-3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped: smacof N=20 dim=2: smacof is not installed" in out
    assert "skipped: s_gd2 N=20 dim=2: s_gd2 is not installed" in out


def test_a_missing_peer_package_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "s_gd2", None)  # import s_gd2 raises ImportError
    assert solution.peer_missing("s_gd2") == "s-gd2 is not installed (pip install 'gradi[peers]')"


def test_s_gd2_skips_dimensions_it_cannot_lay_out():
    pytest.importorskip("s_gd2")
    settings = solution.Settings(backends=(), sizes=(12,), dims=(4,), repeats=1)
    outcome = [o for o in solution.run(settings) if o.solver == "s_gd2"][0]
    assert outcome.status == "skipped" and "2-D or 3-D only" in outcome.reason


def test_when_no_solver_can_run_the_exit_code_is_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solution, "peer_missing", lambda name: f"{name} is not installed")
    monkeypatch.setenv("GRADI_CPP_ISA", "sse9")
    monkeypatch.setitem(gradi.backends.BACKENDS, "cpp-simd", type(gradi.backends.get("cpp-simd"))())
    assert main(["bench", "--to-solution", "--backends", "cpp-simd", "--sizes", "20", "--dims", "2",
                 "--repeats", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "gradi bench: error: no solver could be run (3 skipped); the reasons are above" in err


def test_a_solver_that_cannot_reach_the_target_in_budget_says_so():
    settings = solution.Settings(backends=("numpy",), sizes=(20,), dims=(2,), target=1e-30,
                                 max_iterations=50, repeats=1)
    outcome = [o for o in solution.run(settings) if o.solver == "numpy"][0]
    assert outcome.status == "not reached" and "at most 50 iterations" in outcome.reason


@pytest.mark.parametrize("option", [["--target", "1e-6"], ["--shape", "text"]])
def test_to_solution_options_without_to_solution_are_refused(option, capsys):
    assert main(["bench", *option]) == 2
    assert f"{option[0]} only applies with --to-solution" in capsys.readouterr().err


def test_a_named_shape_is_what_every_solver_recovers(tmp_path, capsys, monkeypatch):
    """--shape text: the cases are the glyph outline's, in its own dimension (--dims follows)."""
    monkeypatch.setattr(solution, "peer_missing", lambda name: f"{name} is not installed")
    assert main(["bench", "--to-solution", "--shape", "text", "--backends", "numpy", "--sizes", "40",
                 "--repeats", "1", "--target", "1e-4", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "to-solution.json").read_text())
    assert document["settings"]["shape"] == "text" and document["settings"]["dims"] == [2]
    row = next(row for row in document["results"] if row["solver"] == "numpy")
    settings = solution.Settings(backends=("numpy",), sizes=(40,), dims=(2,), target=1e-4, shape="text")
    result = gradi.solve(gradi.distance_matrix(gradi.shapes.text(40)), 2, niter=settings.max_iterations,
                         tol=settings.tol)
    assert row["status"] == "ok" and row["iterations"] == result.iterations
    assert row["disparity"] == pytest.approx(procrustes_disparity(gradi.shapes.text(40), result.X))
    assert "on the text shape" in capsys.readouterr().out


@pytest.mark.parametrize("shape, dims, message", [("text", (3,), "shape 'text' is 2-D; dims must be 2, got 3"),
                                                  ("sphere", (2, 3), "shape 'sphere' is 3-D; dims must be 3"),
                                                  ("square", (2,), "shape must be one of")])
def test_a_shape_refuses_dimensions_it_does_not_have(shape, dims, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solution.Settings(backends=(), dims=dims, shape=shape)


def test_dims_default_to_the_shapes_own_dimension():
    assert solution.Settings(backends=(), shape="text").dims == (2,)
    assert solution.Settings(backends=(), shape="helix").dims == (3,)
    assert solution.Settings(backends=()).dims == solution.Settings(backends=(), shape="cube").dims == (2, 3)


def test_a_shape_of_any_dimension_takes_each_of_dims():
    settings = solution.Settings(backends=(), dims=(2, 4), shape="cube")
    assert settings.points(10, 4).shape == (10, 4)
    assert np.array_equal(settings.points(10, 2), gradi.shapes.cube(10, 2))


def test_dims_that_contradict_the_shape_exit_2(capsys):
    assert main(["bench", "--to-solution", "--shape", "text", "--dims", "3", "--backends", "numpy"]) == 2
    assert "shape 'text' is 2-D" in capsys.readouterr().err


def test_a_best_of_spans_its_window_whatever_a_run_takes(monkeypatch):
    """Each solver's best is taken over at least ``repeats`` runs and at least ``window`` seconds
    of them: a 3 ms solve gets as much of the machine's time as a 30 ms one (clock injected)."""
    now = [0.0]
    monkeypatch.setattr(prepared, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    durations = iter([0.25, 0.125, 0.125, 0.125, 0.5])

    def run():
        now[0] += next(durations)
        return "done"

    assert prepared.best_of(run, 2, window=0.6) == ("done", 0.125)
    assert now[0] == 0.625  # four runs: 0.6 s had passed only after the fourth
    calls = []
    prepared.best_of(lambda: calls.append(now.__setitem__(0, now[0] + 1.0)), 2, window=0.5)
    assert len(calls) == 2  # runs longer than the window: the repeats decide
