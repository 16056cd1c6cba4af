"""The scripts that install gradi and run its tests: one way to run the tests, one way to install.

scripts/build-wheel.sh and scripts/test-wheel.sh run exactly as the README shows them: from the
root of a copy of the repository whose own ``.venv`` is a fresh virtualenv (seeing this
environment's packages through a .pth file, so nothing but gradi is installed), with no PYTHON
set: the default interpreter is the relative ``.venv/bin/python``, which must keep working after
the scripts change directory. The build compiles the C++ extension in pip's isolated build
environment (about a minute), hence the ``slow`` marker (CI's weekly slow job runs it).

`make test` and CI's test jobs both end in scripts/run-tests.sh (ruff, then pytest, in one
environment); scripts/install-stamp.py decides when `make test`'s set-up may skip the reinstall.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_build_and_test_the_wheel_the_readme_way(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    repo = tmp_path / "clone"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    subprocess.run([sys.executable, "-m", "venv", str(repo / ".venv")], check=True)
    site = next((repo / ".venv" / "lib").glob("python*/site-packages"))
    (site / "this-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "GRADI_DIST", "VIRTUAL_ENV")}

    built = subprocess.run(["scripts/build-wheel.sh"], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheels = list((repo / "dist").glob("gradi-*.whl"))
    assert len(wheels) == 1

    tested = subprocess.run(["scripts/test-wheel.sh", "-q", "-p", "no:cacheprovider", "tests/test_shapes.py"],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout
    installed = subprocess.run([str(repo / ".venv" / "bin" / "python"), "-c",
                                "import gradi, sys; sys.stdout.write(gradi.__file__)"],
                               cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert installed.startswith(str(site)), installed


def test_make_test_and_ci_run_the_tests_through_one_script():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test: setup\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert recipe == "\tPYTHON=$(BIN)/python bash scripts/run-tests.sh\n"
    wheel = (ROOT / "scripts" / "test-wheel.sh").read_text().rstrip().splitlines()
    assert wheel[-1] == 'PYTHON=$PYTHON exec scripts/run-tests.sh "$@"'
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: scripts/test-wheel.sh\n" in ci and "run: scripts/test-wheel.sh -m slow\n" in ci
    assert "NUM_THREADS" not in ci  # the environment is run-tests.sh's alone
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")


def test_run_tests_gives_every_caller_the_same_environment(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("import os, sys\n\n\ndef test_environment():\n"
                     "    assert sys.flags.safe_path\n"
                     "    assert (os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS']) == ('2', '1')\n")
    unset = ("PYTHONSAFEPATH", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHON"] = os.path.relpath(sys.executable, tmp_path)  # relative to the caller's folder
    done = subprocess.run([str(ROOT / "scripts" / "run-tests.sh"), "-q", "-p", "no:cacheprovider", str(probe)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All checks passed!" in done.stdout  # ruff ran over the repository first
    assert "1 passed" in done.stdout


def _stamp(repo, action, spec=".[all,test]"):
    done = subprocess.run([sys.executable, str(repo / "scripts" / "install-stamp.py"), action,
                           str(repo / "stamp"), spec], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout.strip()


def test_install_stamp_is_stale_after_any_change_to_what_gradi_is_built_from(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "install-stamp.py", repo / "scripts")
    sources = {"pyproject.toml": "[project]\n", "README.md": "# x\n", "gradi/__init__.py": "",
               "native/src/simd.cpp": "int x;\n", "mojo/simd_kernel.mojo": "fn f(): pass\n"}
    for name, text in sources.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    (repo / "gradi" / "__pycache__").mkdir()
    assert _stamp(repo, "check") == (1, "install-stamp: no stamp yet (first install)")
    assert _stamp(repo, "write") == (0, "")
    assert _stamp(repo, "check") == (0, "")
    (repo / "gradi" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")  # not a source
    assert _stamp(repo, "check") == (0, "")

    source = repo / "native" / "src" / "simd.cpp"
    info = source.stat()
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # touched
    status, why = _stamp(repo, "check")
    assert status == 1 and why.startswith("install-stamp: changed: native/src/simd.cpp ")
    _stamp(repo, "write")
    (repo / "mojo" / "new.mojo").write_text("")
    assert _stamp(repo, "check")[1].startswith("install-stamp: changed: mojo/new.mojo ")
    (repo / "mojo" / "new.mojo").unlink()
    assert _stamp(repo, "check") == (0, "")
    (repo / "README.md").unlink()
    assert _stamp(repo, "check")[1].startswith("install-stamp: gone: README.md ")
    (repo / "README.md").write_text("# x\n")
    assert _stamp(repo, "check", spec=".[all]") == (1, "install-stamp: changed: spec: .[all]")
    assert _stamp(repo, "bogus")[0] == 2
