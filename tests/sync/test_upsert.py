"""The batched upsert on both engines: exact values in, counts out, and nothing written twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from smartplex.clients import SonarrSeries, TautulliPlay
from smartplex.schema import plex_library_items, radarr_movies
from smartplex.sync import SPECS
from smartplex.sync.upsert import prepare_rows, upsert, write_rows

PLEX_KEY = ("server_id", "rating_key")

AWKWARD_TITLES = [
    "O'Brien; DROP TABLE radarr_movies; --",
    'A "quoted" \\ back\\slash',
    "tab\there, new\nline, cr\rend",
    "Amélie — 千と千尋の神隠し 🎬",
    "",
    "x" * 10_000,
]


def _movie(movie_id: int, title: str, now: datetime) -> dict:
    return {
        "id": movie_id, "tmdb_id": 10_000 + movie_id, "imdb_id": None if movie_id % 2 else f"tt{movie_id:07d}",
        "title": title, "year": 1999, "path": f"/movies/{movie_id}", "monitored": bool(movie_id % 3),
        "status": "released", "added_at": now - timedelta(days=movie_id, microseconds=movie_id),
        "has_file": True, "size_on_disk": 2**40 + movie_id, "synced_at": now, "deleted_at": None,
    }  # fmt: skip


def _stored(engine: Engine) -> dict[int, dict]:
    with engine.connect() as connection:
        return {r["id"]: dict(r) for r in connection.execute(select(radarr_movies)).mappings()}


def test_values_round_trip_exactly_and_counts_are_right(engine: Engine) -> None:
    now = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    rows = [_movie(n, title, now) for n, title in enumerate(AWKWARD_TITLES, start=1)]
    with engine.begin() as connection:
        counts = upsert(connection, radarr_movies, ("id",), rows)
    assert (counts.inserted, counts.updated, counts.unchanged) == (len(rows), 0, 0)
    stored = _stored(engine)
    for row in rows:
        assert stored[row["id"]] == {**row, "instance": "default"}  # rows that name no instance: the default's

    changed = [{**rows[0], "title": "Renamed", "synced_at": now + timedelta(hours=1)}, *rows[1:]]
    changed.append(changed[1])  # a page that repeats an item: counted once
    with engine.begin() as connection:
        counts = upsert(connection, radarr_movies, ("id",), changed)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, len(rows) - 1)
    stored = _stored(engine)
    assert stored[1]["title"] == "Renamed" and stored[1]["synced_at"] == now + timedelta(hours=1)
    assert stored[2]["synced_at"] == now  # an unchanged row keeps its synced_at


def test_a_soft_deleted_row_that_comes_back_is_restored(engine: Engine) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    row = _movie(1, "Back again", now)
    with engine.begin() as connection:
        upsert(connection, radarr_movies, ("id",), [{**row, "deleted_at": now}])
        counts = upsert(connection, radarr_movies, ("id",), [row])
    assert counts.updated == 1
    assert _stored(engine)[1]["deleted_at"] is None


def test_shared_values_are_written_once_per_batch_into_every_row(engine: Engine) -> None:
    """A sync's instance and ``synced_at`` travel beside the rows; each row still gets them, and a key
    column among them (the instance) still tells rows apart."""
    now = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [{k: v for k, v in _movie(n, "t", now).items() if k not in ("synced_at", "deleted_at")} for n in (1, 2, 2)]
    key = ("instance", "id")
    with engine.begin() as connection:
        for instance in ("default", "4k"):
            shared = {"instance": instance, "synced_at": now, "deleted_at": None}
            prepared = prepare_rows(connection.dialect.name, radarr_movies, key, rows, shared)
            assert sorted(prepared.keys) == [1, 2]  # the keys of the rows, the repeated one once
            counts = write_rows(connection, radarr_movies, key, prepared)
            assert (counts.inserted, counts.updated, counts.unchanged) == (2, 0, 0)
    with engine.connect() as connection:
        stored = connection.execute(select(radarr_movies.c.instance, radarr_movies.c.id, radarr_movies.c.synced_at))
        assert sorted(stored) == [("4k", 1, now), ("4k", 2, now), ("default", 1, now), ("default", 2, now)]
    with pytest.raises(ValueError, match="both per row and shared"):
        prepare_rows("postgresql", radarr_movies, key, [{**rows[0], "instance": "4k"}], {"instance": "4k"})


def test_an_offset_is_kept_as_the_same_instant_and_a_naive_datetime_is_refused(engine: Engine) -> None:
    berlin = timezone(timedelta(hours=2))
    local = datetime(2026, 5, 1, 14, 0, tzinfo=berlin)
    with engine.begin() as connection:
        upsert(connection, radarr_movies, ("id",), [{**_movie(1, "t", local), "added_at": local}])
    assert _stored(engine)[1]["added_at"] == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    naive = {**_movie(2, "t", local), "added_at": datetime(2026, 5, 1, 12, 0)}
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as connection:
        upsert(connection, radarr_movies, ("id",), [naive])
    assert 2 not in _stored(engine)


def test_a_composite_key_tells_rows_apart(engine: Engine) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [
        {"server_id": server, "rating_key": key, "section_id": "1", "guid": f"plex://movie/{key}", "type": "movie",
         "title": key, "view_count": 0, "synced_at": now, "deleted_at": None}
        for server, key in (("a", "1"), ("a", "2"), ("b", "1"))
    ]  # fmt: skip
    with engine.begin() as connection:
        counts = upsert(connection, plex_library_items, PLEX_KEY, rows)
        assert counts.inserted == 3
        stored = connection.execute(select(plex_library_items.c.server_id, plex_library_items.c.rating_key))
        assert sorted(stored) == [("a", "1"), ("a", "2"), ("b", "1")]


def test_counts_the_services_write_as_floats_or_strings_become_integers() -> None:
    play = TautulliPlay.from_api(
        {"id": 7, "rating_key": "42", "user_id": 1, "date": 1_700_000_000, "play_duration": 1500.0,
         "percent_complete": 50, "watched_status": 0.5}
    )  # fmt: skip
    row = SPECS["tautulli"].to_row(play, {})
    assert row["duration_seconds"] == 1500 and isinstance(row["duration_seconds"], int)
    series = SonarrSeries.from_api(
        {"id": 3, "title": "S", "statistics": {"episodeCount": "10", "episodeFileCount": 9.0, "sizeOnDisk": 5}}
    )
    row = SPECS["sonarr"].to_row(series, {})
    assert (row["episode_count"], row["episode_file_count"]) == (10, 9)
