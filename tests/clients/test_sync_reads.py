"""The two reads the syncs make, over real sockets against a populated library."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from smartplex.clients import Deleted
from smartplex_simulators import RunningSimulators, run_simulators
from smartplex_simulators.universe import DAY, Episode, Movie, Show


@pytest.fixture(scope="module")
def changed() -> Iterator[tuple[RunningSimulators, dict[str, Any], tuple[datetime, datetime]]]:
    """A generated library, then one day in which a few things happen."""
    with run_simulators(size=3000, seed=23) as sims:
        sim, universe = sims.simulation, sims.universe
        sim.advance_clock(DAY)
        start = datetime.fromtimestamp(universe.now, UTC)
        old_episode = next(e for e in universe.episodes.values() if e.rating_key and e.show.rating_key)
        edited = next(m for m in universe.movies.values() if m.rating_key)
        cut = next(e for e in universe.episodes.values() if e.file_id and e.show is not old_episode.show)
        pending = next(r for r in universe.requests.values() if r.status == 1)
        sim.advance_clock(3600)  # so the 45-minute play below starts inside the window
        what = {
            "movie": sim.add_movie("Fresh Movie"),
            "show": sim.add_show("Fresh Show", seasons=1, episodes_per_season=3),
            "play": sim.record_play(old_episode.rating_key),  # type: ignore[arg-type]
            "edited": sim.update_movie(edited.id, title="Edited Title"),
            "cut": sim.delete_episode_file(cut.id),
            "approved": sim.approve_request(pending.id),
            "watched": old_episode,
        }
        sim.advance_clock(3600)
        yield sims, what, (start, datetime.fromtimestamp(universe.now, UTC))


def _changes(sims: RunningSimulators, service: str, window: tuple[datetime, datetime]) -> list[Any]:
    with sims.client(service) as client:
        return list(client.iter_changed(*window))


def test_plex_reports_exactly_what_changed(changed: tuple[RunningSimulators, dict[str, Any], Any]) -> None:
    sims, what, window = changed
    keys = {i.rating_key for i in _changes(sims, "plex", window)}
    show: Show = what["show"]
    watched: Episode = what["watched"]
    expected = {
        what["movie"].rating_key,
        what["edited"].rating_key,
        show.rating_key,
        watched.rating_key,
        watched.show.rating_key,
        what["cut"].show.rating_key,
        *(e.rating_key for e in show.episodes),
    }
    assert keys == {str(k) for k in expected}


def test_tautulli_reports_the_new_play(changed: tuple[RunningSimulators, dict[str, Any], Any]) -> None:
    sims, what, window = changed
    assert [p.row_id for p in _changes(sims, "tautulli", window)] == [what["play"].id]


def test_sonarr_reports_the_new_series_and_the_cut_file(changed: tuple[RunningSimulators, dict[str, Any], Any]) -> None:
    sims, what, window = changed
    changes = _changes(sims, "sonarr", window)
    cut: Episode = what["cut"]
    assert {c.id for c in changes if not isinstance(c, Deleted)} == {what["show"].id, cut.show.id}
    assert [(d.kind, d.id, d.episode_id) for d in changes if isinstance(d, Deleted)] == [
        ("episodeFile", cut.show.id, cut.id)
    ]


def test_radarr_reports_the_new_movie(changed: tuple[RunningSimulators, dict[str, Any], Any]) -> None:
    sims, what, window = changed
    movie: Movie = what["movie"]
    assert [(m.id, m.tmdb_id) for m in _changes(sims, "radarr", window)] == [(movie.id, movie.tmdb_id)]


def test_overseerr_reports_the_approved_request(changed: tuple[RunningSimulators, dict[str, Any], Any]) -> None:
    sims, what, window = changed
    requests = _changes(sims, "overseerr", window)
    assert [(r.id, r.status) for r in requests] == [(what["approved"].id, 2)]
    target = what["approved"].target
    assert (requests[0].tmdb_id, requests[0].external_service_id) == (target.tmdb_id, target.id)


@pytest.mark.parametrize("service", ["plex", "tautulli", "sonarr", "radarr", "overseerr"])
def test_full_refresh_reads_the_whole_library(
    changed: tuple[RunningSimulators, dict[str, Any], Any], service: str
) -> None:
    sims, _, _ = changed
    universe = sims.universe
    expected = {
        "plex": len(universe.plex),  # movies, shows and episodes; seasons are not listed
        "tautulli": len(universe.plays),
        "sonarr": len(universe.shows),
        "radarr": len(universe.movies),
        "overseerr": len(universe.requests),
    }[service]
    with sims.client(service) as client:
        assert sum(1 for _ in client.iter_all()) == expected
        assert client.server_info().library_size == expected
