"""One deterministic universe, consistent across the five services."""

from __future__ import annotations

from smartplex_simulators import Universe, make_keys
from smartplex_simulators.universe import DAY, Episode, Movie, Show, episode_file, movie_file


def _fingerprint(universe: Universe) -> list[tuple[object, ...]]:
    return (
        [(m.id, m.title, m.tmdb_id, m.rating_key, m.added) for m in universe.movies.values()]
        + [(p.id, p.rating_key, p.started) for p in universe.plays]
        + [(r.id, r.status, r.target.id) for r in universe.requests.values()]
    )


def test_same_seed_same_universe_other_seed_other_universe() -> None:
    assert _fingerprint(Universe(seed=4, size=1000)) == _fingerprint(Universe(seed=4, size=1000))
    assert _fingerprint(Universe(seed=4, size=1000)) != _fingerprint(Universe(seed=5, size=1000))
    assert make_keys(4) == make_keys(4) != make_keys(5)


def test_size_counts_plex_leaves_and_timestamps_span_years() -> None:
    universe = Universe(seed=1, size=5000, years=4)
    leaves = len(universe.movies) + len(universe.episodes)
    assert 5000 <= leaves < 5000 + 6 * 13  # the last show may overshoot by at most one show
    added = [m.added for m in universe.movies.values()]
    assert max(added) - min(added) > 3 * 365 * DAY
    assert max(added) < universe.now
    assert all(p.started < p.stopped <= universe.now for p in universe.plays)


def test_ids_agree_across_services() -> None:
    universe = Universe(seed=2, size=2000)
    for item in universe.plex.values():
        assert universe.plex[item.rating_key] is item
        if isinstance(item, Movie):
            assert item.file_id is not None  # only movies with a file are in Plex
        if isinstance(item, Episode):
            assert item.show.rating_key is not None and item.season in item.show.season_keys
    for play in universe.plays:
        assert universe.plex[play.rating_key] is play.item
    for request in universe.requests.values():
        assert request.media_id == universe.media_id(request.target)
    files = {movie_file(m) for m in universe.movies.values()} | {episode_file(e) for e in universe.episodes.values()}
    assert len(files) == len(universe.movies) + len(universe.episodes)  # one path per file, shared by all


def test_history_is_in_date_order_after_mutations() -> None:
    universe = Universe(seed=3, size=500)
    universe.add_movie("Late")
    show = universe.add_show("Later", seasons=1, episodes_per_season=2)
    universe.delete_episode_file(show.episodes[0].id)
    for history in (universe.radarr_history, universe.sonarr_history):
        dates = [e.date for e in history]
        assert dates == sorted(dates)
        assert len({e.id for e in history}) == len(history)


def test_deleting_a_series_removes_it_from_plex_and_sonarr() -> None:
    universe = Universe(seed=3, size=500)
    show = next(s for s in universe.shows.values() if s.rating_key is not None)
    universe.delete_series(show.id)
    assert show.id not in universe.shows
    assert not any(
        isinstance(i, (Show, Episode)) and (i is show or getattr(i, "show", None) is show)
        for i in universe.plex.values()
    )
    assert all(e.target != show.id for e in universe.sonarr_history)
