"""Migrations: idempotent, reversible, matching the metadata, and the committed plain SQL never drifts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    UniqueConstraint,
    column,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import table as table_clause
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import TableClause

from smartplex import migrate
from smartplex.column_types import utcnow
from smartplex.db import make_engine
from smartplex.schema import (
    SCHEDULE_SEED,
    metadata,
    overseerr_requests,
    plex_libraries,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    sync_schedule,
    tautulli_watch_history,
    webhook_log,
    webhook_rollup_stale,
)


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as connection:
        assert connection.execute(select(sync_schedule.c.service)).scalars().all().__len__() == 5


def test_downgrade_removes_everything_and_upgrade_restores_it(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert not {"webhook_log", "sync_schedule"} & set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert {"webhook_log", "sync_schedule"} <= set(inspect(engine).get_table_names())


def _key_diffs(connection: Connection) -> list[str]:
    """Primary keys and unique constraints that differ from the metadata's (compare_metadata skips keys)."""
    inspector = inspect(connection)
    diffs = []
    for table in metadata.sorted_tables:
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        if pk != list(table.primary_key.columns.keys()):
            diffs.append(f"{table.name}: primary key {pk}, expected {list(table.primary_key.columns.keys())}")
        unique = {(u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table.name)}
        expected = {(c.name, tuple(c.columns.keys())) for c in table.constraints if isinstance(c, UniqueConstraint)}
        if unique != expected:
            diffs.append(f"{table.name}: unique {sorted(unique)}, expected {sorted(expected)}")
    return diffs


def test_migrated_database_matches_the_metadata(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
        assert _key_diffs(connection) == []
    assert diffs == []


def test_seed_rows(engine: Engine) -> None:
    with engine.connect() as connection:
        rows = connection.execute(
            select(sync_schedule.c.service, sync_schedule.c.enabled, sync_schedule.c.interval_hours)
        ).all()
    assert sorted(rows) == sorted(SCHEDULE_SEED)


def test_updated_at_stays_current_on_every_update(engine: Engine) -> None:
    with engine.begin() as connection:
        before = connection.execute(
            select(sync_schedule.c.updated_at).where(sync_schedule.c.service == "sonarr")
        ).scalar_one()
    for change in ({"enabled": True}, {"interval_hours": 48}, {"last_status": "success"}):
        time.sleep(0.01)
        with engine.begin() as connection:
            connection.execute(update(sync_schedule).where(sync_schedule.c.service == "sonarr").values(**change))
            after = connection.execute(
                select(sync_schedule.c.updated_at).where(sync_schedule.c.service == "sonarr")
            ).scalar_one()
        assert after > before, change
        before = after
    assert abs((utcnow() - after).total_seconds()) < 60


@pytest.mark.parametrize("interval", [0, 169, -1])
def test_interval_check(engine: Engine, interval: int) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == "plex").values(interval_hours=interval)
        )


@pytest.mark.parametrize("column", ["source"])
def test_unknown_source_is_refused(engine: Engine, column: str) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(webhook_log).values(source="emby", event_type="x", payload={}))


def test_service_is_unique_per_instance(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(sync_schedule).values(service="plex"))  # the seed row is the default instance's
    with engine.begin() as connection:
        connection.execute(insert(sync_schedule).values(service="plex", instance="4k"))
    for instance in ("default", "4k"):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(sync_schedule).values(service="plex", instance=instance))


def test_committed_sql_matches_alembic() -> None:
    for revision, _, _ in migrate.revisions():
        path = migrate.sql_file(revision)
        assert path.exists(), f"{path} missing: run 'smartplex db sql --write'"
        assert path.read_text() == migrate.render_sql(revision), f"{path} drifted: run 'smartplex db sql --write'"


@pytest.mark.postgres
def test_plain_sql_runs_twice_and_equals_the_alembic_schema(postgres_server: str) -> None:
    from tests.conftest import _postgres_schema_url

    for url in _postgres_schema_url(postgres_server):
        engine = make_engine(url)
        sql = "".join(migrate.sql_file(rev).read_text() for rev, _, _ in migrate.revisions())
        for _ in range(2):
            with engine.connect() as connection:
                connection.exec_driver_sql(sql)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
            assert connection.execute(text("SELECT count(*) FROM sync_schedule")).scalar_one() == 5
            assert _key_diffs(connection) == []
        migrate.upgrade(engine)  # Alembic agrees the hand-applied schema is current
        engine.dispose()


