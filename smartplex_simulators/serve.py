"""Run simulators on loopback ports in a background thread: for tests, the demo and the syncs.

with run_simulators(size=2_000, seed=7) as sims:
    client = sims.client("plex")          # a PlexClient pointed at the simulator
    sims.simulation.add_movie("New")      # mutate; webhooks go to `webhook_url` if given
    os.environ.update(sims.env())         # or configure SmartPlex through its settings

``kinds=["plex"]`` starts only those kinds' simulators; ``extra_instances=("sonarr/4k", "radarr/4k")`` adds a
4K Sonarr and Radarr (see ``universe.Library4K``).
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

from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES, KINDS, KindName, get_kind
from smartplex.settings import INSTANCES_VAR
from smartplex_simulators import overseerr, plex, radarr, sonarr, tautulli
from smartplex_simulators._arr import EXTRA_INSTANCES
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
    #: Where each simulator listens, by instance id: ``sonarr``, ``sonarr/4k``.
    urls: dict[str, str]

    @property
    def keys(self) -> dict[str, str]:
        return {instance_id: self.simulation.keys[instance_id] for instance_id in self.urls}

    @property
    def universe(self) -> Universe:
        return self.simulation.universe

    def env(self) -> dict[str, str]:
        """``SMARTPLEX_*`` variables that point SmartPlex at these simulators: ``SMARTPLEX_INSTANCES``
        declaring the extra instances, if any, then each instance's URL and credential."""
        instances = [Instance.parse(instance_id) for instance_id in self.urls]
        extra = [f"{i.kind.name}:{i.name}" for i in instances if not i.is_default]
        env = {INSTANCES_VAR: ",".join(extra)} if extra else {}
        for instance in instances:
            url_variable, key_variable = instance.env_names
            env[url_variable], env[key_variable] = self.urls[instance.id], self.keys[instance.id]
        return env

    def client(self, instance_id: str, **options: Any) -> Any:
        """A SmartPlex client for one simulator, by instance id (``options`` as for the client's constructor)."""
        from smartplex.clients import CLIENTS

        kind = Instance.parse(instance_id).kind.name
        return CLIENTS[kind](self.urls[instance_id], self.keys[instance_id], **options)


@contextmanager
def run_simulators(
    *,
    size: int = 1000,
    seed: int = 1,
    kinds: Iterable[KindName] = tuple(k.name for k in KINDS),
    extra_instances: Iterable[str] = (),
    ports: Mapping[str, int] | None = None,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    drop_webhooks: float = 0.0,
    url_bases: Mapping[str, str] | None = None,
    simulation: Simulation | None = None,
    now: int | None = DEFAULT_NOW,
) -> Iterator[RunningSimulators]:
    """Start the chosen simulators over one universe; stop them on exit.

    ``kinds``: whose default instance to start (every kind's unless told). ``extra_instances``: further
    instances to start too, by id or as ``SMARTPLEX_INSTANCES`` spells them (``sonarr/4k``, ``radarr:4k``;
    see ``EXTRA_INSTANCES``). ``ports`` and ``url_bases`` are by instance id; ports default to free ones
    chosen by the OS.

    ``now``: the universe's clock, fixed at that epoch, or ``None`` to follow the real clock.

    ``webhook_url`` may hold ``{kind}`` and ``{instance_path}`` (``/4k`` for a 4K instance, empty
    otherwise), e.g. ``http://127.0.0.1:8765/api/webhooks/{kind}{instance_path}``. Its sender keeps the
    universe's clock, so Sonarr's and Radarr's back-off after failures ends as ``advance_clock`` moves it,
    and loses the share ``drop_webhooks`` (0 to 1) of the webhooks on purpose.
    """
    if drop_webhooks and webhook_url is None:
        raise ValueError("drop_webhooks needs a webhook_url: without one no webhook is sent")
    extra = [_extra_instance(instance_id) for instance_id in extra_instances]
    if simulation is None:
        simulation = Simulation(Universe(seed=seed, size=size, now=now))
    if extra:
        simulation.universe.enable_4k()
    if webhook_url is not None:
        simulation.webhooks = WebhookSender.from_template(
            webhook_url, clock=simulation.clock, drop_rate=drop_webhooks, seed=simulation.universe.seed
        )
    servers: list[tuple[uvicorn.Server, socket.socket]] = []
    urls: dict[str, str] = {}
    # In the order SmartPlex lists instances: by kind, each default instance before its extra ones.
    defaults = [Instance(get_kind(kind)) for kind in kinds]
    chosen = sorted({*defaults, *extra}, key=lambda i: (KIND_NAMES.index(i.kind.name), i.id))
    for instance in chosen:
        base = (url_bases or {}).get(instance.id, "")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: small responses go out at once, not after a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, (ports or {}).get(instance.id, 0)))
        factory = APP_FACTORIES[instance.kind.name]
        app = factory(simulation, base) if instance.is_default else factory(simulation, base, instance.name)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
        servers.append((uvicorn.Server(config), sock))
        urls[instance.id] = f"http://{host}:{sock.getsockname()[1]}{base}"
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


def _extra_instance(spelled: str) -> Instance:
    instance = Instance.parse(spelled.replace(":", "/"))
    if instance not in EXTRA_INSTANCES:
        raise ValueError(
            f"no simulator for {spelled!r}; the extra instances are {', '.join(i.id for i in EXTRA_INSTANCES)}"
        )
    return instance


def _serve_all(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """One event loop in one thread serves every simulator."""

    async def main() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    asyncio.run(main())
