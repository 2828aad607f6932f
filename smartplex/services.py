"""The five services SmartPlex follows: the one place that lists them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceName = Literal["plex", "tautulli", "sonarr", "radarr", "overseerr"]


@dataclass(frozen=True)
class Service:
    name: ServiceName
    title: str
    #: The Dagster asset (``group/name``) that mirrors this service's library.
    library_asset: str
    #: Settings field that holds the API credential (Plex calls it a token).
    credential_setting: str = "api_key"


SERVICES: tuple[Service, ...] = (
    Service("plex", "Plex Media Server", "plex/library_items", credential_setting="token"),
    Service("tautulli", "Tautulli", "tautulli/watch_history"),
    Service("sonarr", "Sonarr", "sonarr/series"),
    Service("radarr", "Radarr", "radarr/movies"),
    Service("overseerr", "Overseerr", "overseerr/requests"),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}


def get_service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICE_NAMES)}") from None
