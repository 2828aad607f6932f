"""The service kinds SmartPlex follows (``plex``, ``sonarr``, ...): the one place that lists them.

Each :class:`Kind` holds every fact about its kind that is not code: how its webhooks name their
event and their item, which content types it sends, what identifies an item beyond its key, its
schedule's seed, and how its webhook is set up in its own UI (:class:`WebhookSetup`: where, how the
secret travels, which boxes to tick). Its client (``smartplex/clients``), its table and row mapping
(``smartplex/schema.py``, ``smartplex/sync/specs.py``), its events in the routing table
(``smartplex/routing.py``), its example webhook (``webhook_api/examples``) and its simulator are the
rest of a kind; ``tests/test_kinds.py`` fails when a kind lacks any of them.

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
    id_type: Literal["int", "key"]
    #: What the id names, for the note on a webhook whose item the service does not have.
    noun: str


#: How a sender carries the webhook secret, by the fields its webhook form has: the URL alone
#: (``?token=``), a JSON Headers field (``X-Webhook-Token``), a Username/Password pair (HTTP Basic),
#: or an Authorization Header field (``Bearer``).
WebhookAuth = Literal["url_token", "json_headers", "basic_password", "authorization_header"]


@dataclass(frozen=True)
class Trigger:
    """A box to tick in the service's webhook form, and the event type it then sends."""

    label: str
    event: str


@dataclass(frozen=True)
class WebhookSetup:
    """Where, in the service's own UI, its webhook is set up, and what goes there."""

    #: The way to the form, as the service's menus name it.
    where: str
    auth: WebhookAuth
    #: The boxes to tick, each with the event type it sends (several may send the same one).
    triggers: tuple[Trigger, ...] = ()
    #: No boxes to tick: the service sends every event (Plex).
    sends_every_event: bool = False
    #: Anything else its form needs.
    note: str = ""

    def __post_init__(self) -> None:
        # A setup that says neither would leave the page with nothing to tell; one that says both, two stories.
        if bool(self.triggers) == self.sends_every_event:
            raise ValueError(f"{self.where}: give the triggers to tick, or say the service sends every event")


def _triggers(ticks: dict[str, str]) -> tuple[Trigger, ...]:
    return tuple(Trigger(label, event) for label, event in ticks.items())


# Compared and hashed by identity: each kind is made once, in KINDS, and an Instance (a dict key on
# the webhook path) hashes its kind on every lookup, which field by field costs microseconds.
@dataclass(frozen=True, eq=False)
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
    #: How its webhook is set up in its own UI; its triggers send events of the routing table.
    webhook: WebhookSetup
    #: Events announcing a deletion: the service not having the item is what they promise.
    deletion_events: tuple[str, ...] = ()
    #: Content types its webhooks may use besides JSON.
    form_types: tuple[str, ...] = ()
    #: The last words of its credential's variable: SMARTPLEX_SONARR_API_KEY, SMARTPLEX_PLEX_TOKEN (Plex calls it a token).
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
        webhook=WebhookSetup(
            "Plex Web → Settings → your account → Webhooks → Add Webhook (needs Plex Pass)", "url_token",
            sends_every_event=True,
        ),
    ),
    Kind(
        "tautulli", "Tautulli", "tautulli/watch_history", event_key=None,
        item=ItemReference(("rating_key",), "key", "item with ratingKey"),
        natural_ids=("row_id",), schedule_seed=(True, 6), form_types=(URLENCODED,),
        webhook=WebhookSetup(
            "Tautulli → Settings → Notification Agents → Add a new notification agent → Webhook", "json_headers",
            _triggers({"Playback Stop": "stop", "Watched": "watched", "Recently Added": "created"}),
            note="Data tab, for each ticked trigger: JSON Data is the template in docs/webhooks.md.",
        ),
    ),
    Kind(
        "sonarr", "Sonarr", "sonarr/series", event_key="eventType",
        item=ItemReference(("series", "id"), "int", "series"),
        natural_ids=("tvdb_id",), schedule_seed=(False, 24), deletion_events=("SeriesDelete",),
        webhook=WebhookSetup(
            "Sonarr → Settings → Connect → + → Webhook", "basic_password",
            _triggers({
                "On File Import": "Download", "On File Upgrade": "Download", "On Import Complete": "Download",
                "On Rename": "Rename", "On Series Add": "SeriesAdd", "On Series Delete": "SeriesDelete",
                "On Episode File Delete": "EpisodeFileDelete",
                "On Episode File Delete For Upgrade": "EpisodeFileDelete",
            }),
        ),
    ),
    Kind(
        "radarr", "Radarr", "radarr/movies", event_key="eventType",
        item=ItemReference(("movie", "id"), "int", "movie"),
        natural_ids=("tmdb_id",), schedule_seed=(False, 24), deletion_events=("MovieDelete",),
        webhook=WebhookSetup(
            "Radarr → Settings → Connect → + → Webhook", "basic_password",
            _triggers({
                "On File Import": "Download", "On File Upgrade": "Download", "On Rename": "Rename",
                "On Movie Added": "MovieAdded", "On Movie Delete": "MovieDelete",
                "On Movie File Delete": "MovieFileDelete", "On Movie File Delete For Upgrade": "MovieFileDelete",
            }),
        ),
    ),
    Kind(
        "overseerr", "Overseerr", "overseerr/requests", event_key="notification_type",
        item=ItemReference(("request", "request_id"), "int", "request"),
        natural_ids=("id",), schedule_seed=(False, 6),
        webhook=WebhookSetup(
            "Overseerr → Settings → Notifications → Webhook (tick Enable Agent)", "authorization_header",
            _triggers({
                "Request Pending Approval": "MEDIA_PENDING", "Request Automatically Approved": "MEDIA_AUTO_APPROVED",
                "Request Approved": "MEDIA_APPROVED", "Request Declined": "MEDIA_DECLINED",
                "Request Available": "MEDIA_AVAILABLE", "Request Processing Failed": "MEDIA_FAILED",
            }),
            note='JSON Payload: the default template; if you edit it, keep "notification_type": "{{notification_type}}".',
        ),
    ),
)  # fmt: skip

KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def get_kind(name: str) -> Kind:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service kind {name!r}; expected one of {', '.join(KIND_NAMES)}") from None
