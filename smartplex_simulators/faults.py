"""Fault injection for one simulator: latency, 5xx, hangs, 401s and 429s with ``Retry-After``.

Set from Python (``sim.faults["plex"].error_rate = 0.2``) or over HTTP (``PUT /_sim/faults``).
Rates draw from a seeded generator, so a test run is repeatable; ``fail_next`` queues exact
failures for tests that need "a 503, then success".
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL_PREFIX = "/_sim"


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every response
    error_rate: float = 0.0  # fraction answered with `error_status`
    error_status: int = 503
    timeout_rate: float = 0.0  # fraction that hang for `hang_seconds` (clients time out first)
    hang_seconds: float = 60.0
    unauthorized_rate: float = 0.0  # fraction answered 401 whatever the credential
    rate_limit_rate: float = 0.0  # fraction answered 429 with Retry-After
    retry_after: int = 1
    seed: int = 0
    #: Statuses for the next requests, in order, before any rate applies (429 gets Retry-After).
    fail_next: deque[int] = field(default_factory=deque)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def update(self, **settings: Any) -> None:
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        for name, value in settings.items():
            setattr(self, name, deque(value) if name == "fail_next" else value)
        if "seed" in settings:
            self._rng.seed(self.seed)

    def clear(self) -> None:
        self.update(**Faults().as_dict())

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["fail_next"] = list(self.fail_next)
        return data

    def pick(self) -> int | str | None:
        """This request's fault: an HTTP status, ``"hang"``, or ``None`` to serve it normally."""
        if self.fail_next:
            return self.fail_next.popleft()
        draw = self._rng.random
        if self.timeout_rate and draw() < self.timeout_rate:
            return "hang"
        if self.unauthorized_rate and draw() < self.unauthorized_rate:
            return 401
        if self.rate_limit_rate and draw() < self.rate_limit_rate:
            return 429
        if self.error_rate and draw() < self.error_rate:
            return self.error_status
        return None


class FaultMiddleware:
    """Applies a :class:`Faults` to every request except the control endpoints."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.pick()
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_seconds)
            fault = 504
        body = f"simulated fault {fault}".encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        if fault == 429:
            headers.append((b"retry-after", str(self.faults.retry_after).encode()))
        await send({"type": "http.response.start", "status": fault, "headers": headers})
        await send({"type": "http.response.body", "body": body})
