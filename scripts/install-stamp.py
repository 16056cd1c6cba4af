#!/usr/bin/env python3
"""Whether a virtualenv's gradi is still the one installed from the sources as they are now.

    python scripts/install-stamp.py check STAMP SPEC   exit 0: up to date; 1: not, and says why
    python scripts/install-stamp.py write STAMP SPEC   record the state right after an install

Run with the virtualenv's own Python (scripts/setup.sh does, so a second `make test` with
nothing changed skips the reinstall and the C++ build). SPEC is what pip installed (".[all,test]").
The stamp lists every input of that install: SPEC, this Python, each file the wheel is built
from (pyproject.toml, README.md and every file under gradi/, native/ and mojo/, by path, size and
modification time, so an edited or touched file counts as changed, as it does for make), and a
digest of the installed gradi's RECORD, which pip rewrites on every install: any other install
into the environment (scripts/test-wheel.sh's wheel, say) makes the stamp stale too.
"""

import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("pyproject.toml", "README.md")
TREES = ("gradi", "native", "mojo")
SKIPPED = {"__pycache__", "__mojocache__"}


def sources():
    """(relative path, size, mtime in ns) of every file the wheel is built from, sorted."""
    paths = [ROOT / name for name in FILES]
    for tree in TREES:
        for folder, subfolders, names in os.walk(ROOT / tree):
            subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED)
            paths += [Path(folder) / name for name in names if not name.endswith(".pyc")]
    found = []
    for path in sorted(paths):
        if path.is_file():
            info = path.stat()
            found.append((path.relative_to(ROOT).as_posix(), info.st_size, info.st_mtime_ns))
    return found


def installed_record():
    """A digest of the installed gradi's RECORD, or a line saying it is not installed."""
    try:
        record = metadata.distribution("gradi").read_text("RECORD")
    except metadata.PackageNotFoundError:
        record = None
    if record is None:
        return "gradi: not installed"
    return f"gradi RECORD: {hashlib.sha256(record.encode()).hexdigest()}"


def state(spec):
    """The stamp's lines for the sources and environment as they are now."""
    lines = [f"spec: {spec}", f"python: {sys.executable} {sys.version.split()[0]}", installed_record()]
    return lines + [f"{path} {size} {mtime}" for path, size, mtime in sources()]


def first_change(before, now):
    """The first input that differs between two stamps, in words."""
    was, is_now = set(before), set(now)
    gone, new = [line for line in before if line not in is_now], [line for line in now if line not in was]
    if not gone and not new:
        return None
    line = (new or gone)[0]
    return f"{'changed' if new else 'gone'}: {line}"


def main(argv):
    if len(argv) != 3 or argv[0] not in ("check", "write"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    action, stamp, spec = argv[0], Path(argv[1]), argv[2]
    now = state(spec)
    if action == "write":
        stamp.write_text("\n".join(now) + "\n")
        return 0
    if not stamp.is_file():
        print("install-stamp: no stamp yet (first install)")
        return 1
    change = first_change(stamp.read_text().splitlines(), now)
    if change:
        print(f"install-stamp: {change}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
