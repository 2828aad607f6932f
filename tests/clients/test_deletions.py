"""Sonarr and Radarr windows surface what was removed, so the incremental sync can soft-delete it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smartplex.clients import Deleted, RadarrMovie, SonarrSeries
from smartplex_simulators.universe import episode_file, movie_file
from tests.simulators.support import asgi_client, empty_simulation


def _window(now: int) -> tuple[datetime, datetime]:
    end = datetime.fromtimestamp(now, UTC) + timedelta(seconds=1)
    return end - timedelta(hours=1), end


def test_a_deleted_episode_file_is_reported_with_its_series() -> None:
    sim = empty_simulation()
    show = sim.add_show("Kept", seasons=1, episodes_per_season=2)
    sim.advance_clock(86_400)
    gone = show.episodes[0]
    path = episode_file(gone)
    sim.delete_episode_file(gone.id)
    with asgi_client("sonarr", sim) as client:
        changed = list(client.iter_changed(*_window(sim.universe.now)))
    assert (
        Deleted("episodeFile", show.id, at=datetime.fromtimestamp(sim.universe.now, UTC), path=path, episode_id=gone.id)
        in changed
    )
    series = [c for c in changed if isinstance(c, SonarrSeries)]
    assert [s.id for s in series] == [show.id]
    assert series[0].raw["statistics"]["episodeFileCount"] == 1


def test_a_deleted_movie_file_is_reported_with_its_movie() -> None:
    sim = empty_simulation()
    movie = sim.add_movie("Kept")
    sim.advance_clock(86_400)
    path = movie_file(movie)
    sim.delete_movie_file(movie.id)
    with asgi_client("radarr", sim) as client:
        changed = list(client.iter_changed(*_window(sim.universe.now)))
    deleted = [c for c in changed if isinstance(c, Deleted)]
    assert [(d.kind, d.id, d.path) for d in deleted] == [("movieFile", movie.id, path)]
    movies = [c for c in changed if isinstance(c, RadarrMovie)]
    assert [(m.id, m.has_file) for m in movies] == [(movie.id, False)]


def test_a_series_deleted_while_the_window_is_read_is_reported() -> None:
    """History names the series, then it is gone from the library: the client says so."""
    sim = empty_simulation()
    show = sim.add_show("Doomed", seasons=1, episodes_per_season=1)
    sim.advance_clock(60)
    sim.delete_episode_file(show.episodes[0].id)
    with asgi_client("sonarr", sim) as client:
        changed = client.iter_changed(*_window(sim.universe.now))
        first = next(changed)  # history has been read: the file deletion
        sim.delete_series(show.id)
        rest = list(changed)
    assert isinstance(first, Deleted) and first.kind == "episodeFile"
    assert rest == [Deleted("series", show.id)]


def test_deleting_a_movie_purges_its_history_as_radarr_does() -> None:
    """So whole-item deletions reach the sync through the full refresh or the MovieDelete webhook."""
    sim = empty_simulation()
    movie = sim.add_movie("Short-lived")
    sim.delete_movie(movie.id)
    with asgi_client("radarr", sim) as client:
        assert list(client.iter_changed(*_window(sim.universe.now))) == []
        assert list(client.iter_all()) == []
