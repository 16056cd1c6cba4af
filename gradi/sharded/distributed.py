"""Joining a multi-process run: ``jax.distributed`` with clear, bounded failures.

A multi-process run is K copies of one gradi command, told where the coordinator (process 0) is,
how many processes there are and which one they are: ``--coordinator HOST:PORT --num-processes K
--process-id I``, mirroring ``jax.distributed.initialize``, or the ``GRADI_*`` variables that
``gradi launch`` sets. On CPUs the processes exchange data with gloo over TCP; when the
coordinator is a loopback address (one host, as ``gradi launch`` runs), the coordinator service
and gloo are bound to that address, so nothing listens beyond the host.

Failures are bounded and say what happened in one line, with exit code ``EXIT_CODE``:

- a process that cannot reach the coordinator, or a coordinator that does not see every process
  join, gives up after ``connect_timeout`` seconds (JAX alone would abort with a stack trace);
- a collective that fails because another process died ends this process at once
  (``abort``): the group cannot go on, and JAX's exit would otherwise wait for heartbeats and
  then abort with a stack trace;
- a process of the run ends as a whole or not at all (``leave``; in a script, an exception
  nothing caught): Ctrl-C (SIGINT) ends it at once with ``<command>: interrupted`` and exit code
  130, even while it waits in a collective for a process that will never answer, and SIGTERM
  ends it quietly (a launcher stopping the others); the others notice the closed connections
  and end too (process 0 shuts its collectives a moment before its coordination service, so
  that the others hear of it from the collective, with gradi's line, rather than from JAX's
  client, which would end them with its own fatal log). Unwinding instead would leave the
  process waiting at exit for the others, which wait for it.

JAX must not have started (no computation, no device query) before ``initialize``.
"""

import contextlib
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import agreement

ENVIRONMENT = {"coordinator": "GRADI_COORDINATOR", "num_processes": "GRADI_NUM_PROCESSES",
               "process_id": "GRADI_PROCESS_ID"}
CONNECT_TIMEOUT = 60.0  # seconds a process waits for the whole group to join
MAX_CONNECT_TIMEOUT = 86400.0  # a day: JAX takes whole seconds as a 32-bit int, and no start takes longer
MAX_PROCESSES = 1024  # the most processes in a run (one host's ``gradi launch`` starts them all)
HEARTBEAT_TIMEOUT = 10  # seconds after which the coordinator declares a silent process dead
JAX_GRACE = 30  # JAX's own initialisation timeout is this much longer, so gradi's message comes first
EXIT_CODE = 3
INTERRUPTED = 130  # exit code of a process ended by Ctrl-C (128 + SIGINT)

_command = "gradi"  # what abort's lines start with (set by initialize)
_coordinator_port = None  # process 0's: the port its coordination service listens on (set by initialize)
_ending = threading.Lock()  # held by the thread that ends the process (_exit_now)
COORDINATOR_GRACE = 1.0  # seconds process 0's coordination service outlives its collectives when it fails


@dataclass(frozen=True)
class Settings:
    """Where the coordinator is, how many processes there are, and which one this is."""

    coordinator: str
    num_processes: int
    process_id: int
    connect_timeout: float = CONNECT_TIMEOUT

    def __post_init__(self):
        parse_address(self.coordinator)
        if not 1 <= self.num_processes <= MAX_PROCESSES:
            raise ValueError(f"the number of processes must be in 1..{MAX_PROCESSES}, got {self.num_processes}")
        if not 0 <= self.process_id < self.num_processes:
            raise ValueError(f"the process id must be in 0..{self.num_processes - 1}, got {self.process_id}")
        if not 0 < self.connect_timeout <= MAX_CONNECT_TIMEOUT:
            raise ValueError(f"the connect timeout must be a number of seconds in (0, {MAX_CONNECT_TIMEOUT:g}], "
                             f"got {self.connect_timeout}")

    @property
    def loopback(self):
        return _is_loopback(parse_address(self.coordinator)[0])


