"""A small supervisor: start the stack's processes, stop them all (and their children) on the way out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import psutil


@dataclass
class Supervisor:
    """Each child gets its own process group, so stopping it also stops whatever it started (Dagster runs)."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: str | None = None) -> None:
        if log_path is None:
            self.processes[name] = subprocess.Popen(
                list(argv), env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
            return
        with open(log_path, "ab") as output:  # the child keeps its own copy of the descriptor
            self.processes[name] = subprocess.Popen(
                list(argv), env=dict(env), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every group, wait, then SIGKILL what is left, descendants in other sessions included
        (Dagster starts its code servers and log tailers in sessions of their own)."""
        family = [d for p in self.processes.values() for d in _descendants(p.pid)]
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)
            process.wait()
        _, alive = psutil.wait_procs(family, timeout=max(0.1, deadline - time.monotonic()))
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
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def wait_for_http(url: str, timeout: float, supervisor: Supervisor | None = None) -> None:
    """Until ``url`` answers below 500; fail early if a supervised process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor is not None and (dead := supervisor.exited()):
            raise RuntimeError(f"process exited early: {dead}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


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
