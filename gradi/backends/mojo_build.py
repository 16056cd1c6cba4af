"""Build the Mojo extension on first use and cache it; ``python -m gradi.backends.mojo_build`` warms the cache.

The extension is compiled with ``mojo build <sources>/gradi_mojo.mojo --emit shared-lib`` in the
user's environment (compiling inside pip's isolated build environment leaves a RUNPATH to a
deleted folder, see mojo/README.md). The cache folder is keyed by the content of every source
file, the compiler's version and real path, and the CPU it targets, so editing a source,
switching compiler or moving the cache to another machine rebuilds and nothing stale is ever
loaded. Builds go to a temporary folder renamed into place, so two processes never load a
half-written library, and ``build.json`` records the library's size and SHA-256: an entry that
does not match its record (truncated, corrupt, or a record that does not parse) is rebuilt,
with a warning on stderr, never loaded.

Environment: ``GRADI_MOJO`` (path to the compiler; default ``<venv>/bin/mojo``, then PATH),
``GRADI_CACHE_DIR`` (cache root; default ``$XDG_CACHE_HOME/gradi`` or ``~/.cache/gradi``),
``GRADI_MOJO_TARGET_CPU`` (build for an x86-64 level instead of this CPU, e.g. ``x86-64-v3`` for
the AVX2 code path; it must be a level this CPU runs).
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
TARGET_ENV = "GRADI_MOJO_TARGET_CPU"
_PACKAGED_SOURCES = Path(__file__).resolve().parent.parent / "mojo_src"
_TREE_SOURCES = Path(__file__).resolve().parents[2] / "mojo"
_loaded = {}

# The x86-64 micro-architecture levels (psABI) a build can target, with the /proc/cpuinfo flags
# each needs on top of the previous level: a library built for a level this CPU lacks would die
# of SIGILL on load, so such a request is refused instead.
X86_LEVELS = {
    "x86-64": (),
    "x86-64-v2": ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}


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
    """The compiler's ``--version`` line; MojoUnavailable if it does not run.

    Remembered in the cache (``compilers.json``) under the compiler's real path, size and
    modification time, so listing backends does not start the compiler every time."""
    real = os.path.realpath(compiler)
    stat = os.stat(real)
    stamp = [stat.st_size, stat.st_mtime_ns]
    known = _read_json(cache_root() / "compilers.json")
    known = known if isinstance(known, dict) else {}
    entry = known.get(real)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("version"), str):
        return entry["version"]
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ))
    except (OSError, subprocess.SubprocessError) as exc:
        raise MojoUnavailable(f"cannot run {compiler}: {exc}") from exc
    if done.returncode != 0:
        raise MojoUnavailable(f"{compiler} --version failed: {_first_error(done.stderr + done.stdout)}")
    version = done.stdout.strip()
    known[real] = {"stamp": stamp, "version": version}
    _write_json(cache_root() / "compilers.json", known)
    return version


def cache_root():
    root = os.environ.get("GRADI_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradi"
    return Path(root) / "mojo"


def host_cpu():
    """What ``mojo build`` targets by default (the host CPU): machine, model and feature flags."""
    fields = (host.cpuinfo_field(name) for name in ("model name", "flags", "Features"))
    return "\n".join([platform.machine(), *(value for value in fields if value)])


def env_target_cpu():
    """The CPU level named by $GRADI_MOJO_TARGET_CPU (None: this CPU); MojoUnavailable if this
    CPU cannot run it or it is not an x86-64 level."""
    name = os.environ.get(TARGET_ENV) or None
    if name is not None:
        check_target(name)
    return name


def check_target(name):
    """MojoUnavailable unless ``name`` is an x86-64 level this CPU runs."""
    if platform.machine() not in ("x86_64", "AMD64") or name not in X86_LEVELS:
        raise MojoUnavailable(f"{TARGET_ENV}={name} is not an x86-64 level this machine has "
                              f"(one of {', '.join(X86_LEVELS)} on x86-64)")
    flags = set((host.cpuinfo_field("flags") or "").split())
    levels = list(X86_LEVELS)
    missing = [flag for level in levels[:levels.index(name) + 1] for flag in X86_LEVELS[level]
               if flag not in flags]
    if missing:
        raise MojoUnavailable(f"{TARGET_ENV}={name}: this CPU lacks {', '.join(missing)}")


def build_key(sources, compiler, version, target_cpu=None):
    """Hash of every source file's name and bytes, the compiler (version, real path) and the
    target CPU (the host's by default): the library is compiled for one instruction set, so a
    cache shared between machines must not hand an AVX-512 build to a CPU without it."""
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.mojo")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(version.encode() + b"\0" + os.path.realpath(compiler).encode() + b"\0")
    digest.update((target_cpu or host_cpu()).encode())
    return digest.hexdigest()[:24]


def entry_folder(target):
    """The cache folder of the build for ``target`` (an x86-64 level, or None for this CPU);
    runs the compiler only the first time it is seen (see compiler_version)."""
    compiler = find_compiler()
    return cache_root() / build_key(source_dir(), compiler, compiler_version(compiler), target)


def cached_state(folder):
    """("cached", record), ("missing", None) or ("invalid", why) for the cache entry ``folder``."""
    library = folder / f"{MODULE}.so"
    if not folder.exists():
        return "missing", None
    record = _read_json(folder / "build.json")
    if not isinstance(record, dict) or not isinstance(record.get("library_sha256"), str):
        return "invalid", "its build.json is missing or corrupt"
    try:
        size = library.stat().st_size
    except OSError:
        return "invalid", f"{library.name} is missing"
    if size != record.get("library_bytes") or _sha256(library) != record["library_sha256"]:
        return "invalid", f"{library.name} does not match the size and SHA-256 recorded at build time"
    return "cached", record


def build(force=False, target_cpu=None):
    """Path of the compiled extension and its build record, compiling it if not cached.

    ``target_cpu`` (an x86-64 level, e.g. "x86-64-v3") builds for that level instead of
    $GRADI_MOJO_TARGET_CPU or this CPU, to run the kernels with narrower SIMD than the host has."""
    if target_cpu is None:
        target = env_target_cpu()
    else:
        check_target(target_cpu)
        target = target_cpu
    sources = source_dir()
    final = entry_folder(target)
    library = final / f"{MODULE}.so"
    state, detail = cached_state(final)
    if state == "cached" and not force:
        return library, detail
    if state == "invalid":
        print(f"gradi: the cached Mojo extension in {final} is unusable ({detail}); rebuilding it",
              file=sys.stderr)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=final.parent))
    try:
        compiler = find_compiler()
        command = [compiler, "build", str(sources / f"{MODULE}.mojo"), "--emit", "shared-lib",
                   "-o", str(staging / library.name)]
        if target:
            command += ["--target-cpu", target]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=staging, env=dict(os.environ))
        seconds = time.perf_counter() - start
        built = staging / library.name
        if done.returncode != 0 or not built.is_file():
            raise MojoUnavailable(f"mojo build failed: {_first_error(done.stderr + done.stdout)}")
        record = {"compiler": compiler_version(compiler), "compile_seconds": round(seconds, 3),
                  "command": command, "target_cpu": target or "host",
                  "library_bytes": built.stat().st_size, "library_sha256": _sha256(built)}
        (staging / "build.json").write_text(json.dumps(record, indent=1))
        _move_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    state, detail = cached_state(final)
    if state != "cached":
        raise MojoUnavailable(f"the Mojo extension built in {final} does not verify: {detail}")
    return library, detail


def _move_into_place(staging, final):
    """Rename the finished build to its cache folder; a stale folder there is moved aside first.
    If another process put a good build there meanwhile, keep it."""
    if final.exists():
        if cached_state(final)[0] == "cached":
            return
        aside = Path(tempfile.mkdtemp(prefix="stale-", dir=final.parent))
        try:
            os.rename(final, aside / final.name)
        except OSError:
            pass  # another process moved it first
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(staging, final)
    except OSError:
        if cached_state(final)[0] != "cached":  # lost a race only if the winner's build is good
            raise


def status():
    """Without compiling or importing: "available" when a verified build is cached, "builds on
    first use" when the compiler is present but the cache entry is not, "rebuilds on first use
    (why)" when the entry does not verify; MojoUnavailable when the compiler cannot run."""
    state, detail = cached_state(entry_folder(env_target_cpu()))
    if state == "cached":
        return "available"
    return "builds on first use" if state == "missing" else f"rebuilds on first use ({detail})"


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


def failure():
    """The MojoUnavailable of an earlier load_extension in this process, or None."""
    loaded = _loaded.get("module")
    return loaded if isinstance(loaded, Exception) else None


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


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path):
    """The JSON value in ``path``, or None when it is missing or does not parse."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_json(path, value):
    """Write ``value`` to ``path`` atomically; a cache that cannot be written is only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
            json.dump(value, handle)
        os.replace(handle.name, path)
    except OSError:
        pass


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
    print(f"target CPU: {record['target_cpu']}")
    print(f"compile seconds (when built): {record['compile_seconds']:.2f}")
    print(f"this call seconds: {first:.2f}")
    print(f"warm lookup + import seconds: {warm:.3f}")


if __name__ == "__main__":
    main()
