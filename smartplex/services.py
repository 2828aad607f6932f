"""The five service kinds SmartPlex follows, and their instances: the one place that lists them.

Each :class:`Service` holds every fact about its kind that is not code: how its webhooks name their
event and their item, which content types it sends, what identifies an item beyond its key, its
schedule's seed. Its client (``smartplex/clients``), its table and row mapping (``smartplex/schema.py``,
``smartplex/sync/specs.py``) and its simulator are the rest of a kind.

An :class:`Instance` is one configured copy of a kind: ``sonarr`` (the default instance, configured
by ``SMARTPLEX_SONARR_*``) or ``sonarr/4k`` (``SMARTPLEX_SONARR_4K_*``); ``smartplex.settings`` says
which extra instances exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

ServiceName = Literal["plex", "tautulli", "sonarr", "radarr", "overseerr"]

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
class Service:
    name: ServiceName
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


SERVICES: tuple[Service, ...] = (
    Service(
        "plex", "Plex Media Server", "plex/library_items", event_key="event",
        item=ItemReference(("Metadata", "ratingKey"), "key", "item with ratingKey"),
        natural_ids=("server_id", "guid"), schedule_seed=(True, 12), form_types=(MULTIPART,),
        credential_setting="token",
    ),
    Service(
        "tautulli", "Tautulli", "tautulli/watch_history", event_key=None,
        item=ItemReference(("rating_key",), "key", "item with ratingKey"),
        natural_ids=("row_id",), schedule_seed=(True, 6), form_types=(URLENCODED,),
    ),
    Service(
        "sonarr", "Sonarr", "sonarr/series", event_key="eventType",
        item=ItemReference(("series", "id"), "int", "series"),
        natural_ids=("tvdb_id",), schedule_seed=(False, 24), deletion_events=("SeriesDelete",),
    ),
    Service(
        "radarr", "Radarr", "radarr/movies", event_key="eventType",
        item=ItemReference(("movie", "id"), "int", "movie"),
        natural_ids=("tmdb_id",), schedule_seed=(False, 24), deletion_events=("MovieDelete",),
    ),
    Service(
        "overseerr", "Overseerr", "overseerr/requests", event_key="notification_type",
        item=ItemReference(("request", "request_id"), "int", "request"),
        natural_ids=("id",), schedule_seed=(False, 6),
    ),
)  # fmt: skip

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}

#: The instance configured by the kind's own variables (``SMARTPLEX_SONARR_URL``), in every table.
DEFAULT_INSTANCE: Final = "default"
#: An extra instance's name: it becomes part of variable names, asset keys and URLs.
INSTANCE_NAME = re.compile(r"[a-z0-9]{1,32}")


def get_service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICE_NAMES)}") from None


@dataclass(frozen=True)
class Instance:
    """One configured copy of a service kind. Its id is the kind's name for the default instance
    (``sonarr``) and ``kind/name`` for the others (``sonarr/4k``)."""

    service: Service
    name: str = DEFAULT_INSTANCE

    @classmethod
    def parse(cls, instance_id: str) -> Instance:
        """``sonarr`` or ``sonarr/4k`` (``sonarr/default`` is ``sonarr``); ``ValueError`` otherwise."""
        kind, _, name = instance_id.partition("/")
        service = get_service(kind)
        if not name:
            return cls(service)
        if not INSTANCE_NAME.fullmatch(name):
            raise ValueError(f"bad instance name {name!r}: lowercase letters and digits, at most 32")
        return cls(service, name)

    @classmethod
    def from_slug(cls, slug: str) -> Instance:
        """The instance of a :attr:`slug` (``sonarr_4k``); ``ValueError`` otherwise."""
        return cls.parse(slug.replace("_", "/", 1))

    @classmethod
    def of(cls, kind: str, name: str) -> Instance:
        """The instance a row names by its kind and instance columns."""
        return cls(get_service(kind), name)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_INSTANCE

    @property
    def id(self) -> str:
        return self.service.name if self.is_default else f"{self.service.name}/{self.name}"

    @property
    def slug(self) -> str:
        """The id as one identifier: asset key prefix, pool, schedule and resource names."""
        return self.service.name if self.is_default else f"{self.service.name}_{self.name}"

    @property
    def title(self) -> str:
        return self.service.title if self.is_default else f"{self.service.title} ({self.name})"

    @property
    def library_asset(self) -> str:
        return f"{self.slug}/{self.service.asset_name}"

    @property
    def env_names(self) -> tuple[str, str]:
        """The variables that configure it: its URL and its credential."""
        prefix = f"SMARTPLEX_{self.slug.upper()}"
        return f"{prefix}_URL", f"{prefix}_{self.service.credential_setting.upper()}"

    @property
    def secret_env_name(self) -> str:
        """The variable holding a webhook secret for this instance alone."""
        if self.is_default:
            return f"SMARTPLEX_WEBHOOK_SECRET_{self.service.name.upper()}"
        return f"SMARTPLEX_{self.slug.upper()}_WEBHOOK_SECRET"


DEFAULT_INSTANCES: tuple[Instance, ...] = tuple(Instance(s) for s in SERVICES)
