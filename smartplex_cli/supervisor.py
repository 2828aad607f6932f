"""A small supervisor: start the stack's processes, stop them all (and their children) on the way out."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil


@dataclass
class Supervisor:
    """Each child gets its own process group, so stopping it also stops whatever it started (Dagster runs)."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: str | None = None) -> None:
        if log_path is None:
            self.processes[name] = subprocess.Popen(
                list(argv), env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
            return
        self.logs[name] = log_path
        with open(log_path, "ab") as output:  # the child keeps its own copy of the descriptor
            self.processes[name] = subprocess.Popen(
                list(argv), env=dict(env), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def exit_report(self, lines: int = 15) -> str:
        """Which processes exited, with what code, and the end of each one's log: the cause is there."""
        parts = []
        for name, code in self.exited().items():
            parts.append(f"{name} exited with code {code}")
            if name in self.logs:
                tail = log_tail(self.logs[name], lines)
                parts.append(f"  last lines of {self.logs[name]}:" + "".join(f"\n    {line}" for line in tail))
        return "\n".join(parts)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]

    def stop(self, timeout: float = 15.0, *, first: str | None = None, then: Callable[[], None] | None = None) -> None:
        """SIGTERM every group, wait, then SIGKILL what is left, descendants in other sessions included
        (Dagster starts its code servers and log tailers in sessions of their own).

        With ``first``, that process alone (not its group) is asked to stop and waited for, and ``then``
        runs, before the rest is stopped.
        """
        family = [d for p in self.processes.values() for d in _descendants(p.pid)]
        try:
            if first is not None and (process := self.processes.get(first)) is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            if then is not None:
                then()
        finally:
            self._stop_all(family, timeout)

    def _stop_all(self, family: list[psutil.Process], timeout: float) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        # Descendants in sessions of their own get it too: a run worker told to stop records how its run
        # ended, where SIGKILL would leave the run in flight.
        for member in family:
            try:
                member.terminate()
            except psutil.NoSuchProcess:
                pass
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _, alive = psutil.wait_procs(family, timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)
            process.wait()
        kill_all(alive, timeout=5)


def kill_all(processes: Iterable[psutil.Process], timeout: float) -> None:
    """SIGKILL each process (those already gone are skipped), then wait up to ``timeout`` seconds for them all."""
    victims = list(processes)
    for process in victims:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=timeout)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        return children
    except psutil.NoSuchProcess:
        return []


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def log_tail(path: str, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file (none if it cannot be read)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _below_500(response: httpx.Response) -> bool:
    return response.status_code < 500


def wait_for_http(
    url: str,
    timeout: float,
    supervisor: Supervisor | None = None,
    accept: Callable[[httpx.Response], bool] = _below_500,
) -> None:
    """Until ``url`` gives an answer ``accept`` takes (by default, any below 500); fail early if a
    supervised process died, with its exit code and the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor is not None and supervisor.exited():
            raise RuntimeError(f"a process exited while starting:\n{supervisor.exit_report()}")
        try:
            if accept(httpx.get(url, timeout=2)):
                return
        except (httpx.TransportError, ValueError):  # not up yet, or an answer that is not what we expect
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer as expected within {timeout:.0f}s")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (as uvicorn does: a closing connection is no obstacle)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def listener(port: int) -> str | None:
    """The process listening on ``port``, as "pid N (command line)", when this user may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            if connection.pid is None:
                return None
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())
            except psutil.Error:
                command = "?"
            return f"pid {connection.pid} ({command[:120]})"
    return None


def dagster_home_processes(dagster_home: Path) -> list[str]:
    """Dagster processes of this machine on the instance in ``dagster_home`` (daemon, webserver, code
    servers, run workers), but this process and its ancestors, as "pid N (command line)"."""
    home = str(dagster_home.resolve())
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid in mine:
            continue
        command = " ".join(process.info["cmdline"] or ())
        if "dagster" not in command and "multiprocessing" not in command:
            continue
        try:
            value = process.environ().get("DAGSTER_HOME")
            if value and str(Path(value).resolve()) == home and process.status() != psutil.STATUS_ZOMBIE:
                found.append(f"pid {process.pid} ({command[:120]})")
        except psutil.Error:
            continue
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now (for tests, benchmarks and the demo's helpers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt``, so a command stops as Ctrl-C stops it.

    ``kill`` and service managers send SIGTERM. SIGINT is set too because a process started in the
    background by a shell without job control (``cmd &`` in a script) inherits it ignored, and Python
    then never turns it into ``KeyboardInterrupt``.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
