"""Syncs against the simulators over HTTP, on SQLite and PostgreSQL: full refresh, incremental, deletions."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, insert, select

from smartplex.clients import ServiceError
from smartplex.instances import Instance
from smartplex.schema import (
    overseerr_requests,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    tautulli_watch_history,
    watch_stats,
    webhook_log,
)
from smartplex.sync import SPECS, recompute_watch_stats, run_sync
from smartplex.sync.hints import ids_of, named_items
from smartplex_simulators import webhooks
from smartplex_simulators.serve import RunningSimulators
from smartplex_simulators.universe import Movie, movie_file
from tests.conftest import DAY


def _epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def full_refresh(engine: Engine, sims: RunningSimulators, service: str) -> Any:
    with sims.client(service) as client:
        return run_sync(engine, client, SPECS[service], None)


def last_week() -> tuple[datetime, datetime]:
    """The incremental window: the last 7 daily partitions, today's included."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=6), today + timedelta(days=1)


def incremental(engine: Engine, sims: RunningSimulators, service: str, **options: Any) -> Any:
    window = last_week()
    with sims.client(service) as client:
        return run_sync(engine, client, SPECS[service], window, **options)


def rows(engine: Engine, table: Any, *where: Any) -> dict[Any, dict[str, Any]]:
    key = [c for c in table.primary_key.columns][-1].name
    with engine.connect() as connection:
        return {r[key]: dict(r) for r in connection.execute(select(table).where(*where)).mappings()}


def live(table: Any) -> Any:
    return table.c.deleted_at.is_(None)


