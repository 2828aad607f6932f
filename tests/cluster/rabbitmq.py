"""A RabbitMQ node of a test's own, which the test may stop and start again.

The machine's shared RabbitMQ serves every other test and is never restarted; a test that restarts
its broker gets this node instead: ``rabbitmq-server`` under a temporary directory (its data, logs,
Erlang cookie, an empty configuration, no plugins), on loopback ports of its own, with an ``epmd`` of
its own, so nothing of it touches the shared node. It keeps its data across a restart, as a broker
restarted in place does: durable queues and persistent messages come back.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smartplex_cli.supervisor import log_tail, port_is_free
from tests.requirements import require_or_skip

#: The ports rabbitmqctl's own Erlang node listens on (RabbitMQ's default range): never the node's.
_CTL_PORTS = range(35672, 35683)


def _ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports below the kernel's range for outgoing connections: one of
    those, free now, could be taken by a client's connection while the node is down, and the node could
    not start again."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(10_000, max(10_001, low))
        if port not in _CTL_PORTS and port not in ports and port_is_free(port):
            ports.append(port)
    return ports


def _scripts() -> tuple[str, str] | None:
    """``rabbitmq-server`` and ``rabbitmqctl`` to run as this user.

    Debian's ``/usr/sbin`` entries are a wrapper that, for root, runs the real scripts as the
    ``rabbitmq`` user, who could not read a test's temporary directory: the scripts beside the
    wrapper are the real ones."""
    server, ctl = shutil.which("rabbitmq-server"), shutil.which("rabbitmqctl")
    if server is None or ctl is None:
        return None
    real = Path(os.path.realpath(server))
    if real.name == "rabbitmq-script-wrapper":
        server, ctl = str(real.parent / "rabbitmq-server"), str(real.parent / "rabbitmqctl")
    return server, ctl


@dataclass
class PrivateRabbitMQ:
    base: Path
    server: str
    ctl: str
    node: str = field(default_factory=lambda: f"smartplex-test-{os.getpid()}-{time.monotonic_ns() % 10**6}@localhost")
    process: subprocess.Popen[bytes] | None = None
    #: AMQP, Erlang distribution, epmd.
    ports: list[int] = field(default_factory=lambda: _ports(3))

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def url(self) -> str:
        """The AMQP URL without a vhost, as :func:`tests.cluster.cluster.private_cluster` takes it."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def __post_init__(self) -> None:
        # RabbitMQ's defaults, none of the machine's settings (its listener, its node name); no plugins.
        (self.base / "rabbitmq.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").touch()

    def env(self) -> dict[str, str]:
        base = self.base
        return {
            **os.environ,
            "HOME": str(base),  # the Erlang cookie, shared by the node and rabbitmqctl
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.ports[1]),
            "ERL_EPMD_PORT": str(self.ports[2]),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 90) -> None:
        """Start the node (again, on the same data) and wait until it takes connections."""
        assert not self.running, "the node is running"
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [self.server], env=self.env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}: {self.tail()}")
            if not port_is_free(self.port) and self._ctl_ok("await_startup", "--timeout", "5"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"rabbitmq-server not up within {timeout:.0f}s: {self.tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node as a service manager does (SIGTERM: a clean shutdown) and wait until it is gone."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        beam = self._beam_pid()
        os.kill(beam if beam is not None else process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def rabbitmqctl(self, *args: str) -> None:
        subprocess.run([self.ctl, "-n", self.node, "-q", *args], env=self.env(), check=True, capture_output=True,
                       timeout=60)  # fmt: skip

    def _ctl_ok(self, *args: str) -> bool:
        try:
            self.rabbitmqctl(*args)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        return True

    def _beam_pid(self) -> int | None:
        try:
            return int((self.base / "rabbitmq.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def tail(self) -> str:
        return "\n".join(log_tail(str(self.log), 20))

    def close(self) -> None:
        """Stop the node, then its epmd (which outlives the node it was started for)."""
        self.stop()
        epmd = shutil.which("epmd")
        if epmd is not None:
            subprocess.run([epmd, "-port", str(self.ports[2]), "-kill"], env=self.env(), capture_output=True,
                           timeout=30)  # fmt: skip


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[PrivateRabbitMQ]:
    """A started private node; skipped where this machine cannot run one (failed, in a strict run)."""
    scripts = _scripts()
    if scripts is None:
        require_or_skip("rabbitmq-server and rabbitmqctl are needed for a private RabbitMQ node")
    base = tmp_path / "rabbitmq"
    base.mkdir()
    node = PrivateRabbitMQ(base, *scripts)
    try:
        node.start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        node.close()
        require_or_skip(f"a private RabbitMQ node could not be started here: {exc}")
    try:
        yield node
    finally:
        node.close()
