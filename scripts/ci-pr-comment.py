#!/usr/bin/env python3
"""The pull request's benchmark comment: built in the PR's job, posted by a separate workflow.

    python scripts/ci-pr-comment.py build DIR     write DIR/comment.md from DIR's report files
    python scripts/ci-pr-comment.py post DIR [--dry-run]
                                                  create or update the PR's one comment

DIR is what scripts/ci-pr-benchmarks.sh leaves (the ``asv-pr`` artifact): pr.json (PR number,
head, merge and base commits, machine), gate-status and gate.md (scripts/asv-gate.sh's exit
status and summary), compare.txt (``asv compare`` of the base and the merge commit) and
info-status (the informational run's exit status).

``post`` runs in pr-comment.yml (workflow_run, pull-requests: write) and never runs the PR's code:
it reads DIR as data, checks that the PR named in pr.json still has the head commit of the run
that made the artifact (RUN_HEAD_SHA, from GitHub's event, not from the artifact), so an
artifact cannot steer the comment to another PR, and then edits the comment that carries MARKER
(or creates it). --dry-run prints the request instead of sending it. Every outcome, a comment
posted or nothing posted and why, is written to the job summary ($GITHUB_STEP_SUMMARY); nothing
posted because the report is missing or the PR has moved on exits 0, a refused or mismatched
report exits non-zero.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path

# ci_github.py lives beside this script: put its folder on sys.path explicitly, since Python
# leaves it out under PYTHONSAFEPATH=1 or -P (scripts/run-tests.sh sets it for the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ci_github import GitHubError, api, notice, summary  # noqa: E402

MARKER = "<!-- gradi-asv-pr-benchmarks -->"
LIMIT = 60000  # GitHub refuses comments over 65536 characters
# The rows shown under "Informational": threads=2, start-up and memory (they never fail the gate).
INFO_BENCH = os.environ.get(
    "ASV_INFO_BENCH",
    r"^bench_solve\.Solve\.time_descend\(.*, 2\)$|^bench_startup\.|^bench_memory\.")
VERDICT = {
    "0": "**Gate passed**: no gated benchmark got slower than its threshold.",
    "1": ("**Gate failed: regression.** A gated benchmark got slower than its threshold, or one that "
          "the base measured did not run on the merge commit (see below)."),
    "2": "**Gate failed: a benchmark or a build did not run** (not a measured regression): see the job log.",
}
SHA = re.compile(r"^[0-9a-f]{40}$")


def read(folder, name, default=""):
    path = folder / name
    return path.read_text(errors="replace").strip() if path.is_file() else default


def table_rows(text, pattern):
    """The lines of asv compare's tables whose benchmark matches ``pattern``, under one header."""
    header, rows = [], []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[-1].startswith("Benchmark") or set(line) <= set("|-: "):
            header = header or [line]
            if len(header) == 1 and set(line) <= set("|-: "):
                header.append(line)
            continue
        name = re.sub(r" \[[^\]]*\]$", "", cells[-1])  # asv appends [machine/env] to some rows
        if re.search(pattern, name) and cells[1:3] != ["n/a", "n/a"]:  # n/a twice: not run here
            rows.append(line)
    return header, rows


def build(folder):
    pr = json.loads(read(folder, "pr.json", "{}"))
    status = read(folder, "gate-status", "missing")
    short = {key: pr.get(key, "")[:8] for key in ("merge", "base", "head")}
    lines = [
        MARKER,
        "## Benchmarks (asv)",
        "",
        f"Merge commit `{short['merge']}` (PR head `{short['head']}`) against its first parent "
        f"`{short['base']}`, both measured on one runner, machine `{pr.get('machine', '?')}`.",
        "",
        VERDICT.get(status, f"**Gate status unknown** (`{status}`): see the job log."),
        "",
    ]
    gate = read(folder, "gate.md")
    if gate:
        lines += ["<details open><summary>Gated benchmarks</summary>", "", gate, "", "</details>", ""]
    header, rows = table_rows(read(folder, "compare.txt"), INFO_BENCH)
    lines += ["### Informational (never fails the check): threads=2, start-up, memory", ""]
    if rows:  # asv writes branch names as <main>: markdown would take them for HTML tags
        lines += [line.replace("<", "&lt;").replace(">", "&gt;") for line in header + rows]
    else:
        lines.append(f"No informational results (asv exit status {read(folder, 'info-status', '?')}).")
    if pr.get("run_url"):
        lines += ["", f"Results and full tables: the `asv-pr` artifact of [this run]({pr['run_url']})."]
    body = "\n".join(lines) + "\n"
    if len(body) > LIMIT:
        body = body[:LIMIT] + "\n\n… (cut: the full tables are in the `asv-pr` artifact)\n"
    (folder / "comment.md").write_text(body)
    return body


