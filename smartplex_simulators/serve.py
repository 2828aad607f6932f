"""Run simulators on loopback ports in a background thread: for tests, the demo and the syncs.

with run_simulators(size=2_000, seed=7) as sims:
    client = sims.client("plex")          # a PlexClient pointed at the simulator
    sims.simulation.add_movie("New")      # mutate; webhooks go to `webhook_url` if given
    os.environ.update(sims.env())         # or configure SmartPlex through its settings
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from smartplex.services import SERVICE_NAMES, get_service
from smartplex_simulators import overseerr, plex, radarr, sonarr, tautulli
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import DEFAULT_NOW, Universe
from smartplex_simulators.webhooks import WebhookSender

APP_FACTORIES: dict[str, Callable[..., Any]] = {
    "plex": plex.create_app,
    "tautulli": tautulli.create_app,
    "sonarr": sonarr.create_app,
    "radarr": radarr.create_app,
    "overseerr": overseerr.create_app,
}


@dataclass
class RunningSimulators:
    simulation: Simulation
    urls: dict[str, str]

    @property
    def keys(self) -> dict[str, str]:
        return {name: self.simulation.keys[name] for name in self.urls}

    @property
    def universe(self) -> Universe:
        return self.simulation.universe

    def env(self) -> dict[str, str]:
        """``SMARTPLEX_*`` variables that point SmartPlex at these simulators."""
        env = {}
        for name, url in self.urls.items():
            env[f"SMARTPLEX_{name.upper()}_URL"] = url
            env[f"SMARTPLEX_{name.upper()}_{get_service(name).credential_setting.upper()}"] = self.keys[name]
        return env

    def client(self, name: str, **options: Any) -> Any:
        """A SmartPlex client for one simulator (``options`` as for the client's constructor)."""
        from smartplex.clients import CLIENTS

        return CLIENTS[name](self.urls[name], self.keys[name], **options)


@contextmanager
def run_simulators(
    *,
    size: int = 1000,
    seed: int = 1,
    services: Iterable[str] = SERVICE_NAMES,
    ports: Mapping[str, int] | None = None,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    url_bases: Mapping[str, str] | None = None,
    simulation: Simulation | None = None,
    now: int | None = DEFAULT_NOW,
) -> Iterator[RunningSimulators]:
    """Start the chosen simulators over one universe; stop them on exit.

    ``now``: the universe's clock, fixed at that epoch, or ``None`` to follow the real clock.

    ``webhook_url`` may hold ``{service}``, e.g. ``http://127.0.0.1:8765/api/webhooks/{service}``.
    Ports default to free ones chosen by the OS.
    """
    if simulation is None:
        simulation = Simulation(Universe(seed=seed, size=size, now=now))
    if webhook_url is not None:
        simulation.webhooks = WebhookSender.from_template(webhook_url)
    servers: list[tuple[uvicorn.Server, socket.socket]] = []
    urls: dict[str, str] = {}
    for name in services:
        base = (url_bases or {}).get(name, "")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: small responses go out at once, not after a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, (ports or {}).get(name, 0)))
        app = APP_FACTORIES[name](simulation, base)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
        servers.append((uvicorn.Server(config), sock))
        urls[name] = f"http://{host}:{sock.getsockname()[1]}{base}"
    thread = threading.Thread(target=_serve_all, args=(servers,), name="simulators", daemon=True)
    thread.start()
    try:
        while not all(server.started for server, _ in servers):
            if not thread.is_alive():
                raise RuntimeError("simulators failed to start")
            threading.Event().wait(0.01)
        yield RunningSimulators(simulation, urls)
    finally:
        for server, _ in servers:
            server.should_exit = True
        thread.join(timeout=10)
        for _, sock in servers:
            sock.close()


def _serve_all(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """One event loop in one thread serves every simulator."""

    async def main() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    asyncio.run(main())
