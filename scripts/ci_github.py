"""The few GitHub REST calls the workflows' scripts make, with the standard library only.

GITHUB_API_URL (set on Actions; default https://api.github.com) is where requests go, so the
tests point it at a local stand-in; GH_TOKEN authenticates them.
"""

import json
import os
import urllib.error
import urllib.request


class GitHubError(Exception):
    """A request GitHub answered with an error status (kept in .status)."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def api(method, path, body=None):
    """Send one request to GitHub's REST API; returns the decoded JSON answer (None if empty)."""
    url = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/") + path
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "User-Agent": "gradi-ci"}
    if os.environ.get("GH_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['GH_TOKEN']}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as error:
        raise GitHubError(error.code, error.read().decode(errors="replace")[:300]) from None
    return json.loads(text) if text.strip() else None


def notice(message, level="notice"):
    """Print a message; on Actions also as an annotation (notice, warning or error)."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::{level}::{message}")
    else:
        print(message)


def summary(line):
    """Add a line to the job summary on Actions ($GITHUB_STEP_SUMMARY); nothing elsewhere."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a") as out:
            out.write(f"{line}\n")


def set_output(name, value):
    """A step output on Actions ($GITHUB_OUTPUT); printed otherwise."""
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a") as out:
            out.write(f"{name}={value}\n")
    print(f"{name}={value}")
