"""scripts/asv-gate.sh and its verdict (scripts/asv-gate-verdict.py).

The verdict is run as the gate runs it, on asv result files and suite listings written by asv's
own code (asv.results.Results, the benchmarks.json format), one scenario per outcome: identical
figures pass; a count above 5% or a wall time above 2x fails; a row BASE measured that HEAD
skipped or failed (a backend that no longer loads) fails with exit 1 and is named; a row HEAD's
suite no longer has passes and is listed apart; asv's own failures, a commit that did not build
and a backend compared on wall time but never counted exit 2.

The gate itself is rehearsed end to end in a clone of this repository, with real asv
environments (``slow``: each commit's wheel is built, about a minute each): identical code exits 0,
a commit whose cpp-simd ``load`` raises ImportError exits 1 naming the row, a commit that drops a
parameter value from the suite exits 0 listing the rows apart.
"""

import datetime
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERDICT = ROOT / "scripts" / "asv-gate-verdict.py"
PY = sys.executable
BASE, HEAD = "a" * 40, "b" * 40
MACHINE = "gate-test"
NAN = math.nan

asv = pytest.importorskip("asv", reason="asv not installed (pip install .[bench])")

SOLVE = "bench_solve.Solve.time_descend"
INSTRUCTIONS = "bench_counted.Counted.track_instructions"
WALL_REGEX = r"^bench_solve\.Solve\.time_descend\('(?!jax)[^']*', (100|1000), [23], 1\)$"
COUNT_REGEX = r"^bench_counted\."


def _suite(backends):
    """A suite listing (benchmarks.json's content): the gated solve rows and one counted track."""
    names = [f"'{name}'" for name in backends]
    return {
        SOLVE: {"name": SOLVE, "params": [names, ["100"], ["2"], ["1"]],
                "param_names": ["backend", "N", "dim", "threads"], "type": "time", "unit": "seconds",
                "version": "1"},
        INSTRUCTIONS: {"name": INSTRUCTIONS, "params": [names], "param_names": ["backend"],
                       "type": "track", "unit": "instructions/pair-update", "version": "1"},
    }


def _listing(path, suite):
    from asv import util
    path.parent.mkdir(parents=True, exist_ok=True)
    util.write_json(str(path), suite, api_version=2)


def _results(results_dir, commit, suite, values):
    """Save ``commit``'s results as asv does: ``values`` maps backend -> (solve, count), each a
    number, NaN (skipped) or None (failed)."""
    from asv.results import Results
    from asv.runner import BenchmarkResult
    results = Results({"machine": MACHINE, "python": "3.11"}, {}, commit, 1700000000000, "3.11",
                      "virtualenv-py3.11", {})
    for column, name in enumerate((SOLVE, INSTRUCTIONS)):
        backends = [text.strip("'") for text in suite[name]["params"][0]]
        figures = [values[backend][column] for backend in backends]
        failed = any(figure is None for figure in figures)
        results.add_result(suite[name], BenchmarkResult(
            result=figures, samples=[None] * len(figures), number=[None] * len(figures),
            errcode=1 if failed else 0, stderr="", profile=None),
            started_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), duration=1.0)
    results.save(str(results_dir))