def test_full_refresh_equals_the_simulators_and_a_second_run_changes_nothing(
    engine: Engine, sims: RunningSimulators
) -> None:
    universe = sims.universe
    results = {service: full_refresh(engine, sims, service) for service in SPECS}

    plex = rows(engine, plex_library_items, live(plex_library_items))
    assert len(plex) == len(universe.plex) == results["plex"].row_count
    movie = next(i for i in universe.plex.values() if isinstance(i, Movie))
    row = plex[str(movie.rating_key)]
    assert (row["server_id"], row["type"], row["title"], row["year"], row["tmdb_id"], row["imdb_id"]) == (
        universe.machine_id, "movie", movie.title, movie.year, movie.tmdb_id, movie.imdb_id
    )  # fmt: skip
    assert (row["added_at"], row["view_count"], row["file_path"]) == (
        _epoch(movie.plex_added), movie.view_count, movie_file(movie)
    )  # fmt: skip
    episode = next(e for e in universe.episodes.values() if e.rating_key is not None)
    row = plex[str(episode.rating_key)]
    assert (row["season_number"], row["episode_number"], row["grandparent_rating_key"]) == (
        episode.season, episode.number, str(episode.show.rating_key)
    )  # fmt: skip

    history = rows(engine, tautulli_watch_history)
    assert len(history) == len(universe.plays)
    play = universe.plays[len(universe.plays) // 2]
    row = history[play.id]
    assert (row["rating_key"], row["user_id"], row["started_at"], row["stopped_at"], row["percent_complete"]) == (
        str(play.rating_key), play.user.plex_id, _epoch(play.started), _epoch(play.stopped), play.percent
    )  # fmt: skip

    series = rows(engine, sonarr_series)
    assert len(series) == len(universe.shows)
    show = next(iter(universe.shows.values()))
    row = series[show.id]
    assert (row["tvdb_id"], row["title"], row["episode_count"], row["episode_file_count"]) == (
        show.tvdb_id, show.title, len(show.episodes), sum(e.file_id is not None for e in show.episodes)
    )  # fmt: skip

    movies = rows(engine, radarr_movies)
    assert len(movies) == len(universe.movies)
    for movie in list(universe.movies.values())[:20]:
        row = movies[movie.id]
        assert (row["tmdb_id"], row["title"], row["has_file"]) == (
            movie.tmdb_id,
            movie.title,
            movie.file_id is not None,
        )

    requests = rows(engine, overseerr_requests)
    assert len(requests) == len(universe.requests)
    for request in universe.requests.values():
        assert (requests[request.id]["status"], requests[request.id]["requested_by_id"]) == (
            request.status, request.user.id
        )  # fmt: skip

    tables = (plex_library_items, tautulli_watch_history, sonarr_series, radarr_movies, overseerr_requests)
    before = [rows(engine, t) for t in tables]
    for service in SPECS:
        again = full_refresh(engine, sims, service)
        assert (again.counts.inserted, again.counts.updated, again.deleted) == (0, 0, 0), service
    assert [rows(engine, t) for t in tables] == before


def test_incremental_sync_takes_exactly_the_changes_inside_the_window(
    engine: Engine, sims_ten_days_ago: RunningSimulators
) -> None:
    sims = sims_ten_days_ago
    universe, simulation = sims.universe, sims.simulation
    for service in ("plex", "sonarr", "radarr"):
        full_refresh(engine, sims, service)
    movies = [m for m in universe.movies.values() if m.rating_key is not None]
    shows = list(universe.shows.values())

    # Ten days ago: outside the window.
    simulation.update_movie(movies[0].id, title="Edited Long Ago")
    old_new = simulation.add_movie("Added Long Ago")
    simulation.delete_series(shows[0].id)
    old_delete = webhooks.sonarr_series_delete(shows[0]).body

    simulation.advance_clock(10 * DAY - 60)
    # Now: inside the window.
    simulation.update_movie(movies[1].id, title="Edited Today")
    new = simulation.add_movie("Added Today")
    removed = shows[1]
    simulation.delete_series(removed.id)
    simulation.delete_movie_file(movies[2].id)
    # The webhooks that arrived: one long ago, one today (only today's is in the window).
    with engine.begin() as connection:
        for payload, received in ((old_delete, datetime.now(UTC) - timedelta(days=10)),
                                  (webhooks.sonarr_series_delete(removed).body, datetime.now(UTC))):  # fmt: skip
            connection.execute(insert(webhook_log).values(
                id=uuid.uuid4(), source="sonarr", event_type="SeriesDelete", payload=payload,
                received_at=received, status="pending", processed=False))  # fmt: skip

    plex_result = incremental(engine, sims, "plex")
    with engine.connect() as connection:
        hints = ids_of(named_items(connection, Instance.parse("sonarr"), window=last_week()))
    assert hints == [removed.id]
    sonarr_result = incremental(engine, sims, "sonarr", hinted_ids=hints)
    radarr_result = incremental(engine, sims, "radarr")

    plex = rows(engine, plex_library_items)
    assert plex[str(movies[1].rating_key)]["title"] == "Edited Today"
    assert plex[str(new.rating_key)]["title"] == "Added Today"
    assert plex[str(movies[0].rating_key)]["title"] != "Edited Long Ago"  # outside: untouched
    assert str(old_new.rating_key) not in plex
    assert plex_result.counts.inserted == 1 and plex_result.deleted == 0

    series = rows(engine, sonarr_series)
    assert series[removed.id]["deleted_at"] is not None
    assert series[shows[0].id]["deleted_at"] is None  # its deletion happened outside the window
    assert sonarr_result.deleted == 1

    movies_table = rows(engine, radarr_movies)
    assert movies_table[new.id]["title"] == "Added Today"
    assert old_new.id not in movies_table
    assert movies_table[movies[2].id]["has_file"] is False  # the file deletion shows up
    assert radarr_result.files_deleted == 1
    assert radarr_result.deleted == 0

    # The next full refresh catches what the window could not, and only it removes rows.
    for service in ("plex", "sonarr", "radarr"):
        full_refresh(engine, sims, service)
    assert rows(engine, sonarr_series)[shows[0].id]["deleted_at"] is not None
    assert rows(engine, plex_library_items)[str(movies[0].rating_key)]["title"] == "Edited Long Ago"
    assert old_new.id in rows(engine, radarr_movies)


def test_incremental_never_soft_deletes_what_it_did_not_see(engine: Engine, sims: RunningSimulators) -> None:
    full_refresh(engine, sims, "radarr")
    movie = next(iter(sims.universe.movies.values()))
    sims.simulation.delete_movie(movie.id)
    result = incremental(engine, sims, "radarr")  # no webhook hint: the purged history says nothing
    assert result.deleted == 0 and rows(engine, radarr_movies)[movie.id]["deleted_at"] is None
    assert full_refresh(engine, sims, "radarr").deleted == 1
    assert rows(engine, radarr_movies)[movie.id]["deleted_at"] is not None


def test_a_webhook_hint_alone_never_deletes(engine: Engine, sims: RunningSimulators) -> None:
    full_refresh(engine, sims, "radarr")
    movie = next(iter(sims.universe.movies.values()))
    result = incremental(engine, sims, "radarr", hinted_ids=[movie.id])  # Radarr still has it
    assert result.deleted == 0 and rows(engine, radarr_movies)[movie.id]["deleted_at"] is None


def test_watch_stats_outside_the_window_survive_an_incremental_sync(engine: Engine, sims: RunningSimulators) -> None:
    full_refresh(engine, sims, "tautulli")
    recompute_watch_stats(engine)
    stats = rows(engine, watch_stats)
    old_key = str(sims.universe.plays[0].rating_key)
    assert stats[old_key]["plays"] >= 1

    played = sims.universe.plays[-1].item
    before = stats.get(str(played.rating_key), {"plays": 0})["plays"]
    sims.simulation.record_play(played.rating_key, percent=100)
    result = incremental(engine, sims, "tautulli")
    assert result.counts.inserted == 1
    recompute_watch_stats(engine)
    after = rows(engine, watch_stats)
    assert after[old_key] | {"computed_at": None} == stats[old_key] | {"computed_at": None}
    assert after[str(played.rating_key)]["plays"] == before + 1
    with engine.connect() as connection:
        total = connection.execute(select(tautulli_watch_history.c.row_id)).all()
    assert len(total) == len(sims.universe.plays)


def test_transient_errors_are_retried(engine: Engine, sims: RunningSimulators) -> None:
    sims.simulation.faults["radarr"].update(fail_next=[503, 502])
    result = full_refresh(engine, sims, "radarr")
    assert result.row_count == len(sims.universe.movies)


def test_a_persistent_failure_raises_and_leaves_the_tables_consistent(engine: Engine, sims: RunningSimulators) -> None:
    full_refresh(engine, sims, "sonarr")
    before = rows(engine, sonarr_series)
    sims.simulation.delete_series(next(iter(sims.universe.shows)))
    sims.simulation.faults["sonarr"].update(error_rate=1.0)
    from smartplex.clients import RetryPolicy

    with (
        sims.client("sonarr", retry=RetryPolicy(attempts=2, backoff=0.01)) as client,
        pytest.raises(ServiceError) as failure,
    ):
        run_sync(engine, client, SPECS["sonarr"], None)
    assert "503" in str(failure.value) or "sonarr" in str(failure.value).lower()
    assert rows(engine, sonarr_series) == before  # a failed full refresh deletes nothing


def test_a_failed_write_stops_the_read_ahead(engine: Engine, sims: RunningSimulators) -> None:
    """The fetching thread never outlives a sync that failed while writing."""
    from smartplex.sync.engine import _read_ahead

    def endless():  # type: ignore[no-untyped-def]
        n = 0
        while True:
            n += 1
            yield [n]

    reader = _read_ahead(endless())
    assert next(reader) == [1]
    assert not _no_reader_left()
    reader.close()  # what a write error does to the generator
    assert _no_reader_left()


class _DropsAfter(httpx.HTTPTransport):
    """Real HTTP to the simulator for the first ``requests`` requests, then a dropped connection."""

    def __init__(self, requests: int) -> None:
        super().__init__()
        self.left = requests

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.left -= 1
        if self.left < 0:
            raise httpx.ConnectError("connection dropped", request=request)
        return super().handle_request(request)


def _removed_plex_movie(engine: Engine, sims: RunningSimulators) -> str:
    """A full refresh, then a movie removed from Plex: the rating key a complete refresh must soft-delete."""
    full_refresh(engine, sims, "plex")
    movie = next(m for m in sims.universe.movies.values() if m.rating_key is not None)
    rating_key = str(movie.rating_key)
    sims.simulation.delete_movie(movie.id)
    assert rating_key not in {str(k) for k in sims.universe.plex}
    return rating_key


def _no_reader_left() -> bool:
    import threading

    return not any(t.name == "sync-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_a_failure_in_the_fetching_thread_fails_the_sync_and_deletes_nothing(
    engine: Engine, sims: RunningSimulators
) -> None:
    removed = _removed_plex_movie(engine, sims)
    sims.simulation.add_movie("Arrived before the failure")
    from smartplex.clients import RetryPolicy

    # /identity and /library/sections, then three pages of 20: batches of 10 are written before it fails.
    transport = _DropsAfter(5)
    with (
        sims.client("plex", page_size=20, transport=transport, retry=RetryPolicy(attempts=1)) as client,
        pytest.raises(ServiceError, match="connection dropped"),
    ):
        run_sync(engine, client, SPECS["plex"], None, batch_size=10)
    assert _no_reader_left()
    plex = rows(engine, plex_library_items)
    assert plex[removed]["deleted_at"] is None  # the listing was not complete: nothing is soft-deleted
    assert all(r["deleted_at"] is None for r in plex.values())

    result = full_refresh(engine, sims, "plex")  # the next complete run repairs the rest
    assert result.deleted == 1
    assert rows(engine, plex_library_items)[removed]["deleted_at"] is not None
    assert result.row_count == len(sims.universe.plex)
    assert "Arrived before the failure" in {
        r["title"] for r in rows(engine, plex_library_items, live(plex_library_items)).values()
    }


def test_a_failure_building_rows_fails_the_sync_with_whole_batches_written(
    engine: Engine, sims: RunningSimulators
) -> None:
    plex_spec = SPECS["plex"]
    built = 0

    def fails_at_25(item: Any, scope: dict[str, Any]) -> dict[str, Any]:
        nonlocal built
        built += 1
        if built == 25:
            raise ValueError("item 25 cannot be stored")
        return plex_spec.to_row(item, scope)

    with sims.client("plex", page_size=20) as client, pytest.raises(ValueError, match="item 25"):
        run_sync(engine, client, dataclasses.replace(plex_spec, to_row=fails_at_25), None, batch_size=10)
    assert _no_reader_left()
    assert len(rows(engine, plex_library_items, live(plex_library_items))) == 20  # two whole batches

    removed = _removed_plex_movie(engine, sims)
    built = 0
    with sims.client("plex", page_size=20) as client, pytest.raises(ValueError, match="item 25"):
        run_sync(engine, client, dataclasses.replace(plex_spec, to_row=fails_at_25), None, batch_size=10)
    assert rows(engine, plex_library_items)[removed]["deleted_at"] is None
    assert full_refresh(engine, sims, "plex").deleted == 1


def test_a_failed_write_stops_the_fetching_and_the_rows_threads(engine: Engine, sims: RunningSimulators) -> None:
    """The database refuses the third batch (a title is required): the sync fails with what the
    database said, the batches before it stay written, and neither thread behind the writer lives on."""
    from sqlalchemy.exc import IntegrityError

    plex_spec = SPECS["plex"]
    built = 0

    def untitled_at_25(item: Any, scope: dict[str, Any]) -> dict[str, Any]:
        nonlocal built
        built += 1
        return {**plex_spec.to_row(item, scope), **({"title": None} if built == 25 else {})}

    with sims.client("plex", page_size=20) as client, pytest.raises(IntegrityError):
        run_sync(engine, client, dataclasses.replace(plex_spec, to_row=untitled_at_25), None, batch_size=10)
    assert _no_reader_left()
    assert len(rows(engine, plex_library_items, live(plex_library_items))) == 20
    assert built < len(sims.universe.plex)  # the reading stopped with the writer


def test_the_counts_are_the_same_whichever_the_batch_size(engine: Engine, sims: RunningSimulators) -> None:
    with sims.client("plex", page_size=7) as client:
        small = run_sync(engine, client, SPECS["plex"], None, batch_size=3)
    assert (small.fetched, small.counts.inserted, small.row_count) == (len(sims.universe.plex),) * 3
    with sims.client("plex") as client:
        again = run_sync(engine, client, SPECS["plex"], None, batch_size=5000)
    assert (again.fetched, again.counts.unchanged, again.deleted) == (
        len(sims.universe.plex),
        len(sims.universe.plex),
        0,
    )


class _WritesDuring(httpx.HTTPTransport):
    """Real HTTP to the simulator; on request ``at``, ``write`` runs first, as another writer would."""

    def __init__(self, at: int, write: Any) -> None:
        super().__init__()
        self.left, self.write = at, write

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.left -= 1
        if self.left == 0:
            self.write()
        return super().handle_request(request)


@pytest.mark.parametrize("batch_size", [10, 100_000], ids=["batches", "one-batch"])
def test_a_full_refresh_deletes_only_what_was_live_when_it_began(
    engine: Engine, sims: RunningSimulators, batch_size: int
) -> None:
    """A row another writer adds while the refresh reads was never the refresh's to judge, even when
    the whole listing is read before the first batch is written (one batch)."""
    removed = _removed_plex_movie(engine, sims)
    server_id = rows(engine, plex_library_items)[removed]["server_id"]

    def another_writer() -> None:
        with engine.begin() as connection:
            connection.execute(
                insert(plex_library_items).values(
                    instance="default", server_id=server_id, rating_key="arrived-mid-refresh", type="movie",
                    title="Written by another run", synced_at=datetime.now(UTC),
                )
            )  # fmt: skip

    pages = len(sims.universe.plex) // 20
    assert pages >= 8  # the write lands well after the refresh read what was live
    with sims.client("plex", page_size=20, transport=_WritesDuring(pages, another_writer)) as client:
        result = run_sync(engine, client, SPECS["plex"], None, batch_size=batch_size)
    plex = rows(engine, plex_library_items)
    assert result.deleted == 1 and plex[removed]["deleted_at"] is not None
    assert plex["arrived-mid-refresh"]["deleted_at"] is None
    assert full_refresh(engine, sims, "plex").deleted == 1  # the next refresh, which saw it live, removes it


def test_a_vanished_library_is_soft_deleted_whole(
    engine: Engine, sims: RunningSimulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartplex.sync import engine as sync_engine

    full_refresh(engine, sims, "radarr")
    monkeypatch.setattr(sync_engine, "_IDS_PER_STATEMENT", 7)  # many statements from a small library
    for movie_id in list(sims.universe.movies):
        sims.simulation.delete_movie(movie_id)
    result = full_refresh(engine, sims, "radarr")
    assert result.deleted == len(rows(engine, radarr_movies)) > 7 * 3
    assert result.row_count == 0
