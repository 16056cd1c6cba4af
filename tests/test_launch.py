"""Multi-process runs fail together: a Ctrl-C, an error or the death of any one process ends the
whole run, under ``gradi launch`` and when the processes were started by hand.

Every case starts real processes of a real ``jax.distributed`` run (gloo on 127.0.0.1) at small
N, bounded by generous timeouts rather than a measured time: a run that does not fail together
hangs for ever, so ending at all within the timeout, with the right codes and lines, is the
property. Signals are sent once every process is connected (gloo announces each connection).
Processes started by hand get SIGINT at its default (``DEFAULT_SIGINT``), as a terminal gives
it, whatever this test's parent does with it.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import gradi
from gradi.sharded import distributed, launch

pytest.importorskip("jax", reason="jax is not installed (pip install 'gradi[jax]')")

GRADI = [sys.executable, "-m", "gradi"]
START_TIMEOUT = 240  # seconds for the processes to start and connect (a busy 2-core machine)
END_TIMEOUT = 60  # seconds a run that fails together may take to end (promptly: well under 1 s)
LONG_SOLVE = ["solve", "--backend", "jax-sharded", "-n", "300", "--niter", str(10**9)]
DEFAULT_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                                        "os.execv(sys.argv[1], sys.argv[1:])"]


def gradi_lines(stderr):
    """gradi's lines of stderr (the rest is the runtime's: gloo's connection notices, whose
    pieces the processes' shared stderr can mix, and JAX's log); no traceback among them."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("gradi")]


class Watched:
    """A started process whose stderr is read as it comes, until it ends."""

    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self):
        return "".join(self.lines)

    def finish(self, timeout):
        """The exit code, once ended within ``timeout`` (else killed, and the test fails)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not end within {timeout} s: {self.stderr}")
        finally:
            self.kill()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=30)
        self.process.stderr.close()


def wait_connected(watched, count):
    """Wait until gloo announced ``count`` connections in the processes' stderr."""
    deadline = time.monotonic() + START_TIMEOUT
    while sum(item.stderr.count("is connected to") for item in watched) < count:
        if any(item.process.poll() is not None for item in watched) or time.monotonic() > deadline:
            for item in watched:
                item.kill()
            pytest.fail("the processes never connected: " + " | ".join(item.stderr for item in watched))
        time.sleep(0.1)


def connected_launch(argv=LONG_SOLVE):
    """A 2-process gradi launch of ``argv``, once both processes are connected, and their pids."""
    launcher = Watched([*GRADI, "launch", "-n", "2", "--", *GRADI, *argv])
    wait_connected([launcher], 2)
    return launcher, children(launcher.process.pid)


def by_hand(argv=LONG_SOLVE):
    """Two processes of ``argv`` started by hand (--coordinator ...), once connected."""
    address = f"127.0.0.1:{launch.free_port()}"
    processes = [Watched([*DEFAULT_SIGINT, GRADI[0], *GRADI[1:], *argv, "--coordinator", address,
                          "--num-processes", "2", "--process-id", str(index)]) for index in (0, 1)]
    wait_connected(processes, 2)
    return processes


@pytest.mark.parametrize("which", [0, 1])
def test_ctrl_c_to_one_launched_process_ends_the_run(which):
    launcher, pids = connected_launch()
    assert len(pids) == 2
    os.kill(pids[which], signal.SIGINT)
    code = launcher.finish(END_TIMEOUT)
    assert code == distributed.INTERRUPTED, launcher.stderr
    lines = gradi_lines(launcher.stderr)
    assert "gradi solve: interrupted" in lines, lines
    assert lines[-1].startswith(f"gradi launch: process {which} (pid {pids[which]}) exited with code 130"), lines
    assert all_gone(pids, within=END_TIMEOUT)


@pytest.mark.parametrize("which", [0, 1])
def test_ctrl_c_to_one_process_started_by_hand_ends_the_other(which):
    """The other ends too, non-zero. It sees the closed connection in its collective and says so
    in gradi's line (exit 3), unless JAX's coordination client notices a vanished process 0
    first: then it ends with the JAX runtime's fatal log and SIGABRT (not in gradi's hands)."""
    processes = by_hand()
    processes[which].process.send_signal(signal.SIGINT)
    codes = [process.finish(END_TIMEOUT) for process in processes]
    other = 1 - which
    assert codes[which] == distributed.INTERRUPTED and codes[other] != 0, codes
    assert gradi_lines(processes[which].stderr) == ["gradi solve: interrupted"]
    if codes[other] == distributed.EXIT_CODE:
        lines = gradi_lines(processes[other].stderr)
        assert len(lines) == 1 and f"process {other} lost the other processes" in lines[0], lines