def _gate(tmp_path, base, head, *, head_backends=("numpy", "cpp-simd"), base_backends=("numpy", "cpp-simd"),
          statuses=None):
    """Run the verdict on a results folder holding BASE's and HEAD's results (None: no results)."""
    results_dir = tmp_path / "results"
    head_suite, base_suite = _suite(head_backends), _suite(base_backends)
    _listing(results_dir / "benchmarks.json", head_suite)
    _listing(tmp_path / "base-suite.json", base_suite)
    for commit, values in ((BASE, base), (HEAD, head)):
        if values is not None:
            _results(results_dir, commit, head_suite, values)
    statuses = statuses or {"asv run (wall time)": 0, "asv run (counts)": 0}
    command = [PY, str(VERDICT), str(results_dir), MACHINE, BASE, HEAD, "--wall-factor", "2.0",
               "--count-factor", "1.05", "--wall-regex", WALL_REGEX, "--count-regex", COUNT_REGEX,
               "--base-suite", str(tmp_path / "base-suite.json")]
    for name, status in statuses.items():
        command += ["--asv", f"{name}={status}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout


def _row(out, backend, name=SOLVE):
    label = f"{name}('{backend}'" + (", 100, 2, 1)" if name == SOLVE else ")")
    return next(line for line in out.splitlines() if line.startswith(f"| `{label}`"))


SAME = {"numpy": (4.5e-4, 21.0), "cpp-simd": (1.6e-5, 3.2)}


def test_identical_figures_pass(tmp_path):
    status, out = _gate(tmp_path, SAME, SAME)
    assert status == 0, out
    assert "No regression: 4 benchmarks compared (2 counts, 2 wall times)" in out
    assert _row(out, "numpy") == f"| `{SOLVE}('numpy', 100, 2, 1)` | 450μs | 450μs | 1.000 | 2x | same |"
    assert _row(out, "numpy", INSTRUCTIONS).endswith("| 21.0 | 21.0 | 1.000 | 1.05x | same |")


def test_a_count_above_five_percent_or_a_wall_time_above_twice_fails(tmp_path):
    status, out = _gate(tmp_path / "count", SAME, {**SAME, "numpy": (4.5e-4, 23.1)})
    assert status == 1 and f"{INSTRUCTIONS}('numpy') (1.100x)" in out.splitlines()[-1]
    assert _gate(tmp_path / "within", SAME, {**SAME, "numpy": (8.5e-4, 22.0)})[0] == 0  # 1.9x, +4.8%
    status, out = _gate(tmp_path / "wall", SAME, {**SAME, "cpp-simd": (3.4e-5, 3.2)})
    assert status == 1 and f"{SOLVE}('cpp-simd', 100, 2, 1) (2.125x)" in out.splitlines()[-1]


def test_a_backend_that_no_longer_loads_fails_naming_its_rows(tmp_path):
    status, out = _gate(tmp_path, SAME, {**SAME, "cpp-simd": (NAN, NAN)})
    assert status == 1, out
    summary = out.splitlines()[-1]
    assert f"{SOLVE}('cpp-simd', 100, 2, 1) (skipped on HEAD)" in summary
    assert f"{INSTRUCTIONS}('cpp-simd') (skipped on HEAD)" in summary
    assert _row(out, "cpp-simd").endswith("| n/a |  | 2x | skipped on HEAD |")


def test_a_benchmark_that_fails_on_head_fails_the_gate(tmp_path):
    status, out = _gate(tmp_path, SAME, {**SAME, "cpp-simd": (None, 3.2)},
                        statuses={"asv run (wall time)": 2, "asv run (counts)": 0})
    assert status == 1, out  # asv's exit 2 is its record of that failure, not asv failing
    assert f"{SOLVE}('cpp-simd', 100, 2, 1) (failed on HEAD)" in out.splitlines()[-1]


def test_rows_head_no_longer_has_are_listed_apart_and_pass(tmp_path):
    numpy_only = {"numpy": SAME["numpy"]}
    status, out = _gate(tmp_path, numpy_only, numpy_only, head_backends=("numpy",))
    assert status == 0, out
    apart = next(line for line in out.splitlines() if line.startswith("Not in HEAD's suite"))
    assert f"{SOLVE}('cpp-simd', 100, 2, 1)" in apart and f"{INSTRUCTIONS}('cpp-simd')" in apart
    assert "'numpy'" not in apart


def test_a_backend_timed_but_never_counted_is_not_a_pass(tmp_path):
    uncounted = {**SAME, "cpp-simd": (1.6e-5, NAN)}
    status, out = _gate(tmp_path, uncounted, uncounted)
    assert status == 2, out
    assert "no count for cpp-simd" in out.splitlines()[-1]
    nothing = {name: (figure, NAN) for name, (figure, _) in SAME.items()}
    status, out = _gate(tmp_path / "none", nothing, nothing)
    assert status == 2 and "no deterministic count was compared" in out  # no valgrind


def test_asv_failing_is_reported_not_swallowed(tmp_path):
    status, out = _gate(tmp_path, SAME, SAME, statuses={"asv run (wall time)": 0, "asv run (counts)": 1})
    assert status == 2, out
    assert "asv run (counts) exited 1" in out.splitlines()[-1]
    status, out = _gate(tmp_path / "listing", SAME, SAME,
                        statuses={"asv run (listing BASE's suite)": 1, "asv run (wall time)": 0})
    assert status == 2 and "asv run (listing BASE's suite) exited 1" in out


def test_a_commit_that_did_not_build_is_not_a_regression(tmp_path):
    failed = {name: (None, None) for name in SAME}  # asv's record of a failed build
    status, out = _gate(tmp_path, SAME, failed, statuses={"asv run (wall time)": 2})
    assert status == 2 and "no results for HEAD bbbbbbbb" in out and "Not a regression" in out
    assert _row(out, "numpy").endswith("| failed |  | 2x | failed on HEAD |")  # BASE's rows kept
    status, out = _gate(tmp_path / "missing", SAME, None)
    assert status == 2 and "no results for HEAD" in out


def test_a_new_row_failing_on_head_is_a_failure_to_run(tmp_path):
    status, out = _gate(tmp_path, {**SAME, "cpp-simd": (NAN, 3.2)}, {**SAME, "cpp-simd": (None, 3.2)},
                        statuses={"asv run (wall time)": 2})
    assert status == 2, out
    assert f"Failed on HEAD (BASE did not measure them either; not a regression): {SOLVE}('cpp-simd'" in out


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_labels_are_the_ones_asvs_bench_option_selects():
    """The verdict's row labels and asv's --bench regex see the same ``name(params)`` text."""
    from asv.benchmarks import Benchmarks
    verdict = _load(VERDICT, "asv_gate_verdict")
    suite = _suite(("numpy", "cpp-simd", "jax"))
    conf = type("Conf", (), {"benchmark_dir": "", "results_dir": ""})()
    selected = Benchmarks(conf, list(suite.values()), regex=[WALL_REGEX])
    asv_labels = {verdict.labels(name, suite[name]["params"])[i]
                  for name, indices in selected.benchmark_selection.items() for i in indices or []}
    assert asv_labels == verdict.suite_labels(suite, WALL_REGEX)
    assert asv_labels == {f"{SOLVE}('numpy', 100, 2, 1)", f"{SOLVE}('cpp-simd', 100, 2, 1)"}


def _git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _commit(repo, message, path=None, old=None, new=None):
    if path is not None:
        file = repo / path
        text = file.read_text()
        assert old in text, f"{path} no longer holds {old!r}: update this rehearsal"
        file.write_text(text.replace(old, new, 1))
    _git(repo, "commit", "--quiet", "--allow-empty", "-am", message)
    return _git(repo, "rev-parse", "HEAD")


def _run_gate(repo, base, head, bench):
    env = {**os.environ, "GRADI_VENV": str(Path(PY).parents[1]), "ASV_GATE_BENCH": bench,
           "ASV_GATE_COUNT_BENCH": ""}  # the counted tracks count every backend: minutes per commit
    env.pop("GITHUB_STEP_SUMMARY", None)
    done = subprocess.run(["bash", "scripts/asv-gate.sh", base, head], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=3600)
    return done.returncode, done.stdout + done.stderr, (repo / ".asv" / "gate" / "summary.md").read_text()


@pytest.mark.slow
def test_the_gate_rehearsed_on_real_commits(tmp_path):
    """Identical code passes, a backend that stops loading fails, a dropped parameter is listed."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(repo)], check=True)
    for folder in ("scripts", "benchmarks"):  # this checkout's scripts and suite, committed below
        shutil.rmtree(repo / folder)
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "asv.conf.json", repo)
    _git(repo, "add", "-A")
    base = _commit(repo, "base: this checkout")
    same = _commit(repo, "identical code")
    _git(repo, "checkout", "--quiet", "-b", "break", base)
    broken = _commit(repo, "cpp-simd's load raises ImportError", "gradi/backends/cpp.py",
                     "    def load(self):\n        super().load()\n        isa = self.asked_isa()",
                     "    def load(self):\n        raise ImportError('disabled by this commit')\n"
                     "        super().load()\n        isa = self.asked_isa()")
    _git(repo, "checkout", "--quiet", "-b", "drop", base)
    dropped = _commit(repo, "the suite drops N=1000", "benchmarks/common.py",
                      "SIZES = [10, 100, 1000]", "SIZES = [10, 100]")
    bench = r"^bench_solve\.Solve\.time_descend\('(numpy|cpp-simd)', (100|1000), 2, 1\)$"

    status, log, summary = _run_gate(repo, base, same, bench)
    assert status == 0, log[-3000:]
    assert "No regression: 4 benchmarks compared" in summary

    status, log, summary = _run_gate(repo, base, broken, bench)
    assert status == 1, log[-3000:]
    lost = summary.splitlines()[-1]
    assert re.search(r"cpp-simd', 100, 2, 1\) \(skipped on HEAD\).*cpp-simd', 1000, 2, 1\) \(skipped on HEAD\)", lost)
    assert "numpy" not in lost
    assert "asv run (wall time) exited 0" in log

    status, log, summary = _run_gate(repo, base, dropped, bench)
    assert status == 0, log[-3000:]
    apart = next(line for line in summary.splitlines() if line.startswith("Not in HEAD's suite"))
    assert "('numpy', 1000, 2, 1)" in apart and "('cpp-simd', 1000, 2, 1)" in apart
    assert "No regression: 2 benchmarks compared" in summary
    assert json.loads((repo / ".asv" / "gate" / "results" / "benchmarks.json").read_text())[SOLVE]["params"][1] \
        == ["10", "100"]
