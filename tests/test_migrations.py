"""Migrations: idempotent, reversible, matching the metadata, and the committed plain SQL never drifts."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from smartplex import migrate
from smartplex.column_types import utcnow
from smartplex.db import make_engine
from smartplex.schema import SCHEDULE_SEED, metadata, sync_schedule, webhook_log


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


def test_migrated_database_matches_the_metadata(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
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


def test_service_is_unique(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(sync_schedule).values(service="plex"))


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
        engine.dispose()
