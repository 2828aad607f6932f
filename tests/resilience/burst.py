"""Real-process fault tests: the API as a child process, a burst of marked webhooks, and the ledger check.

Every webhook body carries a unique marker, so each answer can be matched to the row it stored (or not).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from smartplex.schema import webhook_log
from smartplex_cli.supervisor import free_port, wait_for_http
from tests.conftest import ADMIN_SECRET, FIXTURES, WEBHOOK_SECRET

MARKER = "smartplex_resilience_marker"
SOURCES = ("sonarr", "radarr", "overseerr", "tautulli", "plex")


# --- the webhooks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    source: str
    marker: str
    content: bytes
    content_type: str


def fixture_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Every recorded webhook body (templates left out), as (source, body)."""
    bodies = []
    for source in SOURCES:
        for path in sorted((FIXTURES / "webhooks" / source).glob("*.json")):
            body = json.loads(path.read_text())
            if isinstance(body, dict) and not path.name.startswith("_"):
                bodies.append((source, body))
    return bodies


def _encode(source: str, body: dict[str, Any]) -> tuple[bytes, str]:
    text = json.dumps(body)
    if source != "plex":
        return text.encode(), "application/json"
    # Plex's own format: multipart/form-data with the event JSON in the ``payload`` field.
    request = httpx.Request("POST", "http://plex.invalid/", data={"payload": text}, files={"thumb": b"\xff\xd8"})
    return request.read(), request.headers["content-type"]


def marked_webhooks(count: int) -> list[Webhook]:
    """``count`` webhooks cycling through the fixtures, each body carrying a marker of its own."""
    webhooks = []
    for _, (source, body) in zip(range(count), cycle(fixture_bodies()), strict=False):
        marker = uuid.uuid4().hex
        content, content_type = _encode(source, {**body, MARKER: marker})
        webhooks.append(Webhook(source, marker, content, content_type))
    return webhooks


# --- the burst ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    webhook: Webhook
    started: float
    finished: float
    status: int | None = None  # None: no HTTP answer (connection refused or reset, timeout)
    error: str | None = None
    retry_after: str | None = None
    row_id: str | None = None

    @property
    def latency(self) -> float:
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Burst:
    """Fire ``webhooks`` at ``base_url`` from ``concurrency`` workers; a controller coroutine runs alongside.

    The controller injects the fault; it can hold the workers back (``pause``/``resume``) while it does.
    """

    base_url: str
    webhooks: list[Webhook]
    concurrency: int = 32
    timeout: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)

    answered: int = 0  # requests that got an HTTP status, whichever
    unanswered: int = 0  # requests that got none: refused, cut off, timed out

    def __post_init__(self) -> None:
        self._gate: asyncio.Event | None = None

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status is None:
            self.unanswered += 1
        else:
            self.answered += 1

    def pause(self) -> None:
        assert self._gate is not None
        self._gate.clear()

    def resume(self) -> None:
        assert self._gate is not None
        self._gate.set()

    async def until(self, condition: Callable[[Burst], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"burst condition not reached in {timeout:g}s: {self.summary()}")
            await asyncio.sleep(0.005)

    async def run(self, controller: Callable[[Burst], Awaitable[None]] | None = None) -> list[Outcome]:
        self._gate = gate = asyncio.Event()
        gate.set()
        pending: Iterator[Webhook] = iter(self.webhooks)
        auth = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}

        async def worker() -> None:
            # One client (one connection) per worker: a shared pool rescans every connection per request.
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            # Plain HTTP on loopback: no TLS, so no certificate store to load per client.
            async with httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, limits=limits, verify=False
            ) as client:
                for webhook in pending:
                    await gate.wait()
                    self._record(await self._send(client, webhook, auth))

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            if controller is not None:
                await controller(self)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return self.outcomes

    async def _send(self, client: httpx.AsyncClient, webhook: Webhook, auth: dict[str, str]) -> Outcome:
        headers = {**auth, "Content-Type": webhook.content_type}
        started = time.monotonic()
        try:
            response = await client.post(f"/api/webhooks/{webhook.source}", content=webhook.content, headers=headers)
        except httpx.TransportError as exc:
            return Outcome(webhook, started, time.monotonic(), error=type(exc).__name__)
        outcome = Outcome(webhook, started, time.monotonic(), status=response.status_code)
        outcome.retry_after = response.headers.get("retry-after")
        if outcome.ok:
            outcome.row_id = response.json()["id"]
        return outcome

    def summary(self) -> str:
        statuses = Counter(str(o.status) if o.status is not None else o.error for o in self.outcomes)
        latencies = sorted(o.latency for o in self.outcomes) or [0.0]
        p99 = latencies[int(len(latencies) * 0.99)]
        took = max(o.finished for o in self.outcomes) - min(o.started for o in self.outcomes) if self.outcomes else 0
        return (
            f"{len(self.outcomes)}/{len(self.webhooks)} sent in {took:.1f}s, outcomes {dict(statuses)}, "
            f"latency p99 {p99:.2f}s max {latencies[-1]:.2f}s"
        )


