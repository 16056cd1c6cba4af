#!/usr/bin/env python3
"""Tell the benchmark workflow whether GitHub Pages can take a deployment from it.

    python scripts/ci-pages-status.py          (needs GITHUB_REPOSITORY and GH_TOKEN with pages: read)

Sets the step output ``enabled`` to true only when the repository's Pages site exists and its
source is "GitHub Actions". When Pages is not enabled (GitHub answers 404) or publishes from a
branch, prints a notice saying what to click, sets false and exits 0, so a fresh fork's first
push stays green (the deploy job is skipped; the site is still built and kept as the workflow's
github-pages artifact). Any other answer (403, 5xx, no connection) is not "Pages not enabled":
it says so as an error and exits 1, so a run that cannot deploy is red instead of leaving a
stale site behind a green run. Exits 2 when the arguments are wrong.
"""

import os
import sys
from pathlib import Path

# ci_github.py lives beside this script: put its folder on sys.path explicitly, since Python
# leaves it out under PYTHONSAFEPATH=1 or -P (scripts/run-tests.sh sets it for the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ci_github import GitHubError, api, notice, set_output  # noqa: E402

HOW = "Settings → Pages → Build and deployment → Source: GitHub Actions, then re-run this workflow"


def pages_state(repository):
    """(enabled, why) for the repository's Pages site."""
    try:
        site = api("GET", f"/repos/{repository}/pages")
    except GitHubError as error:
        if error.status == 404:
            return False, f"GitHub Pages is not enabled for {repository}"
        raise
    if site.get("build_type") != "workflow":
        return False, (f"GitHub Pages of {repository} publishes from a branch "
                       f"(build_type {site.get('build_type')!r}), not from GitHub Actions")
    return True, f"GitHub Pages deploys from GitHub Actions: {site.get('html_url', '')}"


def main():
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1:
        print("ci-pages-status: set GITHUB_REPOSITORY=OWNER/NAME", file=sys.stderr)
        return 2
    try:
        enabled, why = pages_state(repository)
    except (GitHubError, OSError) as error:  # OSError: no connection (urllib's URLError)
        notice(f"Could not read the Pages settings of {repository} ({error}): whether to deploy is "
               "unknown, so this step fails; re-run it when GitHub answers.", "error")
        return 1
    if enabled:
        print(f"ci-pages-status: {why}")
    else:
        notice(f"Site not deployed: {why}. To publish it: {HOW}.")
    set_output("enabled", "true" if enabled else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