FAILING_SCRIPT = """
import gradi
from gradi.rows import PointRows
from gradi.sharded import distributed

distributed.initialize(distributed.from_environment())
if distributed.process_index() == 1:
    raise RuntimeError("process 1 fails")
gradi.solve(PointRows(gradi.shapes.circle(200)), 2, backend="jax-sharded", niter=10**9)
"""


def test_an_exception_in_one_process_of_a_launched_script_ends_the_run(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING_SCRIPT)
    launcher = Watched([*GRADI, "launch", "-n", "2", "--", sys.executable, str(tmp_path / "failing.py")])
    assert launcher.finish(START_TIMEOUT + END_TIMEOUT) == 1, launcher.stderr
    assert "RuntimeError: process 1 fails" in launcher.stderr
    assert launcher.lines[-1].startswith("gradi launch: process 1 (pid "), launcher.stderr


def test_a_killed_process_makes_the_launcher_fail_promptly():
    launcher, pids = connected_launch()
    os.kill(pids[1], signal.SIGKILL)
    assert launcher.finish(END_TIMEOUT) == 128 + signal.SIGKILL, launcher.stderr
    assert any("was killed by signal 9" in line for line in launcher.lines), launcher.stderr
    assert all_gone(pids, within=END_TIMEOUT)


def test_a_killed_launcher_takes_its_processes_with_it():
    launcher, pids = connected_launch()
    launcher.kill()
    assert all_gone(pids, within=END_TIMEOUT)


