"""``gradi bench --to-solution`` and ``gradi solve --tol`` on the command line."""

import json

import pytest

import gradi
from gradi.bench import solution
from gradi.cli import main


def test_solve_with_tol_says_how_many_iterations_ran_and_why(capsys):
    assert main(["solve", "--shape", "circle", "-n", "30", "--niter", "5000", "--tol", "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "(converged)" in out and "of 5000" in out


def test_to_solution_reaches_the_target_and_compares_with_smacof(tmp_path, capsys):
    pytest.importorskip("sklearn.manifold")
    code = main(["bench", "--to-solution", "--backends", "numpy", "--sizes", "30", "--dims", "2",
                 "--repeats", "1", "--target", "1e-4", "--out", str(tmp_path)])
    assert code == 0
    document = json.loads((tmp_path / "to-solution.json").read_text())
    rows = {row["solver"]: row for row in document["results"]}
    assert set(rows) == {"numpy", "smacof"}
    for row in rows.values():
        assert row["status"] == "ok" and row["disparity"] <= 1e-4 and row["seconds"] > 0
    assert rows["numpy"]["iterations"] % solution.CHECK_EVERY == 0
    assert rows["numpy"]["speedup_vs_smacof"] == pytest.approx(rows["smacof"]["seconds"] / rows["numpy"]["seconds"])
    assert "x smacof" in capsys.readouterr().out
    assert (tmp_path / "to-solution.txt").exists()


def test_without_scikit_learn_smacof_is_skipped_with_the_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solution, "peer_missing", lambda: "scikit-learn is not installed")
    assert main(["bench", "--to-solution", "--backends", "numpy", "--sizes", "20", "--dims", "2",
                 "--repeats", "1", "--target", "1e-3", "--out", str(tmp_path)]) == 0
    assert "skipped: smacof N=20 dim=2: scikit-learn is not installed" in capsys.readouterr().out


def test_when_no_solver_can_run_the_exit_code_is_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solution, "peer_missing", lambda: "scikit-learn is not installed")
    monkeypatch.setenv("GRADI_CPP_ISA", "sse9")
    monkeypatch.setitem(gradi.backends.BACKENDS, "cpp-simd", type(gradi.backends.get("cpp-simd"))())
    assert main(["bench", "--to-solution", "--backends", "cpp-simd", "--sizes", "20", "--dims", "2",
                 "--repeats", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "gradi bench: error: no solver could be run (2 skipped); the reasons are above" in err


def test_a_solver_that_cannot_reach_the_target_in_budget_says_so():
    settings = solution.Settings(backends=("numpy",), sizes=(20,), dims=(2,), target=1e-30,
                                 max_iterations=50, repeats=1)
    outcome = [o for o in solution.run(settings) if o.solver == "numpy"][0]
    assert outcome.status == "not reached" and "at most 50 iterations" in outcome.reason


def test_target_without_to_solution_is_refused(capsys):
    assert main(["bench", "--target", "1e-6"]) == 2
    assert "--target only applies with --to-solution" in capsys.readouterr().err
