"""Rollups of webhook_log: per source, hour and day, the counts by status and a histogram per stage.

``GET /api/webhooks/status`` and the admin page answer a window of up to 30 days from these rows
instead of scanning and sorting every webhook in it (``smartplex.webhook_rollups``). Triggers mark the
hour of every row inserted, changed or deleted as stale, whatever wrote it (the API, the sensor, a
sync run, the retention job, an operator in psql); the next reader rebuilds stale hours and scans any
it did not rebuild, so the figures are always those of a full scan. The existing rows' hours start
out stale.

Revision ID: 010
Revises: 009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "010"
down_revision = "009"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: The Unix hour a row was received in, as ``smartplex.sql_time.epoch_bucket`` computes it.
PG_HOUR = "CAST(FLOOR(EXTRACT(EPOCH FROM received_at) / 3600) AS BIGINT)"
SQLITE_HOUR = "(CAST(strftime('%s', {row}.received_at) AS INTEGER) / 3600)"
EVENTS = ("insert", "update", "delete")


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "webhook_rollup",
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("figures", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("span", "slot", "source"),
        if_not_exists=True,
    )
    op.create_table(
        "webhook_rollup_stale",
        sa.Column("hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("writer", sa.BigInteger(), autoincrement=False, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("hour", "writer"),
        if_not_exists=True,
    )
    if _is_postgres():
        _postgres_triggers()
        op.execute(
            f"INSERT INTO webhook_rollup_stale (hour) SELECT DISTINCT {PG_HOUR} FROM webhook_log ON CONFLICT DO NOTHING"
        )
    else:
        _sqlite_triggers()
        op.execute(
            "INSERT OR IGNORE INTO webhook_rollup_stale (hour) "
            f"SELECT DISTINCT {SQLITE_HOUR.format(row='webhook_log')} FROM webhook_log"
        )


def _postgres_triggers() -> None:
    # Statement-level, over the transition tables: one insert per statement, however many rows it
    # touched (the API stores a whole group commit in one statement, a sync run settles its rows in one).
    # Each transaction leaves marks of its own (``writer``: its id), so it never waits on another's
    # mark, and a rebuild that cannot see it yet cannot take its mark away either.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION webhook_rollup_mark_stale() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT DISTINCT {PG_HOUR}, txid_current() FROM new_rows ON CONFLICT DO NOTHING;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT DISTINCT {PG_HOUR}, txid_current() FROM old_rows ON CONFLICT DO NOTHING;
            ELSE
                INSERT INTO webhook_rollup_stale (hour, writer)
                SELECT hour, txid_current() FROM (
                    SELECT {PG_HOUR} AS hour FROM old_rows UNION SELECT {PG_HOUR} FROM new_rows
                ) AS touched
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    referencing = {
        "insert": "NEW TABLE AS new_rows",
        "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "OLD TABLE AS old_rows",
    }
    for event in EVENTS:
        name = f"webhook_rollup_on_{event}"
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON webhook_log")
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON webhook_log REFERENCING {referencing[event]} "
            "FOR EACH STATEMENT EXECUTE FUNCTION webhook_rollup_mark_stale()"
        )


def _sqlite_triggers() -> None:
    # SQLite has one writer at a time, and a rebuild is a write: one mark per hour will do.
    rows = {"insert": ("NEW",), "update": ("OLD", "NEW"), "delete": ("OLD",)}
    for event in EVENTS:
        marks = " ".join(
            f"INSERT OR IGNORE INTO webhook_rollup_stale (hour) VALUES ({SQLITE_HOUR.format(row=row)});"
            for row in rows[event]
        )
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS webhook_rollup_on_{event} AFTER {event.upper()} ON webhook_log "
            f"FOR EACH ROW BEGIN {marks} END"
        )


def downgrade() -> None:
    for event in EVENTS:
        if _is_postgres():
            op.execute(f"DROP TRIGGER IF EXISTS webhook_rollup_on_{event} ON webhook_log")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS webhook_rollup_on_{event}")
    if _is_postgres():
        op.execute("DROP FUNCTION IF EXISTS webhook_rollup_mark_stale()")
    op.drop_table("webhook_rollup_stale")
    op.drop_table("webhook_rollup")
