"""The scripts the workflows call, run here the way a workflow step runs them.

GitHub cannot run here, so each script is run against a local stand-in for what it talks to: a
scratch git repository (commit selection, the "nothing new" run), asv's own results API (stored
results), a local HTTP server answering like GitHub's REST API (Pages status, the PR comment),
asv's own site template (the offline site). The lock-file checks read the installed metadata.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
LOCK = ROOT / "benchmarks" / "requirements-env.txt"
PY = sys.executable

asv = pytest.importorskip("asv", reason="asv not installed (pip install .[bench])")


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t",
                                          "GIT_AUTHOR_EMAIL": "t@example.invalid",
                                          "GIT_COMMITTER_EMAIL": "t@example.invalid"}).stdout.strip()


@pytest.fixture
def project(tmp_path):
    """A scratch clone-like repository: this project's scripts, asv config and pins, 4 commits on main."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "project"
    shutil.copytree(SCRIPTS, repo / "scripts")
    (repo / "benchmarks").mkdir()
    for name in ("requirements-env.txt", "requirements-asv.txt"):
        shutil.copy(ROOT / "benchmarks" / name, repo / "benchmarks" / name)
    shutil.copy(ROOT / "asv.conf.json", repo)
    _git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    hashes = []
    for i in range(4):
        (repo / "version.txt").write_text(str(i))
        _git(repo, "add", "-A")
        _git(repo, "commit", "--quiet", "-m", f"commit {i}")
        hashes.append(_git(repo, "rev-parse", "HEAD"))
    return repo, hashes[::-1]  # newest first


def _store_result(repo, machine, commit):
    from asv import results
    result = results.Results({"machine": machine, "python": "3.11"}, {}, commit, 1700000000000,
                             "3.11", "existing-py", {})
    result.save(str(repo / ".asv" / "results"))
    info = {"machine": machine, "os": "Linux", "arch": "x86_64", "cpu": "x", "num_cpu": "2", "ram": "1GB",
            "version": 1}
    (repo / ".asv" / "results" / machine / "machine.json").write_text(json.dumps(info))


def _select(repo, *args):
    return subprocess.run([PY, str(repo / "scripts" / "ci-select-commits.py"), *args], cwd=repo,
                          capture_output=True, text=True, timeout=120)


def test_select_commits_new_leaves_out_what_this_machine_measured(project):
    repo, hashes = project
    _store_result(repo, "m1", hashes[2])
    done = _select(repo, "NEW", "m1", "10")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == hashes[:2]
    # Another machine (another CPU model) has no results: everything on main is new to it.
    assert _select(repo, "NEW", "m2", "10").stdout.split() == hashes


def test_select_commits_nothing_new_is_empty_and_succeeds(project):
    repo, hashes = project
    _store_result(repo, "m1", hashes[0])
    done = _select(repo, "HEAD^!", "m1", "10")
    assert done.returncode == 0 and done.stdout.strip() == ""
    assert "1 of them already measured" in done.stderr
    again = _select(repo, "HEAD^!", "m1", "10", "--remeasure")
    assert again.stdout.split() == [hashes[0]]


def test_select_commits_steps_and_bad_input(project):
    repo, hashes = project
    assert _select(repo, "ALL", "m1", "2").stdout.split() == [hashes[0], hashes[2]]
    assert _select(repo, "nosuchref..HEAD", "m1", "2").returncode == 2
    assert _select(repo, "NEW", "m1", "0").returncode == 2


