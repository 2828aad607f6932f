"""The routing table: which library assets each (source, event type) makes stale.

This is the one place that decides whether a webhook starts a sync. The webhook API uses it to mark
rows that make nothing stale as ``ignored`` at insert; the Dagster sensor uses it to group pending rows
into runs. Events not listed (including unknown ones) are logged and ignored.
"""

from __future__ import annotations

from typing import Final

from smartplex.instances import Instance
from smartplex.settings import get_settings

#: sender's kind -> event type -> kinds whose library the event makes stale.
STALE_LIBRARIES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "plex": {
        "library.new": ("plex",),
        # A finished play or a rating changes viewCount / lastViewedAt / userRating on the item.
        "media.scrobble": ("plex",),
        "media.rate": ("plex",),
    },
    "tautulli": {
        # Tautulli writes its history row when playback stops.
        "stop": ("tautulli",),
        "watched": ("tautulli",),
        # "Recently added" means the Plex library changed.
        "created": ("plex",),
    },
    "sonarr": {
        event: ("sonarr",) for event in ("Download", "Rename", "SeriesAdd", "SeriesDelete", "EpisodeFileDelete")
    },
    "radarr": {event: ("radarr",) for event in ("Download", "Rename", "MovieAdded", "MovieDelete", "MovieFileDelete")},
    "overseerr": {
        event: ("overseerr",)
        for event in (
            "MEDIA_PENDING",
            "MEDIA_APPROVED",
            "MEDIA_AUTO_APPROVED",
            "MEDIA_AVAILABLE",
            "MEDIA_DECLINED",
            "MEDIA_FAILED",
            "MEDIA_AUTO_REQUESTED",
        )
    },
}

#: Events each kind really sends that make nothing stale: logged, marked ignored, never a run.
IGNORED_EVENTS: Final[dict[str, tuple[str, ...]]] = {
    "plex": (
        "media.play", "media.pause", "media.resume", "media.stop", "library.on.deck",
        "admin.database.backup", "admin.database.corrupted", "device.new", "playback.started",
    ),
    "tautulli": ("play", "pause", "resume", "buffer", "error", "intdown", "intup", "test"),
    "sonarr": ("Test", "Grab", "Health", "HealthRestored", "ApplicationUpdate", "ManualInteractionRequired"),
    "radarr": ("Test", "Grab", "Health", "HealthRestored", "ApplicationUpdate", "ManualInteractionRequired"),
    "overseerr": (
        "TEST_NOTIFICATION", "ISSUE_CREATED", "ISSUE_COMMENT", "ISSUE_RESOLVED", "ISSUE_REOPENED",
    ),
}  # fmt: skip


def stale_kinds(sender_kind: str, event_type: str) -> tuple[str, ...]:
    """The kinds whose library an event from a ``sender_kind`` service makes stale."""
    return STALE_LIBRARIES.get(sender_kind, {}).get(event_type, ())


def target(kind: str, sender: Instance) -> Instance:
    """The instance of ``kind`` an event from ``sender`` concerns: the sender itself for its own kind;
    for another kind (Tautulli's "created" is Plex's news), that kind's instance of the same name
    (``tautulli/office`` watches ``plex/office``) when there is one, else the kind's default instance."""
    if kind == sender.kind.name:
        return sender
    try:
        return get_settings().instance(f"{kind}/{sender.name}")
    except KeyError:
        return Instance.parse(kind)


def stale_libraries(sender: Instance, event_type: str) -> tuple[Instance, ...]:
    """The instances whose library this event from ``sender`` makes stale."""
    return tuple(target(kind, sender) for kind in stale_kinds(sender.kind.name, event_type))


def stale_assets(sender: Instance, event_type: str) -> tuple[str, ...]:
    """Asset keys (``group/name``) that this event makes stale; empty when it starts no sync."""
    return tuple(i.library_asset for i in stale_libraries(sender, event_type))


def routes(instances: tuple[Instance, ...]) -> list[tuple[Instance, str, Instance]]:
    """Every (sender, event type, library) of ``instances``: what makes each library stale."""
    return [
        (sender, event, library)
        for sender in instances
        for event in STALE_LIBRARIES.get(sender.kind.name, {})
        for library in stale_libraries(sender, event)
    ]


def is_known_event(sender_kind: str, event_type: str) -> bool:
    return event_type in STALE_LIBRARIES.get(sender_kind, {}) or event_type in IGNORED_EVENTS.get(sender_kind, ())
