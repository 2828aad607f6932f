"""Incremental windows are [start, end): start included, end excluded, any time zone, UTC inside."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from smartplex.clients import Deleted
from smartplex_simulators import Simulation
from tests.simulators.support import asgi_client, empty_simulation

# 2026-01-01T06:30:00Z is 2025-12-31 22:30 in Los Angeles, the simulated Tautulli's zone.
T = 1_767_249_000
AT = datetime.fromtimestamp(T, UTC)
SECOND = timedelta(seconds=1)


def _one_change_at_t(service: str) -> Callable[[Simulation], Any]:
    """Mutations that make exactly one item change at T; returns the id the client reports."""

    def plex(sim: Simulation) -> Any:
        return str(sim.add_movie("At T").rating_key)

    def tautulli(sim: Simulation) -> Any:
        movie = sim.universe.add_movie("Watched")
        sim.advance_clock(45 * 60)  # a 45-minute play that started at T
        return sim.record_play(movie.rating_key, minutes=45).id  # type: ignore[arg-type]

    def sonarr(sim: Simulation) -> Any:
        return sim.add_show("At T", seasons=1, episodes_per_season=1).id

    def radarr(sim: Simulation) -> Any:
        return sim.add_movie("At T").id

    def overseerr(sim: Simulation) -> Any:
        movie = sim.universe.add_movie("Wanted", with_file=False)
        return sim.request_media(movie_id=movie.id).id

    return locals()[service]


def _ids(service: str, items: list[Any]) -> list[Any]:
    attr = {"plex": "rating_key", "tautulli": "row_id"}.get(service, "id")
    return [getattr(i, attr) for i in items if not isinstance(i, Deleted)]


KINDS = ["plex", "tautulli", "sonarr", "radarr", "overseerr"]


@pytest.fixture
def changed_at_t(request: pytest.FixtureRequest) -> tuple[Simulation, Any]:
    sim = empty_simulation(now=T)
    return sim, _one_change_at_t(request.param)(sim)


@pytest.mark.parametrize("changed_at_t", KINDS, indirect=True)
@pytest.mark.parametrize(
    ("start", "end", "included"),
    [
        (AT, AT + SECOND, True),  # start is inclusive
        (AT - timedelta(minutes=5), AT, False),  # end is exclusive (arr grabs come 10 minutes earlier)
        (AT + SECOND, AT + timedelta(hours=1), False),
        (AT - timedelta(days=3), AT + timedelta(days=3), True),
    ],
    ids=["start-inclusive", "end-exclusive", "after", "around"],
)
def test_window_edges(
    changed_at_t: tuple[Simulation, Any], start: datetime, end: datetime, included: bool, request: pytest.FixtureRequest
) -> None:
    sim, expected = changed_at_t
    service = request.node.callspec.params["changed_at_t"]
    with asgi_client(service, sim) as client:
        ids = _ids(service, list(client.iter_changed(start, end)))
    assert ids == ([expected] if included else [])


@pytest.mark.parametrize("changed_at_t", KINDS, indirect=True)
def test_windows_in_other_zones_mean_the_same_instants(
    changed_at_t: tuple[Simulation, Any], request: pytest.FixtureRequest
) -> None:
    sim, expected = changed_at_t
    service = request.node.callspec.params["changed_at_t"]
    tokyo, la = timezone(timedelta(hours=9)), timezone(timedelta(hours=-8))
    with asgi_client(service, sim) as client:
        inside = _ids(service, list(client.iter_changed(AT.astimezone(tokyo), (AT + SECOND).astimezone(la))))
        before = _ids(service, list(client.iter_changed((AT - SECOND).astimezone(la), AT.astimezone(tokyo))))
    assert inside == [expected]
    assert before == []


def test_tautulli_play_on_a_different_local_date_is_found() -> None:
    """Tautulli filters by the server's local date: 06:30 UTC is still yesterday in Los Angeles."""
    sim = empty_simulation(now=T)
    expected = _one_change_at_t("tautulli")(sim)
    with asgi_client("tautulli", sim) as client:
        plays = list(client.iter_changed(AT, AT + timedelta(minutes=1)))
    assert [p.row_id for p in plays] == [expected]
    assert plays[0].started == AT


@pytest.mark.parametrize("service", KINDS)
def test_naive_or_reversed_windows_are_refused(service: str) -> None:
    sim = empty_simulation()
    with asgi_client(service, sim) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            list(client.iter_changed(datetime(2026, 1, 1), datetime(2026, 1, 2)))
        with pytest.raises(ValueError, match="before it starts"):
            list(client.iter_changed(AT, AT - SECOND))


def test_plex_window_covers_added_updated_and_viewed_without_duplicates() -> None:
    sim = empty_simulation(now=T - 3600)
    old = sim.add_movie("Old")  # added an hour before the window
    watched = sim.add_movie("Watched")
    edited = sim.add_movie("Edited")
    sim.advance_clock(3600)
    sim.record_play(watched.rating_key)  # type: ignore[arg-type]
    sim.update_movie(edited.id, title="Edited again")
    fresh = sim.add_movie("Fresh")  # added (and so updated) in the window: reported once
    with asgi_client("plex", sim) as client:
        keys = _ids("plex", list(client.iter_changed(AT, AT + SECOND)))
    assert sorted(keys) == sorted(str(m.rating_key) for m in (watched, edited, fresh))
    assert str(old.rating_key) not in keys
