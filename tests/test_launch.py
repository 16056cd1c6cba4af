"""Multi-process runs fail together: a Ctrl-C, an error or the death of any one process ends the
whole run, under ``gradi launch`` and when the processes were started by hand.

Every case starts real processes of a real ``jax.distributed`` run (gloo on 127.0.0.1) at small
N, bounded by generous timeouts rather than a measured time: a run that does not fail together
hangs for ever, so ending at all within the timeout, with the right codes and lines, is the
property. Signals are sent once every process is connected (gloo announces each connection).
Processes started by hand get SIGINT at its default (``DEFAULT_SIGINT``), as a terminal gives
it, whatever this test's parent does with it.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from gradi.sharded import distributed, launch

pytest.importorskip("jax", reason="jax is not installed (pip install 'gradi[jax]')")

GRADI = [sys.executable, "-m", "gradi"]
START_TIMEOUT = 240  # seconds for the processes to start and connect (a busy 2-core machine)
END_TIMEOUT = 60  # seconds a run that fails together may take to end (promptly: well under 1 s)
LONG_SOLVE = ["solve", "--backend", "jax-sharded", "-n", "300", "--niter", str(10**9)]
DEFAULT_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                                        "os.execv(sys.argv[1], sys.argv[1:])"]
JAX_LOG = re.compile(r"^[WIEF]\d{4} |^\[Gloo\]|^Additional GRPC error|^:UNKNOWN:")


def gradi_lines(stderr):
    """stderr without gloo's connection notices and the JAX runtime's own log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not JAX_LOG.match(line)]


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
    assert "gradi solve: interrupted" in lines and "Traceback" not in launcher.stderr, lines
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


def run(argv, env=None, timeout=START_TIMEOUT):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


def test_unreachable_coordinator_fails_with_one_line_within_the_timeout():
    address = f"127.0.0.1:{launch.free_port()}"
    done = run([*GRADI, "solve", "--backend", "jax-sharded", "--coordinator", address,
                "--num-processes", "2", "--process-id", "1", "--connect-timeout", "2"])
    assert done.returncode == distributed.EXIT_CODE
    lines = gradi_lines(done.stderr)
    assert len(lines) == 1 and "could not join" in lines[0] and address in lines[0], done.stderr


@pytest.mark.parametrize("argv, words", [
    (["solve", "--num-processes", "2", "--coordinator", "127.0.0.1:1", "--process-id", "0"],
     "needs --backend jax-sharded"),
    (["solve", "--backend", "jax-sharded", "--num-processes", "2"], "go together"),
    (["solve", "--backend", "jax-sharded", "--coordinator", "nowhere", "--num-processes", "2",
      "--process-id", "0"], "HOST:PORT"),
    (["bench", "--backends", "jax-sharded", "--budget", "1", "--coordinator", "127.0.0.1:1",
      "--num-processes", "2", "--process-id", "5"], "process id"),
    (["launch", "-n", "2"], "needs a command"),
])
def test_bad_multiprocess_arguments_give_one_line_and_exit_code_2(argv, words):
    done = run([*GRADI, *argv], timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
