"""``gradi launch -n K -- COMMAND``: K processes of one command on this host, as one run.

Each process gets the settings of a multi-process run in its environment (gradi.sharded.distributed:
``GRADI_COORDINATOR`` = 127.0.0.1 and a free port, ``GRADI_NUM_PROCESSES`` = K,
``GRADI_PROCESS_ID`` = 0..K-1), which ``gradi solve`` and ``gradi bench`` read; a Python script
can pass ``gradi.sharded.distributed.from_environment()`` to ``gradi.sharded.distributed.initialize``. Loopback
only: this launcher never starts anything on another host.

The launcher waits for every process. As soon as one fails (exits non-zero or is killed) it says
which, in one line, stops the others and exits with the failed process's code (128 + the signal
number for a killed one). Ctrl-C stops all of them and exits with 130; SIGTERM or SIGHUP to the
launcher stops them too (exit 128 + the signal), and on Linux a launcher that dies any other way
takes its processes with it (PR_SET_PDEATHSIG). All succeeded: 0.

The processes run in a process group of their own, so a Ctrl-C typed in the terminal reaches the
launcher only, which stops them and prints the one line. Stopping is SIGTERM, which ends a
process quietly, during its imports as in a run (gradi.sharded.distributed gives SIGTERM its
default action once it joined, where JAX would take it for a preemption notice and carry on),
then SIGKILL after ``STOP_GRACE`` seconds.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

from .. import host
from . import distributed

HOST = "127.0.0.1"
STOP_GRACE = 5.0  # seconds the others get to end after SIGTERM before SIGKILL
POLL_SECONDS = 0.05  # how often the launcher looks at its processes
CAUSE_GRACE = 2 * distributed.COORDINATOR_GRACE  # seconds to wait for the cause of a "lost the others"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # to the launcher: stop every process, then exit
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal for the child when its parent dies


def free_port(address=HOST):
    """A TCP port free on ``address`` now (the coordinator binds it moments later)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def resolve(command):
    """The command with a leading ``gradi`` replaced by this installation's (beside this Python)."""
    if command and command[0] == "gradi":
        found = host.executable("gradi")
        return ([found] if found else [sys.executable, "-m", "gradi"]) + list(command[1:])
    return list(command)


def launch(command, processes, stream=sys.stderr):
    """Run ``command`` as ``processes`` processes of one run; return the exit code (module doc)."""
    if not command:
        raise ValueError("give the command to run after --, e.g. gradi launch -n 2 -- gradi solve ...")
    if not 1 <= processes <= distributed.MAX_PROCESSES:
        raise ValueError(f"the number of processes must be in 1..{distributed.MAX_PROCESSES}, got {processes}")
    coordinator = f"{HOST}:{free_port()}"
    children = {}
    previous = {number: signal.signal(number, _stopped) for number in STOP_SIGNALS}
    try:
        for index in range(processes):
            env = dict(os.environ, **{distributed.ENVIRONMENT["coordinator"]: coordinator,
                                      distributed.ENVIRONMENT["num_processes"]: str(processes),
                                      distributed.ENVIRONMENT["process_id"]: str(index)})
            child = subprocess.Popen(resolve(command), env=env, preexec_fn=_child_setup)
            children[child.pid] = (index, child)
        return _wait(children, stream)
    except OSError as exc:
        raise ValueError(f"cannot start {command[0]!r}: {exc.strerror}") from None
    except (KeyboardInterrupt, _Stopped) as exc:
        stream.write("gradi launch: interrupted; stopping every process\n")
        stream.flush()
        return 128 + exc.signal if isinstance(exc, _Stopped) else 130
    finally:
        _stop(children.values())
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Stopped(Exception):
    """The launcher received SIGTERM or SIGHUP."""

    def __init__(self, number):
        super().__init__(signal.Signals(number).name)
        self.signal = number


def _stopped(number, _frame):
    raise _Stopped(number)


def _child_setup():
    """In the child, before exec: SIGINT and SIGTERM at their defaults, so a Ctrl-C sent to one
    process and the launcher's stop work even when the launcher itself was started ignoring them
    (nohup, ``cmd &`` in a script); a process group of its own (module doc); and be killed when
    the launcher dies (Linux; elsewhere a no-op)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _wait(children, stream):
    """Wait for every child; on the first failure stop the rest and return its exit code.

    A process that only lost the others (distributed.EXIT_CODE) is a consequence: the launcher
    waits up to CAUSE_GRACE for the process that caused it to end too, and names that one.
    """
    running, failed, blamed_by = dict(children), [], None
    while running:
        for pid in [pid for pid, (_, child) in running.items() if child.poll() is not None]:
            index, child = running.pop(pid)
            if child.returncode != 0:
                failed.append((pid, index, child.returncode))
        if failed:
            failed.sort(key=_blame)
            if blamed_by is None:
                blamed_by = time.monotonic() + (CAUSE_GRACE if _blame(failed[0]) == 2 else 0.0)
            if _blame(failed[0]) < 2 or time.monotonic() >= blamed_by or not running:
                pid, index, code = failed[0]
                stopping = f"; stopping the other {len(running)} process(es)" if running else ""
                stream.write(f"gradi launch: process {index} (pid {pid}) {_describe(code)}{stopping}\n")
                stream.flush()
                return code if code > 0 else 128 - code
        time.sleep(POLL_SECONDS)
    return 0


def _blame(ended):
    """Order failures by cause: killed first, then errors, then "lost the others"."""
    code = ended[2]
    return 0 if code < 0 else 2 if code == distributed.EXIT_CODE else 1


def _describe(code):
    if code > 0:
        return f"exited with code {code}"
    return f"was killed by signal {-code} ({signal.Signals(-code).name})"


def _stop(children):
    """SIGTERM to every child still running, then SIGKILL to what outlives STOP_GRACE."""
    alive = [child for _, child in children if child.poll() is None]
    for child in alive:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in alive:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
