"""Several instances of one service kind (Sonarr and Sonarr 4K): the instance is part of every key.

``webhook_log.instance`` says which instance sent a webhook; ``sync_schedule`` has a row per
(service, instance); every synced table's primary key gains ``instance``, so the same Sonarr series id
in two instances is two rows, and so does ``watch_stats`` (per Tautulli instance). ``media_catalog_copies`` lists every copy the catalog found of an entry.
Existing rows are the default instance's (``default``), which is the one a kind's variables configure.

On SQLite, webhook_log gets its column with ALTER TABLE ADD COLUMN, so the table keeps 010's triggers;
the tables whose keys or constraints change are rebuilt (batch mode), and sync_schedule's trigger (005)
made again. On PostgreSQL every statement is guarded, so the printed SQL can run twice.

Downgrading keeps the default instance's rows and deletes the other instances' schedule and synced
rows (the old keys cannot hold them); their webhooks stay, those still waiting marked ``ignored``.

Revision ID: 011
Revises: 010
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "011"
down_revision = "010"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
DEFAULT = "default"
#: Each table keyed by instance and its key before this migration; ``instance`` comes first in the new one.
KEYED_BY_INSTANCE = {
    "plex_libraries": ("server_id", "section_id"),
    "plex_library_items": ("server_id", "rating_key"),
    "tautulli_watch_history": ("row_id",),
    "sonarr_series": ("id",),
    "radarr_movies": ("id",),
    "overseerr_requests": ("id",),
    # Derived, per Tautulli instance: each one's ratingKeys are those of the Plex server it watches.
    "watch_stats": ("rating_key",),
}
OLD_UNIQUE = "uq_sync_schedule_service"
NEW_UNIQUE = "uq_sync_schedule_service_instance"


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _instance_column() -> sa.Column:
    return sa.Column("instance", sa.Text(), nullable=False, server_default=sa.text(f"'{DEFAULT}'"))


def _migration(rev: str) -> ModuleType:
    """Another migration's module (its file name starts with a digit, so ``import`` cannot load it)."""
    path = next(Path(__file__).parent.glob(f"{rev}_*.py"))
    spec = importlib.util.spec_from_file_location(f"_smartplex_migration_{rev}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if _is_postgres():  # online, and the plain SQL of ``smartplex db sql``
        for table in ("webhook_log", "sync_schedule", *KEYED_BY_INSTANCE):
            op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS instance TEXT NOT NULL DEFAULT '{DEFAULT}'")
        _postgres_schedule_unique()
        for table, key in KEYED_BY_INSTANCE.items():
            _postgres_primary_key(table, ("instance", *key))
    else:
        _sqlite_upgrade()
    op.create_table(
        "media_catalog_copies",
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("rating_key", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("server_id", "rating_key", "service", "instance"),
        if_not_exists=True,
    )


def _postgres_schedule_unique() -> None:
    # Any unique constraint on service alone goes: 005's, or the inline UNIQUE of a database adopted
    # from the original tables (named sync_schedule_service_key).
    op.execute(
        f"""
        DO $$
        DECLARE
            old name;
        BEGIN
            FOR old IN
                SELECT c.conname FROM pg_constraint AS c
                JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.conrelid = 'sync_schedule'::regclass AND c.contype = 'u'
                    AND cardinality(c.conkey) = 1 AND a.attname = 'service'
            LOOP
                EXECUTE 'ALTER TABLE sync_schedule DROP CONSTRAINT ' || quote_ident(old);
            END LOOP;
            IF NOT EXISTS (SELECT 1 FROM pg_constraint
                           WHERE conrelid = 'sync_schedule'::regclass AND conname = '{NEW_UNIQUE}') THEN
                ALTER TABLE sync_schedule ADD CONSTRAINT {NEW_UNIQUE} UNIQUE (service, instance);
            END IF;
        END
        $$
        """
    )


def _postgres_primary_key(table: str, columns: tuple[str, ...]) -> None:
    """Make ``columns`` the table's primary key, whatever its current one is called; none if it already is."""
    wanted = ", ".join(f"'{c}'" for c in columns)
    op.execute(
        f"""
        DO $$
        DECLARE
            pk_name name;
            pk_columns text[];
        BEGIN
            SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk_name, pk_columns
            FROM pg_constraint AS c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = '{table}'::regclass AND c.contype = 'p'
            GROUP BY c.conname;
            IF pk_columns IS DISTINCT FROM ARRAY[{wanted}] THEN
                IF pk_name IS NOT NULL THEN
                    EXECUTE 'ALTER TABLE {table} DROP CONSTRAINT ' || quote_ident(pk_name);
                END IF;
                ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({", ".join(columns)});
            END IF;
        END
        $$
        """
    )


def _sqlite_upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "instance" not in {c["name"] for c in inspector.get_columns("webhook_log")}:
        # In place: a rebuild would drop 010's triggers.
        op.add_column("webhook_log", _instance_column())

    if "instance" not in {c["name"] for c in inspector.get_columns("sync_schedule")}:
        with op.batch_alter_table("sync_schedule", recreate="always") as batch:
            batch.add_column(_instance_column())
            if OLD_UNIQUE in {u["name"] for u in inspector.get_unique_constraints("sync_schedule")}:
                batch.drop_constraint(OLD_UNIQUE, type_="unique")
            batch.create_unique_constraint(NEW_UNIQUE, ["service", "instance"])
        _sqlite_schedule_trigger()  # dropped with the old table

    for table, key in KEYED_BY_INSTANCE.items():
        if "instance" in inspector.get_pk_constraint(table)["constrained_columns"]:
            continue
        # Batch mode can only replace a named primary key; SQLite's are unnamed, so the reflected one
        # is named first. The new one is named as on PostgreSQL.
        name = f"{table}_pkey"
        with op.batch_alter_table(
            table, recreate="always", reflect_args=[sa.PrimaryKeyConstraint(*key, name=name)]
        ) as batch:
            batch.drop_constraint(name, type_="primary")
            if "instance" not in {c["name"] for c in inspector.get_columns(table)}:
                batch.add_column(_instance_column())
            batch.create_primary_key(name, ["instance", *key])


def _sqlite_schedule_trigger() -> None:
    op.execute(_migration("005").SQLITE_TOUCH_TRIGGER)


def downgrade() -> None:
    op.drop_table("media_catalog_copies", if_exists=True)
    for table in ("sync_schedule", *KEYED_BY_INSTANCE):
        op.execute(f"DELETE FROM {table} WHERE instance <> '{DEFAULT}'")
    # The old code would take the other instances' waiting webhooks for the default instance's.
    log = sa.table(
        "webhook_log",
        sa.column("instance"),
        sa.column("status"),
        sa.column("processed", sa.Boolean()),
        sa.column("processed_at", TIMESTAMPTZ),
        sa.column("error_message"),
    )
    op.execute(
        log.update()
        .where(log.c.instance != DEFAULT, log.c.status.in_(("pending", "dispatched")))
        .values(
            status="ignored",
            processed=True,
            processed_at=datetime.now(UTC),
            error_message="not handled: its instance was removed by a schema downgrade",
        )
    )

    if _is_postgres():
        for table, key in KEYED_BY_INSTANCE.items():
            _postgres_primary_key(table, key)
            op.drop_column(table, "instance")
        op.drop_constraint(NEW_UNIQUE, "sync_schedule", type_="unique")
        op.create_unique_constraint(OLD_UNIQUE, "sync_schedule", ["service"])
        op.drop_column("sync_schedule", "instance")
        op.drop_column("webhook_log", "instance")
        return

    for table, key in KEYED_BY_INSTANCE.items():
        # Reflected under an unnamed key, so that the rebuilt table's key is unnamed again, as 006 made it.
        with op.batch_alter_table(
            table, recreate="always", reflect_args=[sa.PrimaryKeyConstraint("instance", *key)]
        ) as batch:
            batch.drop_column("instance")
    with op.batch_alter_table("sync_schedule", recreate="always") as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        batch.create_unique_constraint(OLD_UNIQUE, ["service"])
        batch.drop_column("instance")
    _sqlite_schedule_trigger()
    # Rebuilding webhook_log drops 010's triggers and turns the descending index ascending (as in 008):
    # both are made again as 010 and 005 made them.
    with op.batch_alter_table("webhook_log", recreate="always") as batch:
        batch.drop_column("instance")
    op.drop_index("ix_webhook_log_received_at", "webhook_log")
    op.create_index("ix_webhook_log_received_at", "webhook_log", [sa.text("received_at DESC")])
    _migration("010")._sqlite_triggers()
