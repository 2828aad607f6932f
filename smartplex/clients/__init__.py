"""Clients for the services' REST APIs, one per kind.

The contract every client keeps (the sync assets rely on exactly this):

``client.iter_all() -> Iterator[Item]``
    Every item, fetched page by page and yielded as it arrives (the full refresh). Nothing holds
    the whole library; stop iterating at any time.
``client.iter_changed(start, end, also=ids) -> Iterator[Item | Deleted | Missing]``
    Items added, changed or removed in ``[start, end)``; ``start``/``end`` must be timezone-aware
    (any zone; compared in UTC). ``also``: ids that webhooks named (Sonarr/Radarr series and movie
    ids, Plex ratingKeys, Overseerr request ids, Tautulli ratingKeys), fetched by id whatever their
    timestamps. A named item the service says it does not have comes back as a :class:`Deleted`
    marker (soft-deleted: the service confirmed it), or as :class:`Missing` where that proves no
    deletion (Tautulli). Sonarr and Radarr also yield :class:`Deleted` markers for files removed in
    the window and for touched items that no longer exist. No API records every removal (Plex,
    Tautulli and Overseerr none; the *arrs purge a deleted item's history), so the full refresh is
    what reconciles deletions.
``client.changes_since(since, known) -> ChangeFeed``
    The catch-up's poll: what the service's own change feeds say changed since ``since`` (items, ids,
    counts for a count check, Sonarr/Radarr's listing digests), in a request or two per library (per
    section for Plex) when nothing did. ``known``: the fingerprint the last poll kept.
``client.server_info() -> ServerInfo``
    Name, version and library size; proves the URL and credential.
``client.stats``
    :class:`FetchStats` (requests, retries, pages, items) since the client was made.

Item types: Plex :class:`PlexItem`, Tautulli :class:`TautulliPlay`, Sonarr :class:`SonarrSeries`,
Radarr :class:`RadarrMovie`, Overseerr :class:`OverseerrRequest`. Failures raise a
:class:`ServiceError` subclass. Clients are context managers; build one with :func:`client_for`.
"""

from __future__ import annotations

from typing import Any

from smartplex.clients._arr import ArrClient
from smartplex.clients._base import ServiceClient
from smartplex.clients._http import FetchStats, RetryPolicy
from smartplex.clients.errors import (
    BadResponse,
    NotConfigured,
    NotFound,
    ServiceError,
    ServiceTimeout,
    ServiceUnreachable,
    Unauthorized,
)
from smartplex.clients.models import (
    Deleted,
    ExternalIds,
    Missing,
    OverseerrRequest,
    PlexItem,
    RadarrMovie,
    ServerInfo,
    SonarrSeries,
    TautulliPlay,
)
from smartplex.clients.overseerr import OverseerrClient
from smartplex.clients.plex import PlexClient
from smartplex.clients.radarr import RadarrClient
from smartplex.clients.sonarr import SonarrClient
from smartplex.clients.tautulli import TautulliClient
from smartplex.instances import Instance
from smartplex.settings import SettingsBase, get_settings

CLIENTS: dict[str, type[ServiceClient[Any]]] = {
    cls.kind: cls for cls in (PlexClient, TautulliClient, SonarrClient, RadarrClient, OverseerrClient)
}


def client_for(instance: Instance, settings: SettingsBase | None = None, **options: Any) -> ServiceClient[Any]:
    """A client for one instance's service from the settings (default: :func:`get_settings`).

    ``options`` go to the client (``timeout``, ``retry``, ``page_size``, ``transport``).
    Raises :class:`NotConfigured` naming the variables to set when the URL or credential is missing.
    """
    if settings is None:
        settings = get_settings()
    url, credential = settings.service_url(instance), settings.service_credential(instance)
    if not url or credential is None:
        raise NotConfigured(instance)
    return CLIENTS[instance.kind.name](url, credential.get_secret_value(), instance=instance, **options)


__all__ = [
    "CLIENTS",
    "ArrClient",
    "BadResponse",
    "Deleted",
    "Missing",
    "ExternalIds",
    "FetchStats",
    "NotConfigured",
    "NotFound",
    "OverseerrClient",
    "OverseerrRequest",
    "PlexClient",
    "PlexItem",
    "RadarrClient",
    "RadarrMovie",
    "RetryPolicy",
    "ServerInfo",
    "ServiceClient",
    "ServiceError",
    "ServiceTimeout",
    "ServiceUnreachable",
    "SonarrClient",
    "SonarrSeries",
    "TautulliClient",
    "TautulliPlay",
    "Unauthorized",
    "client_for",
]