def existing_comment(repository, number):
    """The id of the bot comment carrying MARKER on the PR, or None."""
    page = 1
    while True:
        comments = api("GET", f"/repos/{repository}/issues/{number}/comments?per_page=100&page={page}")
        for comment in comments:
            if comment.get("user", {}).get("type") == "Bot" and comment.get("body", "").startswith(MARKER):
                return comment["id"]
        if len(comments) < 100:
            return None
        page += 1


def post(folder, dry_run):
    """(exit status, posted?, what happened): create or update the comment, or say why not."""
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    run_head = os.environ.get("RUN_HEAD_SHA", "")
    pr = json.loads(read(folder, "pr.json", "{}"))
    number, head = pr.get("number"), pr.get("head", "")
    body = read(folder, "comment.md")
    if repository.count("/") != 1 or not SHA.match(run_head):
        return 2, False, "Nothing posted: set GITHUB_REPOSITORY=OWNER/NAME and RUN_HEAD_SHA (40 hex digits)."
    if not isinstance(number, int) or isinstance(number, bool) or number < 1 or not body.startswith(MARKER):
        return 2, False, "Nothing posted: the artifact holds no PR number or no comment."
    if head != run_head:
        return 2, False, f"Nothing posted: the artifact's head {head[:12]} is not the run's {run_head[:12]}."
    body = body[:LIMIT]
    if dry_run:
        print(json.dumps({"repository": repository, "pull_request": number, "body": body}, indent=2))
        return 0, False, "Nothing posted: a dry run."
    current = api("GET", f"/repos/{repository}/pulls/{number}")["head"]["sha"]
    if current != run_head:
        return 0, False, (f"Nothing posted: PR #{number} has moved on to {current[:12]} since this run "
                          f"measured {run_head[:12]}; the comment is left as it is (the newer run will post).")
    comment = existing_comment(repository, number)
    if comment is None:
        made = api("POST", f"/repos/{repository}/issues/{number}/comments", {"body": body})
        return 0, True, f"Commented on PR #{number}: {made.get('html_url', '')}"
    api("PATCH", f"/repos/{repository}/issues/comments/{comment}", {"body": body})
    return 0, True, f"Updated the comment on PR #{number} (id {comment})."


def report(status, posted, message):
    """Say what happened: in the log (an annotation when nothing was posted) and in the job summary."""
    if posted:
        print(f"ci-pr-comment: {message}")
    else:
        notice(message, "error" if status else "notice")
    summary(f"**PR benchmarks comment.** {message}")
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["build", "post"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="post: print the request, send nothing")
    args = parser.parse_args(argv)
    if args.action == "build":
        if not args.folder.is_dir():
            print(f"ci-pr-comment: no folder {args.folder}", file=sys.stderr)
            return 2
        build(args.folder)
        print(f"ci-pr-comment: wrote {args.folder / 'comment.md'}")
        return 0
    if not args.folder.is_dir():  # the PR's job stopped before it made the artifact
        return report(0, False, f"Nothing posted: no benchmark report ({args.folder}); the PR benchmarks "
                                "run stopped before it made its asv-pr artifact (see that run).")
    try:
        return report(*post(args.folder, args.dry_run))
    except GitHubError as error:
        return report(1, False, f"Nothing posted: GitHub refused: {error}.")


if __name__ == "__main__":
    sys.exit(main())
