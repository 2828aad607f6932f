"""The service kinds SmartPlex follows (``plex``, ``sonarr``, ...): the one place that lists them.

Each :class:`Kind` holds every fact about its kind that is not code: how its webhooks name their
event and their item, which content types it sends, what identifies an item beyond its key, its
schedule's seed. Its client (``smartplex/clients``), its table and row mapping (``smartplex/schema.py``,
``smartplex/sync/specs.py``), its events in the routing table (``smartplex/routing.py``), its example
webhook (``webhook_api/examples``) and its simulator are the rest of a kind; ``tests/test_kinds.py``
fails when a kind lacks any of them.

A configured copy of a kind is an :class:`~smartplex.instances.Instance` (``sonarr``, ``sonarr/4k``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

KindName = Literal["plex", "tautulli", "sonarr", "radarr", "overseerr"]

MULTIPART: Final = "multipart/form-data"
URLENCODED: Final = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class ItemReference:
    """Where a kind's webhooks carry the id of the item they concern."""

    path: tuple[str, ...]
    #: ``int``: a numeric id (sent as a number, or as digits in a string); ``key``: a Plex ratingKey.
    kind: Literal["int", "key"]
    #: What the id names, for the note on a webhook whose item the service does not have.
    noun: str


@dataclass(frozen=True)
class Kind:
    name: KindName
    title: str
    #: The Dagster asset (``group/name``) that mirrors the default instance's library.
    library_asset: str
    #: The payload key naming the event; ``None``: the user's own template (Tautulli), keys from settings.
    event_key: str | None
    #: Where its webhooks name an item (``None``: nowhere).
    item: ItemReference | None
    #: Columns that identify an item beyond the table's key: the same media twice is a duplicate.
    natural_ids: tuple[str, ...]
    #: The seed of its ``sync_schedule`` row: (enabled, interval_hours).
    schedule_seed: tuple[bool, int]
    #: Events announcing a deletion: the service not having the item is what they promise.
    deletion_events: tuple[str, ...] = ()
    #: Content types its webhooks may use besides JSON.
    form_types: tuple[str, ...] = ()
    #: Settings field that holds the API credential (Plex calls it a token).
    credential_setting: str = "api_key"

    @property
    def asset_name(self) -> str:
        return self.library_asset.split("/", 1)[1]


KINDS: tuple[Kind, ...] = (
    Kind(
        "plex", "Plex Media Server", "plex/library_items", event_key="event",
        item=ItemReference(("Metadata", "ratingKey"), "key", "item with ratingKey"),
        natural_ids=("server_id", "guid"), schedule_seed=(True, 12), form_types=(MULTIPART,),
        credential_setting="token",
    ),
    Kind(
        "tautulli", "Tautulli", "tautulli/watch_history", event_key=None,
        item=ItemReference(("rating_key",), "key", "item with ratingKey"),
        natural_ids=("row_id",), schedule_seed=(True, 6), form_types=(URLENCODED,),
    ),
    Kind(
        "sonarr", "Sonarr", "sonarr/series", event_key="eventType",
        item=ItemReference(("series", "id"), "int", "series"),
        natural_ids=("tvdb_id",), schedule_seed=(False, 24), deletion_events=("SeriesDelete",),
    ),
    Kind(
        "radarr", "Radarr", "radarr/movies", event_key="eventType",
        item=ItemReference(("movie", "id"), "int", "movie"),
        natural_ids=("tmdb_id",), schedule_seed=(False, 24), deletion_events=("MovieDelete",),
    ),
    Kind(
        "overseerr", "Overseerr", "overseerr/requests", event_key="notification_type",
        item=ItemReference(("request", "request_id"), "int", "request"),
        natural_ids=("id",), schedule_seed=(False, 6),
    ),
)  # fmt: skip

KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def get_kind(name: str) -> Kind:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service kind {name!r}; expected one of {', '.join(KIND_NAMES)}") from None