ORIGINAL_005 = """
CREATE TABLE webhook_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    source TEXT NOT NULL CHECK (source IN ('plex', 'tautulli', 'sonarr', 'radarr', 'overseerr')),
    event_type TEXT NOT NULL,
    payload JSONB NOT NULL,
    received_at TIMESTAMPTZ DEFAULT NOW(),
    processed BOOLEAN DEFAULT FALSE,
    processed_at TIMESTAMPTZ,
    error_message TEXT
);
CREATE TABLE sync_schedule (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    service TEXT NOT NULL UNIQUE CHECK (service IN ('plex', 'tautulli', 'sonarr', 'radarr', 'overseerr')),
    enabled BOOLEAN DEFAULT TRUE,
    interval_hours INTEGER NOT NULL DEFAULT 6 CHECK (interval_hours >= 1 AND interval_hours <= 168),
    last_run_at TIMESTAMPTZ, next_run_at TIMESTAMPTZ, run_count INTEGER DEFAULT 0,
    last_status TEXT, last_error TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW()
);
INSERT INTO sync_schedule (service, enabled, interval_hours) VALUES ('plex', true, 12);
INSERT INTO webhook_log (source, event_type, payload, processed, error_message) VALUES
    ('sonarr', 'Download', '{}', false, NULL), ('sonarr', 'Download', '{}', true, NULL),
    ('radarr', 'Download', '{}', true, 'boom');
"""


@pytest.mark.postgres
def test_a_database_with_the_original_tables_is_adopted(postgres_server: str) -> None:
    from tests.conftest import _postgres_schema_url

    for url in _postgres_schema_url(postgres_server):
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(ORIGINAL_005)
        migrate.upgrade(engine)
        with engine.connect() as connection:
            statuses = sorted(connection.execute(text("SELECT status FROM webhook_log")).scalars())
            services = connection.execute(text("SELECT count(*) FROM sync_schedule")).scalar_one()
        assert statuses == ["failed", "pending", "processed"]
        assert services == 5  # the missing seed rows were added, plex's row kept
        migrate.upgrade(engine)
        with engine.begin() as connection:  # the original inline UNIQUE (service) went too
            connection.execute(insert(sync_schedule).values(service="plex", instance="4k"))
        engine.dispose()


# --- 011: service instances ---------------------------------------------------------------------

WHEN = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
#: A row of each synced table, in columns every revision since 006 has.
SYNCED_ROWS: dict[Table, dict[str, Any]] = {
    plex_libraries: {"server_id": "srv", "section_id": "1", "title": "Movies", "type": "movie"},
    plex_library_items: {"server_id": "srv", "rating_key": "100", "type": "movie", "title": "Heat", "year": 1995},
    tautulli_watch_history: {"row_id": 7, "rating_key": "100", "started_at": WHEN, "watched": True},
    sonarr_series: {"id": 42, "title": "The Wire", "tvdb_id": 79126},
    radarr_movies: {"id": 42, "title": "Heat", "tmdb_id": 949, "has_file": True},
    overseerr_requests: {"id": 42, "status": 2, "tmdb_id": 949},
}


def _columns(table: Table, names: Iterable[str]) -> TableClause:
    """Some of the table's columns, typed: the whole table would name columns an older revision lacks (and
    ask for the key's server default on insert)."""
    return table_clause(table.name, *(column(name, table.c[name].type) for name in names))


def _insert_synced_rows(connection: Connection, **instance: str) -> None:
    for table, row in SYNCED_ROWS.items():
        values = {**row, "synced_at": WHEN, **instance}
        connection.execute(insert(_columns(table, values)).values(values))


def _rows(connection: Connection, table: Table) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in connection.execute(select(table))]