def parse_address(text):
    """(host, port) of "HOST:PORT"; ValueError naming what is wrong."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"the coordinator must be HOST:PORT with a port in 1..65535, got {text!r}")
    return host, int(port)


def from_environment(connect_timeout=CONNECT_TIMEOUT):
    """Settings from the GRADI_* variables (as ``gradi launch`` sets them), or None if none is set.

    The three go together: some of them alone, or a value ``gradi launch`` would not set, is a
    ValueError naming every one of them and its value (a leftover from another shell, say).
    """
    values = {name: os.environ.get(variable) for name, variable in ENVIRONMENT.items()}
    if all(value is None for value in values.values()):
        return None
    try:
        unset = [ENVIRONMENT[name] for name, value in values.items() if value is None]
        if unset:
            raise ValueError(f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set")
        return Settings(values["coordinator"], _count(values, "num_processes"), _count(values, "process_id"),
                        connect_timeout)
    except ValueError as exc:
        shown = ", ".join(f"{variable}={values[name]!r}" for name, variable in ENVIRONMENT.items()
                          if values[name] is not None)
        raise ValueError(f"the variables of a multi-process run ({shown}) are incomplete or wrong: {exc}; "
                         f"gradi launch sets all three ({', '.join(ENVIRONMENT.values())}); unset them "
                         f"to run a single process") from None


def _count(values, name):
    """The integer in the GRADI_* variable ``name``; ValueError naming it."""
    text = values[name].strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{ENVIRONMENT[name]} must be an integer, got {values[name]!r}")
    return int(text)


def initialize(settings, command="gradi"):
    """Start ``jax.distributed`` for this process; exit with one line if the group never forms.

    ``command`` starts the lines of ``abort`` (``gradi solve: error: ...``).
    """
    global _command, _coordinator_port
    from ..backends import jax_runtime

    _command = command

    if jax_runtime.started():
        raise ValueError("JAX already started in this process; a multi-process run must join "
                         "jax.distributed before any JAX computation")
    host, port = parse_address(settings.coordinator)
    if settings.process_id == 0:
        _check_can_listen(host, port)
        _coordinator_port = port
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_preemption_service", False)  # its SIGTERM handler and its logs
    role = ("did not see every process join" if settings.process_id == 0
            else "could not join the coordinator")
    watchdog = threading.Timer(settings.connect_timeout, abort, args=(
        f"process {settings.process_id} of {settings.num_processes} {role} at {settings.coordinator} "
        f"within {settings.connect_timeout:g} s; is every process started, with the same "
        f"--coordinator and --num-processes?",))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=settings.coordinator, num_processes=settings.num_processes,
            process_id=settings.process_id, cluster_detection_method="deactivate",
            initialization_timeout=int(settings.connect_timeout) + JAX_GRACE,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT,
            coordinator_bind_address=settings.coordinator if settings.loopback else None)
        _end_on_signals()
        _end_on_uncaught_exceptions()
        if settings.loopback:
            _bind_gloo_to(host)
        with _stdout_to_stderr():  # gloo announces its connections on stdout, meant for results
            jax_runtime.runtime()
            gather(0)  # the first collective: gloo connects the processes
    finally:
        watchdog.cancel()


def abort(message):
    """Print ``<command>: error: message`` and end the process now with EXIT_CODE (module doc)."""
    _exit_now(EXIT_CODE, f"{_command}: error: {message}")


def _exit_now(code, line=None):
    """Flush standard output, print ``line`` on standard error, end the process with ``code``.

    The first thread to call it ends the process; another one (the main thread, whose collective
    fails as the first closes them) waits for that end rather than say something else.
    """
    if not _ending.acquire(blocking=False):
        threading.Event().wait()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    if line is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(line + "\n")  # one write: the processes share standard error
            sys.stderr.flush()
    if _coordinator_port is not None:
        _close_collectives_first(_coordinator_port)
    os._exit(code)


def _close_collectives_first(coordinator_port):
    """In process 0: shut this process's collective connections (every connected TCP socket not
    to or from the coordinator's port), then wait COORDINATOR_GRACE before ending.

    The others, waiting in a collective, then see it fail and end with gradi's line, while the
    coordination service still answers; were it to vanish with the collectives, JAX's client in
    another process could notice it first and end that process with JAX's fatal log instead.
    """
    shut = False
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        try:
            with socket.socket(fileno=os.dup(int(name))) as connection:
                ports = connection.getsockname()[1], connection.getpeername()[1]
                if connection.type == socket.SOCK_STREAM and coordinator_port not in ports:
                    connection.shutdown(socket.SHUT_RDWR)
                    shut = True
        except (OSError, ValueError, IndexError, TypeError):
            continue  # not a connected TCP socket
    if shut:
        time.sleep(COORDINATOR_GRACE)


def leave(code):
    """End a process of a multi-process run that failed (``code`` != 0) now, with that code.

    Returning would run the interpreter's exit, where JAX's client waits for every process to
    reach the same point; the others wait in their next collective for this one, so nothing
    would ever end. Ending at once closes this process's connections, which the others notice.
    Alone, or with code 0, it returns.
    """
    if code != 0 and process_count() > 1:
        _exit_now(code)


def process_count():
    """Processes in this run: 1 unless ``initialize`` joined a larger group."""
    if "jax" not in sys.modules:
        return 1
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


def process_index():
    """This process's index in the run (0 when alone): only process 0 writes outputs."""
    if process_count() == 1:
        return 0
    import jax

    return jax.process_index()


