"""The asv suite stays runnable: ``asv check`` passes and a filtered quick run posts numbers.

Both run in the current environment (``--python=same``) against the gradi this test imports, with
a throw-away results directory, so the repository's .asv/ is untouched. A benchmark that fails
(setup error, wrong result) makes ``asv run`` exit non-zero; one that silently skips is caught
because every selected benchmark must have a result.
"""

import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import gradi
from gradi.backends import BACKENDS

pytest.importorskip("asv", reason="asv is not installed (pip install asv)")

ROOT = Path(__file__).resolve().parent.parent
# One cheap case of every benchmark module (numpy is always available).
SMOKE = {
    "bench_solve.Solve.time_descend": r"time_descend\('numpy', 10, 2, 1\)",
    "bench_memory.Memory.peakmem_solve": r"peakmem_solve\('numpy', 100\)",
    "bench_startup.Startup.timeraw_first_solve": r"timeraw_first_solve\('numpy'\)",
    "bench_speedup.SpeedUp.track_speedup": r"track_speedup\('numpy', 'python', 100\)",
    "bench_ceiling.CeilingFraction.track_fraction": r"track_fraction\('numpy', 1000\)",
    "bench_to_solution.ToSolution.track_iterations": r"track_iterations\('numpy', 300\)",
}


@pytest.fixture(scope="module")
def asv_config(tmp_path_factory):
    """A copy of asv.conf.json whose results and HTML go to a temporary folder."""
    folder = tmp_path_factory.mktemp("asv")
    config = json.loads((ROOT / "asv.conf.json").read_text())
    config.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"),
                  results_dir=str(folder / "results"), html_dir=str(folder / "html"),
                  env_dir=str(folder / "env"))
    path = folder / "asv.conf.json"
    path.write_text(json.dumps(config))
    return path


def run_asv(config, *args):
    """Run asv in this interpreter's environment, importing the gradi under test.

    HOME is the temporary folder, so asv's machine file there is a throw-away one too. A gradi
    that is not installed is put on the path: asv's benchmark processes take ASV_PYTHONPATH
    (they drop PYTHONPATH), the fresh interpreters of ``timeraw_`` benchmarks PYTHONPATH.
    """
    env = dict(os.environ, HOME=str(config.parent))
    source = str(Path(gradi.__file__).parent.parent)
    if source not in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        env["ASV_PYTHONPATH"] = source
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(config)],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=300)


def test_asv_check(asv_config):
    done = run_asv(asv_config, "check", "--python=same")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout


def test_quick_run_posts_a_number_per_module(asv_config):
    run_asv(asv_config, "machine", "--yes")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    done = run_asv(asv_config, "run", "--python=same", "--quick", "--show-stderr",
                   "--set-commit-hash", commit, *(f"--bench={regex}" for regex in SMOKE.values()))
    assert done.returncode == 0, done.stdout + done.stderr

    [results_file] = [path for path in (asv_config.parent / "results").rglob("*.json")
                      if path.name not in ("machine.json", "benchmarks.json")]
    results = json.loads(results_file.read_text())["results"]
    assert set(SMOKE) <= set(results)
    for name in SMOKE:
        values = [value for value in results[name][0] if value is not None and not math.isnan(value)]
        assert len(values) == 1, f"{name}: expected one result, got {results[name][0]}"
        assert values[0] > 0


@pytest.fixture
def suite(monkeypatch):
    """Import a module of the asv suite by name; the variables its package pins are restored after."""
    monkeypatch.syspath_prepend(str(ROOT))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))
    return lambda name: importlib.import_module(f"benchmarks.{name}")


def test_parameter_lists_are_literal_and_name_every_registered_backend(suite):
    common_source = (ROOT / "benchmarks" / "common.py").read_text()
    assert "BACKEND_NAMES = list(" not in common_source
    common = suite("common")
    assert common.BACKEND_NAMES == list(BACKENDS)


def test_the_ceiling_fractions_track_every_tuned_and_idiomatic_backend(suite):
    tracked = suite("bench_ceiling").TRACKED
    assert tracked == [name for name, backend in BACKENDS.items() if backend.tier in ("tuned", "idiomatic")]


def test_a_backend_missing_from_this_commit_skips_with_the_reason(suite):
    common = suite("common")
    problem = common.make_problem(10, 2)
    with pytest.raises(NotImplementedError, match="not in this commit's registry"):
        common.skip_unless_runnable("fortran", problem, 1)
    with pytest.raises(NotImplementedError, match="not in this commit's registry"):
        common.default_threads("fortran")


def test_every_benchmark_class_has_an_explicit_version(suite):
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        module = suite(path.stem)
        classes = [value for value in vars(module).values()
                   if isinstance(value, type) and value.__module__ == module.__name__]
        assert classes, path.name
        for cls in classes:
            assert isinstance(cls.__dict__.get("version"), str), f"{path.name}: {cls.__name__}"


def test_counted_tracks_skip_or_fail_with_the_reason(suite):
    bench = suite("bench_counted").Counted()
    counts = {"numpy": {"instructions": 21.787654, "cycles": 27.74839},
              "mojo": ("skip", "mojo is not installed"), "cpp": ("fail", "cpp crashed")}
    bench.setup(counts, "numpy")
    assert bench.track_instructions(counts, "numpy") == 21.788
    assert bench.track_cycles(counts, "numpy") == 27.748
    with pytest.raises(NotImplementedError, match="mojo is not installed"):
        bench.setup(counts, "mojo")
    with pytest.raises(RuntimeError, match="cpp crashed"):
        bench.setup(counts, "cpp")