@pytest.mark.parametrize("start", ["007", "010"])
def test_existing_rows_become_the_default_instance(database_url: str, start: str) -> None:
    engine = make_engine(database_url, timeout=5)
    migrate.upgrade(engine, start)
    with engine.begin() as connection:
        _insert_synced_rows(connection)
        connection.execute(insert(webhook_log).values(source="sonarr", event_type="Download", payload={"a": 1}))
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == "sonarr").values(interval_hours=48))
    migrate.upgrade(engine)

    with engine.begin() as connection:
        for table, row in SYNCED_ROWS.items():
            (kept,) = _rows(connection, table)
            expected = {**row, "synced_at": WHEN, "deleted_at": None, "instance": "default"}
            assert {k: kept[k] for k in expected} == expected, table.name
        (hook,) = _rows(connection, webhook_log)
        assert (hook["source"], hook["payload"], hook["instance"]) == ("sonarr", {"a": 1}, "default")
        schedules = {r["service"]: r for r in _rows(connection, sync_schedule)}
        assert {r["instance"] for r in schedules.values()} == {"default"}
        assert schedules["sonarr"]["interval_hours"] == 48

        # The same ids beside them, for another instance.
        _insert_synced_rows(connection, instance="4k")
        connection.execute(insert(sync_schedule).values(service="sonarr", instance="4k"))
        for table in SYNCED_ROWS:
            assert sorted(r["instance"] for r in _rows(connection, table)) == ["4k", "default"]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(sonarr_series).values(**SYNCED_ROWS[sonarr_series], synced_at=WHEN))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(sync_schedule).values(service="sonarr", instance="default"))
    with engine.connect() as connection:
        assert _key_diffs(connection) == []
    engine.dispose()


def _schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys, constraints and indexes, and the definitions of indexes and triggers."""
    inspector = inspect(engine)
    found: dict[str, Any] = {}
    for name in inspector.get_table_names():
        found[name] = (
            [(c["name"], str(c["type"]), c["nullable"], c["default"]) for c in inspector.get_columns(name)],
            inspector.get_pk_constraint(name),
            sorted((u["name"], u["column_names"]) for u in inspector.get_unique_constraints(name)),
            sorted((c["name"], c["sqltext"]) for c in inspector.get_check_constraints(name)),
            sorted((i["name"], i["column_names"], bool(i["unique"])) for i in inspector.get_indexes(name)),
        )
    if engine.dialect.name == "sqlite":
        definitions = "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
    else:
        definitions = (
            "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "UNION ALL SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = current_schema()::regnamespace)"
        )
    with engine.connect() as connection:
        found["definitions"] = sorted(tuple(r) for r in connection.execute(text(definitions)))
    return found


def test_downgrade_to_010_keeps_the_default_instance(database_url: str) -> None:
    engine = make_engine(database_url, timeout=5)
    migrate.upgrade(engine, "010")
    before = _schema(engine)
    assert any(r[0] == "trigger" and r[1] == "webhook_rollup_on_insert" for r in before["definitions"])
    migrate.upgrade(engine)
    with engine.begin() as connection:
        for instance in ("default", "4k"):
            _insert_synced_rows(connection, instance=instance)
            connection.execute(
                insert(webhook_log).values(
                    source="sonarr", event_type="Download", payload={}, received_at=WHEN, instance=instance
                )
            )
        connection.execute(insert(sync_schedule).values(service="sonarr", instance="4k"))

    migrate.downgrade(engine, "010")
    assert migrate.current_revision(engine) == "010"
    assert _schema(engine) == before  # columns, keys, indexes and triggers as 010 left them
    with engine.connect() as connection:
        for table, row in SYNCED_ROWS.items():  # the default instance's row, whole; the 4k one gone
            expected = {**row, "synced_at": WHEN}
            assert connection.execute(select(_columns(table, expected))).mappings().all() == [expected], table.name
        hooks = connection.execute(text("SELECT status FROM webhook_log ORDER BY status")).scalars().all()
        assert hooks == ["ignored", "pending"]  # the 4k row could not be handled any more: ignored
        assert connection.execute(text("SELECT count(*) FROM sync_schedule")).scalar_one() == 5
    with pytest.raises(IntegrityError), engine.begin() as connection:  # the old unique constraint is back
        connection.execute(insert(sync_schedule).values(service="sonarr"))

    # 010's triggers still mark the hour of a new webhook stale.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM webhook_rollup_stale"))
        # Only the given columns and id are written, all of which 010 has.
        connection.execute(insert(webhook_log).values(source="radarr", event_type="Grab", payload={}, received_at=WHEN))
        hours = connection.execute(select(webhook_rollup_stale.c.hour)).scalars().all()
    assert hours == [int(WHEN.timestamp()) // 3600]

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert _key_diffs(connection) == []
    engine.dispose()
