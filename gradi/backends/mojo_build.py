"""Build the Mojo extension on first use and cache it; ``python -m gradi.backends.mojo_build`` warms the cache.

The extension is compiled with ``mojo build <sources>/gradi_mojo.mojo --emit shared-lib`` in the
user's environment (compiling inside pip's isolated build environment leaves a RUNPATH to a
deleted folder, see mojo/README.md). The cache folder is keyed by the content of every source
file, the compiler's version and real path, and the host CPU, so editing a source, switching
compiler or moving the cache to another machine rebuilds and nothing stale is ever loaded. Builds go to a temporary folder renamed into place,
so two processes never load a half-written .so.

Environment: ``GRADI_MOJO`` (path to the compiler; default ``<venv>/bin/mojo``, then PATH),
``GRADI_CACHE_DIR`` (cache root; default ``$XDG_CACHE_HOME/gradi`` or ``~/.cache/gradi``).
"""

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import host

MODULE = "gradi_mojo"
_PACKAGED_SOURCES = Path(__file__).resolve().parent.parent / "mojo_src"
_TREE_SOURCES = Path(__file__).resolve().parents[2] / "mojo"
_loaded = {}


class MojoUnavailable(ImportError):
    """The Mojo extension cannot be built or loaded here; the message says why in one line."""


def source_dir():
    """The folder holding gradi_mojo.mojo: the installed package's copy, else the source tree's."""
    for folder in (_PACKAGED_SOURCES, _TREE_SOURCES):
        if (folder / f"{MODULE}.mojo").is_file():
            return folder
    raise MojoUnavailable(f"Mojo sources not found (looked in {_PACKAGED_SOURCES} and {_TREE_SOURCES})")


def find_compiler():
    """Path of the mojo compiler: $GRADI_MOJO, else beside sys.executable, else on PATH."""
    override = os.environ.get("GRADI_MOJO")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise MojoUnavailable(f"GRADI_MOJO={override} is not an executable file")
        return override
    found = host.executable("mojo")
    if found:
        return found
    raise MojoUnavailable("Mojo compiler not found (pip install 'gradi[mojo]', or set GRADI_MOJO)")


def compiler_version(compiler):
    """The compiler's ``--version`` line; MojoUnavailable if it does not run."""
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ))
    except (OSError, subprocess.SubprocessError) as exc:
        raise MojoUnavailable(f"cannot run {compiler}: {exc}") from exc
    if done.returncode != 0:
        raise MojoUnavailable(f"{compiler} --version failed: {_first_error(done.stderr + done.stdout)}")
    return done.stdout.strip()


def cache_root():
    root = os.environ.get("GRADI_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradi"
    return Path(root) / "mojo"


def host_cpu():
    """What ``mojo build`` targets by default (the host CPU): machine, model and feature flags."""
    fields = (host.cpuinfo_field(name) for name in ("model name", "flags", "Features"))
    return "\n".join([platform.machine(), *(value for value in fields if value)])


def build_key(sources, compiler, version, target_cpu=None):
    """Hash of every source file's name and bytes, the compiler (version, real path) and the
    host CPU: the library is compiled for this CPU's instruction set, so a cache shared between
    machines must not hand an AVX-512 build to a CPU without it."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.mojo")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(version.encode() + b"\0" + os.path.realpath(compiler).encode() + b"\0")
    digest.update((target_cpu or host_cpu()).encode())
    return digest.hexdigest()[:24]


def build(force=False, target_cpu=None):
    """Path of the compiled extension and its build record, compiling it if not cached.

    ``target_cpu`` (e.g. "x86-64-v3") builds for that CPU instead of the host's, to test the
    kernels with narrower SIMD than the host has."""
    sources = source_dir()
    compiler = find_compiler()
    version = compiler_version(compiler)
    final = cache_root() / build_key(sources, compiler, version, target_cpu)
    library = final / f"{MODULE}.so"
    if library.is_file() and not force:
        return library, json.loads((final / "build.json").read_text())
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=final.parent))
    try:
        command = [compiler, "build", str(sources / f"{MODULE}.mojo"), "--emit", "shared-lib",
                   "-o", str(staging / library.name)]
        if target_cpu:
            command += ["--target-cpu", target_cpu]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=staging, env=dict(os.environ))
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not (staging / library.name).is_file():
            raise MojoUnavailable(f"mojo build failed: {_first_error(done.stderr + done.stdout)}")
        record = {"compiler": version, "compile_seconds": round(seconds, 3), "command": command}
        (staging / "build.json").write_text(json.dumps(record, indent=1))
        if force and final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(staging, final)
        except OSError:
            if not library.is_file():  # lost a race only if the winner's build is in place
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return library, json.loads((final / "build.json").read_text())


def load_extension():
    """The imported extension module (built if needed); MojoUnavailable, cached, if it cannot be."""
    if "module" not in _loaded:
        try:
            library, _ = build()
            _loaded["module"] = _import_keeping_environment(library)
        except MojoUnavailable as exc:
            _loaded["module"] = exc
        except (ImportError, OSError) as exc:
            _loaded["module"] = MojoUnavailable(f"cannot load the Mojo extension: {exc}")
    if isinstance(_loaded["module"], Exception):
        raise _loaded["module"]
    return _loaded["module"]


# Variables the Mojo runtime sets in the process environment when the extension loads.
# PYTHONEXECUTABLE (the base interpreter) and PYTHONPATH would leak into every later child
# process: a child Python then loses the virtual environment, including the mojo compiler's
# own launcher. Nothing in Mojo reads them after the import, so they are restored.
_RUNTIME_VARIABLES = ("PYTHONEXECUTABLE", "PYTHONPATH", "MOJO_PYTHON_LIBRARY")


def _import_keeping_environment(library):
    """Import the extension at ``library``, then undo the runtime's environment changes."""
    saved = {name: os.environ.get(name) for name in _RUNTIME_VARIABLES}
    try:
        spec = importlib.util.spec_from_file_location(MODULE, library)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
                os.unsetenv(name)
            else:
                os.environ[name] = value
    return module


def _first_error(output):
    """The compiler's first error line (else its first non-empty line), for a one-line reason."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    lines = [line for line in lines if "Crashpad" not in line]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "no output"


def main(argv=None):
    """Build (or find) the extension; print its path, the compile time and a warm lookup+import time."""
    force = "--force" in (argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    library, record = build(force=force)
    first = time.perf_counter() - start
    start = time.perf_counter()
    build()
    load_extension()
    warm = time.perf_counter() - start
    print(library)
    print(f"compile seconds (when built): {record['compile_seconds']:.2f}")
    print(f"this call seconds: {first:.2f}")
    print(f"warm lookup + import seconds: {warm:.3f}")


if __name__ == "__main__":
    main()