def gather(value):
    """``value`` from every process, stacked in process order (a collective: all must call it).

    Exchanged in its own dtype: float64 stays float64 (JAX would round it to float32 unless
    64-bit values are enabled around the exchange).
    """
    value = np.asarray(value)
    if process_count() == 1:
        return value[None]
    import jax
    from jax.experimental import multihost_utils

    try:
        with jax.enable_x64(True):
            return np.asarray(multihost_utils.process_allgather(value))
    except Exception as exc:  # a dead peer: the group cannot go on
        abort(f"process {process_index()} lost the other processes of the run: {exc}".splitlines()[0])


class Processes:
    """The group (gradi.group) of a multi-process run: each call is a collective over every process."""

    def sum(self, value):
        return gather(np.asarray(value, dtype=np.float64)).sum(axis=0)

    def max(self, value):
        return gather(np.asarray(value, dtype=np.float64)).max(axis=0)

    def agree(self, settings):
        agreement.agree(self, process_index(), process_count(), settings)

    def check_symmetric(self, D, rows, tolerance):
        agreement.check_symmetric(self, process_index(), process_count(), D, rows, tolerance)


PROCESSES = Processes()


def _end_on_signals():
    """SIGINT ends this process with one line and INTERRUPTED, SIGTERM quietly (module doc).

    SIGINT is answered by a thread woken through Python's wakeup file descriptor, so it is
    answered while the main thread waits in a collective (where Python's handlers do not run).
    A SIGINT the process was started ignoring stays ignored.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, lambda number, frame: None)  # the thread below answers it

    def answer():
        while signal.SIGINT not in os.read(woken, 64):
            pass
        _exit_now(INTERRUPTED, f"{_command}: interrupted")

    threading.Thread(target=answer, name="gradi-interrupt", daemon=True).start()


def _end_on_uncaught_exceptions():
    """An exception nothing caught (in a script: the command line catches its own) is printed,
    then ends the process at once with code 1 (``leave``'s reason)."""
    printed = sys.excepthook

    def end(kind, value, traceback):
        printed(kind, value, traceback)
        _exit_now(1)

    sys.excepthook = end


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what is written to file descriptor 1 (C++ included) to descriptor 2 meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _check_can_listen(host, port):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ValueError(f"the coordinator cannot listen on {host}:{port}: {exc.strerror}") from None


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _bind_gloo_to(host):
    """Make gloo listen on ``host`` (by default it binds the address this host's name resolves to).

    JAX exposes no setting for this; it goes through JAX's internal CPU client factory, and where
    that internal API differs (another JAX version) gloo keeps JAX's default.
    """
    try:
        from jax._src import distributed as jax_distributed
        from jax._src import xla_bridge
        from jax._src.lib import _jax
    except ImportError:
        return
    make = getattr(_jax, "make_gloo_tcp_collectives", None)
    register = getattr(xla_bridge, "register_backend_factory", None)
    if make is None or register is None:
        return
    collectives = make(distributed_client=jax_distributed.global_state.client, hostname=host)
    register("cpu", lambda: xla_bridge.make_cpu_client(collectives=collectives), priority=0,
             fail_quietly=False)