def all_gone(pids, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(state(pid) in ("gone", "Z") for pid in pids):
            return True
        time.sleep(0.1)
    return False


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def run(argv, timeout=START_TIMEOUT, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def test_unreachable_coordinator_fails_with_one_line_within_the_timeout():
    address = f"127.0.0.1:{launch.free_port()}"
    done = run([*GRADI, "solve", "--backend", "jax-sharded", "--coordinator", address,
                "--num-processes", "2", "--process-id", "1", "--connect-timeout", "2"])
    assert done.returncode == distributed.EXIT_CODE
    lines = gradi_lines(done.stderr)
    assert len(lines) == 1 and "could not join" in lines[0] and address in lines[0], done.stderr


@pytest.mark.parametrize("argv, env, words", [
    (["solve", "--num-processes", "2", "--coordinator", "127.0.0.1:1", "--process-id", "0"], {},
     "needs --backend jax-sharded"),
    (["solve", "--backend", "jax-sharded", "--num-processes", "2"], {}, "go together"),
    (["solve", "--backend", "jax-sharded", "--coordinator", "nowhere", "--num-processes", "2",
      "--process-id", "0"], {}, "HOST:PORT"),
    (["bench", "--backends", "jax-sharded", "--budget", "1", "--coordinator", "127.0.0.1:1",
      "--num-processes", "2", "--process-id", "5"], {}, "process id"),
    (["solve", "--backend", "jax-sharded", "--coordinator", "127.0.0.1:1", "--num-processes", "2",
      "--process-id", "0", "--connect-timeout", "1e12"], {}, "argument --connect-timeout: must be a number of seconds"),
    (["solve", "--backend", "jax-sharded", "--coordinator", "127.0.0.1:1", "--num-processes", "2",
      "--process-id", "-1"], {}, "argument --process-id: must be an integer in [0, 1023]"),
    (["launch", "-n", "2"], {}, "gradi launch: error: give the command to run after --"),
    (["launch", "-n", "100000", "--", "true"], {}, "gradi launch: error: argument -n/--processes: must be an integer"),
    (["solve", "--backend", "numpy", "-n", "20"], {"GRADI_COORDINATOR": "garbage"},
     "(GRADI_COORDINATOR='garbage') are incomplete or wrong: GRADI_NUM_PROCESSES and GRADI_PROCESS_ID are not set"),
    (["solve", "--backend", "jax-sharded", "-n", "20"],
     {"GRADI_COORDINATOR": "127.0.0.1:1", "GRADI_NUM_PROCESSES": "two", "GRADI_PROCESS_ID": "0"},
     "GRADI_NUM_PROCESSES must be an integer, got 'two'"),
])
def test_bad_multiprocess_arguments_give_one_line_and_exit_code_2(argv, env, words):
    environ = {key: value for key, value in os.environ.items() if key not in distributed.ENVIRONMENT.values()}
    done = run([*GRADI, *argv], timeout=60, env={**environ, **env})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_the_launcher_stops_the_others_quietly():
    """Process 0 fails at once; the launcher stops the others wherever they are (importing,
    waiting to connect) without a word from them, and its line is the only one."""
    solve = shlex.join([*GRADI, *LONG_SOLVE])
    done = run([*GRADI, "launch", "-n", "6", "--", "sh", "-c", f'[ "$GRADI_PROCESS_ID" = 0 ] && exit 5; exec {solve}'])
    assert done.returncode == 5, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradi launch: process 0 (pid "), done.stderr
    assert lines[0].endswith("exited with code 5; stopping the other 5 process(es)"), lines


def per_process(*choices):
    """A shell word that is ``choices[i]`` in process i of a launched run."""
    return "$(echo " + " ".join(shlex.quote(choice) for choice in choices) + " | cut -d' ' -f$((GRADI_PROCESS_ID + 1)))"


@pytest.mark.parametrize("case, differing, words", [
    ("N", ["--distances", per_process("D.npy", "D41.npy")],
     "given different problems: N (process 0: 40, process 1: 41)"),
    ("dtype", ["--distances", "D.npy", "--dtype", per_process("float32", "float64")],
     "given different problems: dtype (process 0: float32, process 1: float64)"),
    ("asymmetric", ["--distances", per_process("D.npy", "2D.npy")], "D is not the same matrix in every process"),
])
def test_processes_given_different_problems_exit_2_with_one_line_each(case, differing, words, tmp_path):
    D = gradi.distance_matrix(gradi.shapes.sphere(40))
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "2D.npy", 2 * D)
    np.save(tmp_path / "D41.npy", gradi.distance_matrix(gradi.shapes.sphere(41)))
    command = shlex.join([*GRADI, "solve", "--backend", "jax-sharded", "--niter", "10"]) + " " + " ".join(differing)
    done = run([*GRADI, "launch", "-n", "2", "--", "sh", "-c", f"exec {command}"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = gradi_lines(done.stderr)
    assert len(lines) == 3 and lines[-1].startswith("gradi launch: process "), lines
    assert all(line.startswith("gradi solve: error: ") and words in line for line in lines[:2]), lines
    assert "final stress" not in done.stdout


FLOAT64_SCRIPT = """
import json, sys
import gradi
from gradi.rows import MatrixRows
from gradi.sharded import distributed

distributed.initialize(distributed.from_environment())
out = {}
for niter in (0, 40):
    result = gradi.solve(MatrixRows(sys.argv[1]), 3, backend="jax-sharded", niter=niter, dtype="float64")
    out[niter] = {"X": result.X.tolist(), "lr": result.lr, "stress": result.stress, "dtype": str(result.X.dtype)}
if distributed.process_index() == 0:
    print(json.dumps(out))
"""


def test_a_launched_float64_run_agrees_with_numpy_to_1e_12(tmp_path):
    """Everything the processes exchange (start, step size, stress, positions) stays float64: 3
    processes (an uneven split of the rows) give numpy's start and result to 1e-12."""
    D = gradi.distance_matrix(gradi.shapes.sphere(61))
    np.save(tmp_path / "D.npy", D)
    (tmp_path / "float64.py").write_text(FLOAT64_SCRIPT)
    done = run([*GRADI, "launch", "-n", "3", "--", sys.executable, str(tmp_path / "float64.py"),
                str(tmp_path / "D.npy")])
    assert done.returncode == 0, done.stderr
    launched = json.loads(done.stdout)
    for niter in (0, 40):
        expected = gradi.solve(D, 3, backend="numpy", niter=niter, dtype="float64")
        got = launched[str(niter)]
        assert got["dtype"] == "float64"
        assert np.max(np.abs(np.array(got["X"]) - expected.X)) <= 1e-12 * np.max(np.abs(expected.X)), niter
        assert got["lr"] == pytest.approx(expected.lr, rel=1e-12, abs=0)
        assert got["stress"] == pytest.approx(expected.stress, rel=1e-12, abs=0)
