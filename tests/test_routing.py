"""The routing table, with every expectation written out: a change to what starts a sync is a
reviewed change here, not something the test recomputes from the code under test."""

import pytest

from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES
from smartplex.routing import IGNORED_EVENTS, STALE_LIBRARIES, is_known_event, stale_assets, stale_kinds

STARTS_A_SYNC = {
    ("plex", "library.new"): ("plex/library_items",),
    ("plex", "media.scrobble"): ("plex/library_items",),
    ("plex", "media.rate"): ("plex/library_items",),
    ("tautulli", "stop"): ("tautulli/watch_history",),
    ("tautulli", "watched"): ("tautulli/watch_history",),
    ("tautulli", "created"): ("plex/library_items",),
    ("sonarr", "Download"): ("sonarr/series",),
    ("sonarr", "Rename"): ("sonarr/series",),
    ("sonarr", "SeriesAdd"): ("sonarr/series",),
    ("sonarr", "SeriesDelete"): ("sonarr/series",),
    ("sonarr", "EpisodeFileDelete"): ("sonarr/series",),
    ("radarr", "Download"): ("radarr/movies",),
    ("radarr", "Rename"): ("radarr/movies",),
    ("radarr", "MovieAdded"): ("radarr/movies",),
    ("radarr", "MovieDelete"): ("radarr/movies",),
    ("radarr", "MovieFileDelete"): ("radarr/movies",),
    ("overseerr", "MEDIA_PENDING"): ("overseerr/requests",),
    ("overseerr", "MEDIA_APPROVED"): ("overseerr/requests",),
    ("overseerr", "MEDIA_AUTO_APPROVED"): ("overseerr/requests",),
    ("overseerr", "MEDIA_AVAILABLE"): ("overseerr/requests",),
    ("overseerr", "MEDIA_DECLINED"): ("overseerr/requests",),
    ("overseerr", "MEDIA_FAILED"): ("overseerr/requests",),
    ("overseerr", "MEDIA_AUTO_REQUESTED"): ("overseerr/requests",),
}
LOGGED_ONLY = {
    "plex": {"media.play", "media.pause", "media.resume", "media.stop", "library.on.deck", "admin.database.backup",
             "admin.database.corrupted", "device.new", "playback.started"},
    "tautulli": {"play", "pause", "resume", "buffer", "error", "intdown", "intup", "test"},
    "sonarr": {"Test", "Grab", "Health", "HealthRestored", "ApplicationUpdate", "ManualInteractionRequired"},
    "radarr": {"Test", "Grab", "Health", "HealthRestored", "ApplicationUpdate", "ManualInteractionRequired"},
    "overseerr": {"TEST_NOTIFICATION", "ISSUE_CREATED", "ISSUE_COMMENT", "ISSUE_RESOLVED", "ISSUE_REOPENED"},
}  # fmt: skip


@pytest.mark.parametrize(("source", "event"), sorted(STARTS_A_SYNC))
def test_each_routed_event_makes_exactly_its_library_stale(source: str, event: str) -> None:
    assert stale_assets(Instance.parse(source), event) == STARTS_A_SYNC[(source, event)]
    assert is_known_event(source, event)


@pytest.mark.parametrize(("source", "event"), sorted((s, e) for s, events in LOGGED_ONLY.items() for e in events))
def test_each_logged_only_event_starts_nothing(source: str, event: str) -> None:
    assert stale_assets(Instance.parse(source), event) == ()
    assert is_known_event(source, event)


def test_the_table_holds_nothing_else() -> None:
    routed = {(s, e) for s, events in STALE_LIBRARIES.items() for e in events}
    assert routed == set(STARTS_A_SYNC)
    assert {s: set(e) for s, e in IGNORED_EVENTS.items()} == LOGGED_ONLY


@pytest.mark.parametrize(
    ("source", "event"),
    [
        ("sonarr", "download"),
        ("plex", "library.New"),
        ("radarr", "Unknown"),
        ("overseerr", ""),
        ("jellyfin", "library.new"),
        ("tautulli", "created "),
    ],
)
def test_unknown_or_misspelled_events_start_nothing(source: str, event: str) -> None:
    assert stale_kinds(source, event) == ()
    if source in KIND_NAMES:
        assert stale_assets(Instance.parse(source), event) == ()
    assert not is_known_event(source, event)