# --- the ledger -----------------------------------------------------------------------------------------


def stored_markers(engine: Engine) -> dict[str, list[str]]:
    """Marker -> ids of the rows carrying it (``?`` for a row without one)."""
    found: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for row_id, payload in connection.execute(select(webhook_log.c.id, webhook_log.c.payload)):
            marker = payload.get(MARKER, "?") if isinstance(payload, dict) else "?"
            found.setdefault(marker, []).append(str(row_id))
    return found


def check_ledger(engine: Engine, outcomes: list[Outcome], burst_summary: str) -> tuple[str, list[str]]:
    """The figures, and what contradicts "every 2xx is stored exactly once, nothing unsent is stored"."""
    stored = stored_markers(engine)
    sent = {o.webhook.marker for o in outcomes}
    acknowledged = [o for o in outcomes if o.ok]
    rows = sum(len(ids) for ids in stored.values())
    unacknowledged_stored = sum(1 for o in outcomes if not o.ok and o.webhook.marker in stored)
    figures = (
        f"{burst_summary}; {len(acknowledged)} acknowledged, {rows} rows stored "
        f"({unacknowledged_stored} of them for requests without a 2xx)"
    )
    problems = []
    missing = [o.webhook.marker for o in acknowledged if o.webhook.marker not in stored]
    if missing:
        problems.append(f"{len(missing)} acknowledged webhooks are not stored (e.g. {missing[:3]})")
    wrong_id = [o.webhook.marker for o in acknowledged if stored.get(o.webhook.marker, [o.row_id]) != [o.row_id]]
    if wrong_id:
        problems.append(f"{len(wrong_id)} acknowledged webhooks are not stored exactly once under their id")
    twice = [m for m, ids in stored.items() if len(ids) > 1 and m in sent]
    if twice:
        problems.append(f"{len(twice)} webhooks are stored more than once (e.g. {twice[:3]})")
    unsent = [m for m in stored if m not in sent]
    if unsent:
        problems.append(f"{len(unsent)} stored rows were never sent by this test")
    if rows < len(acknowledged):
        problems.append("fewer rows than acknowledgements")
    return figures, [f"{p} [{figures}]" for p in problems]


# --- the API as a real process --------------------------------------------------------------------------


@dataclass
class ApiProcess:
    """``smartplex api`` in a child process of its own, on a fixed port so a restart is found again."""

    database_url: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "api.log"

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "SMARTPLEX_DATABASE_URL": self.database_url,
            "SMARTPLEX_DATA_DIR": str(self.data_dir),
            "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
            **self.extra_env,
        }
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smartplex_cli", "api", "--port", str(self.port)],
                env=env,
                cwd=self.data_dir,  # so no .env file of the working tree is read
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                wait_for_http(f"{self.base_url}/healthz", min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except TimeoutError:
                continue
        raise RuntimeError(f"the API did not come up (exit code {self.process.poll()}):\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no draining, whatever is in flight is cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
