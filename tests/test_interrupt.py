"""Ctrl-C stops a long solve on every backend within about a second: ``gradi solve`` prints one
line and exits 130, ``gradi.solve`` raises KeyboardInterrupt.

Each case runs in its own process with timeouts. SIGINT is sent once the backend is computing:
the child announces the first ``descend`` call of its backend on stdout (a wrapper around the
real one), so the signal lands in a run of the real kernel, not during start-up. Small N keeps
every case short; the sweep over every backend (default threads) is ``slow``, a fast subset
runs always, on one thread: a parallel kernel on a machine with more runnable threads than
cores can slow down a thousandfold between two chunks (threads preempted at every barrier), so
a chunk sized from the previous chunk's pace can last far longer than ``CHUNK_SECONDS`` there.

Every child starts with SIGINT at its default disposition (``DEFAULT_SIGINT``), whatever the test
command inherited: a parent that ignores SIGINT (``nohup``, ``make test &`` in a script, some CI
runners) passes that on to its children, and a Python started so installs no KeyboardInterrupt
handler, so the Ctrl-C the test sends would do nothing.
"""

import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gradi

STOP_WITHIN = 3.0  # seconds from SIGINT to exit: one chunk (solver.CHUNK_SECONDS) plus exiting
START_WITHIN = 120.0  # seconds for a child to reach the kernel (imports, a JIT or a first build)
N = 200  # a step of the slowest backend (python) takes well under a chunk at this size
FAST = ["numpy", "cpp-simd"]  # with one thread: see the module docstring

ANNOUNCE = textwrap.dedent("""\
    import os, sys
    import gradi
    backend = gradi.backends.get(sys.argv[2])
    real = type(backend).descend

    def announced(state, X, niter):
        if not getattr(backend, "announced", False):
            backend.announced = True
            os.write(1, b"descending\\n")
        return real(backend, state, X, niter)

    backend.descend = announced
""")

CLI = ANNOUNCE + textwrap.dedent("""\
    from gradi.cli import main
    threads = [] if sys.argv[3] == "default" else ["--threads", sys.argv[3]]
    sys.exit(main(["solve", "--shape", "circle", "-n", sys.argv[1], "--backend", sys.argv[2],
                   "--niter", str(10**9), *threads]))
""")

PYTHON = ANNOUNCE + textwrap.dedent("""\
    D = gradi.distance_matrix(gradi.shapes.circle(int(sys.argv[1])))
    threads = None if sys.argv[3] == "default" else int(sys.argv[3])
    try:
        gradi.solve(D, 2, backend=sys.argv[2], niter=10**12, threads=threads)
    except KeyboardInterrupt:
        print("raised KeyboardInterrupt", flush=True)
        sys.exit(0)
    print("finished without an interrupt", flush=True)
""")


def require(name):
    backend = gradi.backends.get(name)
    if not backend.available:
        pytest.skip(f"{name}: {backend.status()}")


# Runs argv[1:] (an absolute path first) in this process with SIGINT at its default: a signal
# ignored stays ignored across exec, a default one becomes Python's KeyboardInterrupt handler.
# An exec wrapper rather than preexec_fn, which is unsafe in a parent with threads (OpenMP's).
DEFAULT_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                                        "os.execv(sys.argv[1], sys.argv[1:])"]


def interrupt(argv, ready, cwd):
    """Start ``argv`` in ``cwd`` (not the checkout, whose gradi/ would shadow the installed one)
    with SIGINT at its default, wait until ``ready(process)``, send SIGINT: (seconds to exit, exit
    code, stdout, stderr)."""
    child = subprocess.Popen([*DEFAULT_SIGINT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=cwd)
    try:
        ready(child)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        return time.perf_counter() - sent, child.returncode, out, err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


def announced(child):
    """Wait for the child's "descending" line (it reads stdout: the rest comes with communicate)."""
    line = _readline(child, START_WITHIN)
    assert line == "descending\n", f"child did not reach the kernel: {line!r}, {child.stderr.read()}"
    time.sleep(0.3)  # a few chunks into the run


def _readline(child, timeout):
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return child.stdout.readline()


def check_cli_stopped(seconds, code, out, err):
    assert code == 130, (code, err)
    assert err.splitlines() == ["gradi solve: interrupted"], err
    assert out == "", out
    assert seconds < STOP_WITHIN, f"took {seconds:.2f} s to stop"


def check_python_stopped(seconds, code, out, err):
    assert code == 0 and out == "raised KeyboardInterrupt\n", (code, out, err)
    assert seconds < STOP_WITHIN, f"took {seconds:.2f} s to stop"


@pytest.mark.parametrize("backend", FAST)
def test_ctrl_c_stops_gradi_solve_with_one_line_and_exit_code_130(backend, tmp_path):
    require(backend)
    check_cli_stopped(*interrupt([sys.executable, "-c", CLI, str(N), backend, "1"], announced, tmp_path))


@pytest.mark.parametrize("backend", FAST)
def test_ctrl_c_makes_gradi_solve_raise_keyboard_interrupt_even_for_10_to_the_12_iterations(backend, tmp_path):
    require(backend)
    check_python_stopped(*interrupt([sys.executable, "-c", PYTHON, str(N), backend, "1"], announced, tmp_path))


@pytest.mark.parametrize("backend", ["cpp-simd"])
def test_ctrl_c_stops_the_installed_gradi_command(backend, tmp_path):
    """The console script itself, untouched: SIGINT once the C++ extension is loaded (that
    happens in the runnability check, after start-up, a moment before solving)."""
    require(backend)
    gradi_command = Path(sys.executable).with_name("gradi")
    if not gradi_command.exists():
        pytest.skip("the gradi command is not installed beside this Python")

    def extension_loaded(child):
        deadline = time.monotonic() + START_WITHIN
        while "_native" not in Path(f"/proc/{child.pid}/maps").read_text():
            assert time.monotonic() < deadline and child.poll() is None, "the extension never loaded"
            time.sleep(0.05)
        time.sleep(0.5)  # validation and the first chunks

    argv = [str(gradi_command), "solve", "--shape", "sphere", "-n", "2000", "--niter", "100000000",
            "--backend", backend, "--threads", "1"]
    check_cli_stopped(*interrupt(argv, extension_loaded, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("backend", gradi.backends.names())
def test_ctrl_c_stops_every_backend(backend, tmp_path):
    require(backend)
    check_cli_stopped(*interrupt([sys.executable, "-c", CLI, str(N), backend, "default"], announced, tmp_path))
    check_python_stopped(*interrupt([sys.executable, "-c", PYTHON, str(N), backend, "default"], announced,
                                    tmp_path))
