#!/usr/bin/env python3
"""Tell the benchmark workflow whether GitHub Pages can take a deployment from it.

    python scripts/ci-pages-status.py          (needs GITHUB_REPOSITORY and GH_TOKEN with pages: read)

Sets the step output ``enabled`` to true only when the repository's Pages site exists and its
source is "GitHub Actions"; otherwise prints a notice saying what to click and sets false, so a
fresh fork's first push stays green (the deploy job is skipped; the site is still built and kept
as the workflow's github-pages artifact). Always exits 0 unless the arguments are wrong: the
answer is informational.
"""

import os
import sys

from ci_github import GitHubError, api, notice, set_output

HOW = "Settings → Pages → Build and deployment → Source: GitHub Actions, then re-run this workflow"


def pages_state(repository):
    """(enabled, why) for the repository's Pages site."""
    try:
        site = api("GET", f"/repos/{repository}/pages")
    except GitHubError as error:
        if error.status == 404:
            return False, f"GitHub Pages is not enabled for {repository}"
        return False, f"could not read the Pages settings of {repository} ({error})"
    if site.get("build_type") != "workflow":
        return False, (f"GitHub Pages of {repository} publishes from a branch "
                       f"(build_type {site.get('build_type')!r}), not from GitHub Actions")
    return True, f"GitHub Pages deploys from GitHub Actions: {site.get('html_url', '')}"


def main():
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if repository.count("/") != 1:
        print("ci-pages-status: set GITHUB_REPOSITORY=OWNER/NAME", file=sys.stderr)
        return 2
    enabled, why = pages_state(repository)
    if enabled:
        print(f"ci-pages-status: {why}")
    else:
        notice(f"Site not deployed: {why}. To publish it: {HOW}.")
    set_output("enabled", "true" if enabled else "false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