def _ci_benchmarks(repo, **env):
    env = {**os.environ, "GRADI_VENV": str(Path(PY).parents[1]), **env}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(["bash", str(repo / "scripts" / "ci-benchmarks.sh")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_ci_benchmarks_with_nothing_new_says_so_and_exits_0(project, tmp_path):
    repo, hashes = project
    machine_file = tmp_path / "machine.json"
    machine_file.write_text(json.dumps({"m1": {"machine": "m1", "os": "x", "arch": "x86_64",
                                               "cpu": "x", "num_cpu": "2", "ram": "1GB"}, "version": 1}))
    for commit in hashes:
        _store_result(repo, "m1", commit)
    (repo / ".asv" / "results" / "benchmarks.json").write_text('{"version": 2}')
    done = _ci_benchmarks(repo, ASV_MACHINE_FILE=str(machine_file))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "nothing new to measure" in out
    assert (repo / ".asv" / "html" / "index.html").is_file()  # the site is still published


def test_ci_benchmarks_refuses_bad_inputs(project):
    repo, _ = project
    assert _ci_benchmarks(repo, ASV_MAX_COMMITS="ten").returncode == 2
    too_many = _ci_benchmarks(repo, ASV_MAX_COMMITS="21")  # more than the measuring step has time for
    assert too_many.returncode == 2 and "from 1 to 20, not '21'" in too_many.stderr
    assert _ci_benchmarks(repo, ASV_RANGE="main; rm -rf /").returncode == 2
    assert _ci_benchmarks(repo, ASV_QUICK="yes").returncode == 2


def test_asv_cli_keeps_the_machine_file_in_the_project(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    machine_file = tmp_path / "project-machine.json"
    env = {**os.environ, "HOME": str(home), "ASV_MACHINE_FILE": str(machine_file)}
    done = subprocess.run([PY, str(SCRIPTS / "asv-cli.py"), "machine", "--yes", "--machine", "here"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "here" in json.loads(machine_file.read_text())
    assert not (home / ".asv-machine.json").exists()


def test_ci_asv_setup_names_the_machine_after_its_cpu(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    machine_file = tmp_path / "m.json"
    env = {**os.environ, "HOME": str(home), "ASV_MACHINE_FILE": str(machine_file), "PYTHON": PY,
           "ASV_MACHINE_PREFIX": "gh-test", "PIP_NO_INDEX": "1"}
    env.pop("ASV_MACHINE", None)
    done = subprocess.run(["bash", str(SCRIPTS / "ci-asv-setup.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        pytest.skip("the pinned asv tools are not installed here: " + done.stderr[-200:])
    assert done.returncode == 0, done.stderr
    machines = {k: v for k, v in json.loads(machine_file.read_text()).items() if k != "version"}
    (name, info), = machines.items()
    assert re.fullmatch(rf"gh-test-{len(os.sched_getaffinity(0))}cpu-[a-z0-9.-]+", name), name
    assert info["cpu"] and info["ram"].endswith("GB")
    assert not (home / ".asv-machine.json").exists()


def _pip_constraint_seen(build_dir):
    done = subprocess.run([PY, str(SCRIPTS / "asv-env-pip.py"), str(build_dir), "config", "debug"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return re.search(r"PIP_CONSTRAINT='([^']*)'", done.stdout).group(1)


def test_asv_env_pip_uses_the_commits_own_pins_else_the_checkouts(tmp_path):
    own = tmp_path / "commit" / "benchmarks" / "requirements-env.txt"
    own.parent.mkdir(parents=True)
    own.write_text("numpy==1.26.4\n")
    assert _pip_constraint_seen(tmp_path / "commit") == str(own)
    assert _pip_constraint_seen(tmp_path / "older-commit") == str(LOCK)


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _installed(names):
    from importlib import metadata
    found = []
    for name in names:
        try:
            metadata.distribution(name)
            found.append(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _closure(requirement_names):
    """Installed distributions needed by these requirements (markers for this Python honoured)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen, todo = set(), [(name, set()) for name in requirement_names]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if (key, frozenset(extras)) in seen:
            continue
        seen.add((key, frozenset(extras)))
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append((req.name, set(req.extras)))
    return {key for key, _ in seen}


def test_benchmark_pins_cover_gradi_all_and_the_environment_tools():
    """Adding a dependency without re-running scripts/lock-benchmark-env.sh fails here."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    (everything,) = extras["all"]  # gradi[jax,mojo,...]
    wanted = list(project["dependencies"])
    for extra in re.search(r"\[(.*)\]", everything).group(1).split(","):
        wanted += extras[extra.strip()]
    names = [re.split(r"[ ;<>=!~\[]", text, maxsplit=1)[0] for text in wanted]
    missing = {re.sub(r"[-_.]+", "-", n).lower() for n in names} - {
        re.sub(r"[-_.]+", "-", n).lower() for n in _installed(names)}
    if missing:
        pytest.skip(f"not installed here, so their dependencies cannot be listed: {sorted(missing)}")
    pins = _pins(LOCK)
    needed = _closure(names) | _closure(["asv_runner", "build", "wheel", "pip", "pympler"])
    assert needed - set(pins) == set(), "re-run scripts/lock-benchmark-env.sh"
    assert {"scikit-build-core", "pybind11", "cmeel-eigen", "asv-runner", "mojo", "jax"} <= set(pins)
    host = _pins(ROOT / "benchmarks" / "requirements-asv.txt")
    assert {"asv", "asv-runner", "virtualenv"} <= set(host)
    assert host["asv-runner"] == pins["asv-runner"]


# A stand-in for GitHub's REST API: answers from a dict of (method, path) -> (status, body) and
# records every request.
class _FakeGitHub(http.server.BaseHTTPRequestHandler):
    routes, requests = {}, []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        type(self).requests.append((self.command, self.path, body, self.headers.get("Authorization")))
        status, answer = type(self).routes.get((self.command, self.path.split("?")[0]), (404, {"message": "Not Found"}))
        if callable(answer):
            answer = answer(body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    _FakeGitHub.routes, _FakeGitHub.requests = {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FakeGitHub
    server.shutdown()
    server.server_close()


def _run_script(name, *args, api, output=None, summary=None, **env):
    env = {**os.environ, "GITHUB_API_URL": api, "GH_TOKEN": "t0ken", "GITHUB_REPOSITORY": "me/gradi",
           "GITHUB_ACTIONS": "true", **env}
    env.pop("GITHUB_STEP_SUMMARY", None)
    if output is not None:
        env["GITHUB_OUTPUT"] = str(output)
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    return subprocess.run([PY, str(SCRIPTS / name), *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("status, site, enabled", [
    (404, {"message": "Not Found"}, "false"),
    (200, {"build_type": "legacy", "html_url": "https://me.github.io/gradi/"}, "false"),
    (200, {"build_type": "workflow", "html_url": "https://me.github.io/gradi/"}, "true"),
])
def test_pages_status(github, tmp_path, status, site, enabled):
    api, fake = github
    fake.routes[("GET", "/repos/me/gradi/pages")] = (status, site)
    output = tmp_path / "output"
    done = _run_script("ci-pages-status.py", api=api, output=output, PYTHONSAFEPATH="1")
    assert done.returncode == 0, done.stderr
    assert output.read_text() == f"enabled={enabled}\n"
    if enabled == "false":
        assert "::notice::Site not deployed" in done.stdout and "Source: GitHub Actions" in done.stdout
    assert fake.requests[0][3] == "Bearer t0ken"


@pytest.mark.parametrize("status", [403, 500, 503])
def test_pages_status_error_other_than_404_fails_the_step(github, tmp_path, status):
    api, fake = github
    fake.routes[("GET", "/repos/me/gradi/pages")] = (status, {"message": "Resource not accessible"})
    output = tmp_path / "output"
    done = _run_script("ci-pages-status.py", api=api, output=output)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"::error::Could not read the Pages settings of me/gradi (HTTP {status}" in done.stdout
    assert "not enabled" not in done.stdout and not output.exists()


def test_pages_status_without_a_connection_fails_the_step(tmp_path):
    done = _run_script("ci-pages-status.py", api="http://127.0.0.1:9", output=tmp_path / "output")
    assert done.returncode == 1 and "::error::Could not read the Pages settings" in done.stdout


COMPARE = """\
All benchmarks:

| Change   | Before [aaaaaaaa] <main> | After [bbbbbbbb] |   Ratio | Benchmark (Parameter)                                        |
|----------|---------------------|--------------------|---------|--------------------------------------------------------------|
|          | 1.00±0.01ms         | 1.02±0.01ms        |    1.02 | bench_solve.Solve.time_descend('numpy', 100, 2, 1)           |
|          | 2.00±0.1ms          | 2.10±0.1ms         |    1.05 | bench_solve.Solve.time_descend('numpy', 100, 2, 2)           |
|          | n/a                 | n/a                |     n/a | bench_solve.Solve.time_descend('mojo', 100, 2, 2)            |
| +        | 30.0M               | 40.0M              |    1.33 | bench_memory.Memory.peakmem_solve('numpy', 1000)             |
"""


def _report(folder, head="c" * 40, number=7, status="1"):
    folder.mkdir(exist_ok=True)
    (folder / "pr.json").write_text(json.dumps({"number": number, "head": head, "merge": "b" * 40,
                                                "base": "a" * 40, "machine": "gh-x", "run_url": "https://run"}))
    (folder / "gate-status").write_text(status)
    (folder / "gate.md").write_text("## asv gate\n\n```\ngated table\n```\n")
    (folder / "compare.txt").write_text(COMPARE)
    (folder / "info-status").write_text("0")
    done = subprocess.run([PY, str(SCRIPTS / "ci-pr-comment.py"), "build", str(folder)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return (folder / "comment.md").read_text()


def test_pr_comment_body(tmp_path):
    body = _report(tmp_path / "asv-pr")
    assert body.startswith("<!-- gradi-asv-pr-benchmarks -->")
    assert "Gate failed: regression" in body and "gated table" in body
    info = body.split("### Informational")[1]
    assert "'numpy', 100, 2, 2)" in info and "peakmem_solve('numpy', 1000)" in info
    assert "'numpy', 100, 2, 1)" not in info  # a gated row, not informational
    assert "'mojo'" not in info  # measured on neither commit
    assert "[aaaaaaaa] &lt;main&gt;" in info and "<main>" not in info
    assert "`bbbbbbbb`" in body and "`aaaaaaaa`" in body


def test_pr_comment_creates_then_updates_one_comment(github, tmp_path):
    api, fake = github
    folder = tmp_path / "asv-pr"
    _report(folder)
    comments = []
    fake.routes[("GET", "/repos/me/gradi/pulls/7")] = (200, {"head": {"sha": "c" * 40}})
    fake.routes[("GET", "/repos/me/gradi/issues/7/comments")] = (200, lambda _: comments)

    def create(body):
        comments.append({"id": 99, "user": {"type": "Bot"}, "body": body["body"]})
        return {"html_url": "https://x/99"}
    fake.routes[("POST", "/repos/me/gradi/issues/7/comments")] = (201, create)
    fake.routes[("PATCH", "/repos/me/gradi/issues/comments/99")] = (200, {})
    summary = tmp_path / "summary.md"
    for _ in range(2):
        done = _run_script("ci-pr-comment.py", "post", str(folder), api=api, summary=summary,
                           RUN_HEAD_SHA="c" * 40, PYTHONSAFEPATH="1")
        assert done.returncode == 0, done.stderr
    methods = [(m, p.split("?")[0]) for m, p, _, _ in fake.requests]
    assert methods.count(("POST", "/repos/me/gradi/issues/7/comments")) == 1
    assert methods.count(("PATCH", "/repos/me/gradi/issues/comments/99")) == 1
    assert summary.read_text().splitlines() == [
        "**PR benchmarks comment.** Commented on PR #7: https://x/99",
        "**PR benchmarks comment.** Updated the comment on PR #7 (id 99)."]


def test_pr_comment_is_not_steered_by_the_artifact(github, tmp_path):
    api, fake = github
    folder = tmp_path / "asv-pr"
    summary = tmp_path / "summary.md"
    _report(folder, head="d" * 40)
    done = _run_script("ci-pr-comment.py", "post", str(folder), api=api, summary=summary, RUN_HEAD_SHA="c" * 40)
    assert done.returncode == 2 and fake.requests == []
    assert "::error::Nothing posted: the artifact's head dddddddddddd is not the run's cccccccccccc" in done.stdout
    assert summary.read_text().startswith("**PR benchmarks comment.** Nothing posted: the artifact's head")


def test_pr_comment_says_in_the_summary_why_it_posted_nothing(github, tmp_path):
    api, fake = github
    folder = tmp_path / "asv-pr"
    _report(folder, head="c" * 40)
    fake.routes[("GET", "/repos/me/gradi/pulls/7")] = (200, {"head": {"sha": "e" * 40}})  # PR moved on
    summary = tmp_path / "summary.md"
    done = _run_script("ci-pr-comment.py", "post", str(folder), api=api, summary=summary, RUN_HEAD_SHA="c" * 40)
    assert done.returncode == 0 and "::notice::Nothing posted: PR #7 has moved on to eeeeeeeeeeee" in done.stdout
    assert [m for m, *_ in fake.requests] == ["GET"]
    missing = _run_script("ci-pr-comment.py", "post", str(tmp_path / "none"), api=api, summary=summary,
                          RUN_HEAD_SHA="c" * 40)
    assert missing.returncode == 0 and "::notice::Nothing posted: no benchmark report" in missing.stdout
    fake.routes[("GET", "/repos/me/gradi/pulls/7")] = (403, {"message": "Resource not accessible"})
    refused = _run_script("ci-pr-comment.py", "post", str(folder), api=api, summary=summary, RUN_HEAD_SHA="c" * 40)
    assert refused.returncode == 1 and "::error::Nothing posted: GitHub refused: HTTP 403" in refused.stdout
    lines = summary.read_text().splitlines()
    assert [line.split(": ")[0] for line in lines] == ["**PR benchmarks comment.** Nothing posted"] * 3
    assert "moved on" in lines[0] and "the PR benchmarks run stopped before" in lines[1] and "403" in lines[2]


def test_asv_site_ships_its_libraries_with_valid_integrity(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm not installed: the site keeps its CDN links")
    import base64
    import hashlib
    site = tmp_path / "html"
    shutil.copytree(Path(asv.__file__).parent / "www", site)
    (site / "index.json").write_text(json.dumps({"project_url": "#", "show_commit_url": "#"}))
    env = {**os.environ, "GITHUB_REPOSITORY": "me/gradi", "GITHUB_SERVER_URL": "https://github.com"}
    done = subprocess.run([PY, str(SCRIPTS / "asv-site.py"), str(site)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    page = (site / "index.html").read_text()
    assert not re.search(r'<(script|link)\b[^>]*(src|href)="https?://', page)
    tags = re.findall(r'(?:src|href)="(vendor/[^"]+)" integrity="(sha384-[^"]+)"', page)
    assert len(tags) == 10
    for path, integrity in tags:
        digest = base64.b64encode(hashlib.sha384((site / path).read_bytes()).digest()).decode()
        assert integrity == f"sha384-{digest}", path
    index = json.loads((site / "index.json").read_text())
    assert index["show_commit_url"] == "https://github.com/me/gradi/commit/"


def test_asv_site_refuses_an_unknown_cdn_address(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm not installed")
    site = tmp_path / "html"
    site.mkdir()
    (site / "index.json").write_text("{}")
    (site / "index.html").write_text('<script src="https://cdn.example.invalid/x.js"></script>')
    done = subprocess.run([PY, str(SCRIPTS / "asv-site.py"), str(site)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GITHUB_REPOSITORY": "me/gradi"})
    assert done.returncode == 1 and "cdn.example.invalid" in done.stderr
