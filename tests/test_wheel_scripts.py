"""scripts/build-wheel.sh and scripts/test-wheel.sh run exactly as the README shows them.

Both are run from the root of a copy of the repository whose own ``.venv`` is a fresh virtualenv
(seeing this environment's packages through a .pth file, so nothing but gradi is installed), with
no PYTHON set: the default interpreter is the relative ``.venv/bin/python``, which must keep
working after the scripts change directory. The build compiles the C++ extension in pip's isolated
build environment (about a minute), hence the ``slow`` marker (CI's weekly slow job runs it).
"""

import os
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
