"""The batched upsert on both engines: exact values in, counts out, and nothing written twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Engine, MetaData, Table, select

from smartplex.schema import radarr_movies
from smartplex.sync.upsert import upsert

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
        assert stored[row["id"]] == row

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


def test_keys_into_records_every_key_once(engine: Engine) -> None:
    seen = Table("seen_movies", MetaData(), Column("id", radarr_movies.c.id.type, primary_key=True))
    seen.create(engine)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with engine.begin() as connection:
        upsert(connection, radarr_movies, ("id",), [_movie(n, "t", now) for n in (1, 2)], keys_into=seen)
        upsert(connection, radarr_movies, ("id",), [_movie(n, "t", now) for n in (2, 3)], keys_into=seen)
        assert sorted(connection.execute(select(seen.c.id)).scalars()) == [1, 2, 3]
