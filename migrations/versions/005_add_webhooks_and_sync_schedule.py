"""Add webhook_log and sync_schedule (the original migration 005, made re-runnable).

Every statement is guarded (IF NOT EXISTS, ON CONFLICT DO NOTHING, CREATE OR REPLACE), so the plain
SQL printed by ``smartplex db sql`` can be run twice in the Supabase SQL editor without failing.

Revision ID: 005
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "005"
down_revision = None
branch_labels = None
depends_on = None

SERVICES = ("plex", "tautulli", "sonarr", "radarr", "overseerr")
STATUSES = ("pending", "dispatched", "processed", "failed", "ignored")
SEED = (
    ("plex", True, 12),
    ("tautulli", True, 6),
    ("sonarr", False, 24),
    ("radarr", False, 24),
    ("overseerr", False, 6),
)

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _id_column() -> sa.Column:
    # PostgreSQL fills ids itself so rows inserted by hand work; SQLite rows get theirs from the app.
    default = sa.text("gen_random_uuid()") if _is_postgres() else None
    return sa.Column("id", sa.Uuid(), primary_key=True, server_default=default)


#: SQLite has no BEFORE-UPDATE assignment; an AFTER trigger stamps the row unless the update set
#: updated_at itself. Six fractional digits match SQLAlchemy's stored format.
SQLITE_TOUCH_TRIGGER = """
    CREATE TRIGGER IF NOT EXISTS sync_schedule_touch_updated_at
    AFTER UPDATE ON sync_schedule FOR EACH ROW
    WHEN NEW.updated_at IS OLD.updated_at
    BEGIN
        UPDATE sync_schedule
        SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'
        WHERE id = NEW.id;
    END
"""


def upgrade() -> None:
    op.create_table(
        "webhook_log",
        _id_column(),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("received_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("processed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("processed_at", TIMESTAMPTZ),
        sa.Column("error_message", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("dispatched_at", TIMESTAMPTZ),
        sa.Column("run_key", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.CheckConstraint(_in_list("source", SERVICES), name="ck_webhook_log_source"),
        sa.CheckConstraint(_in_list("status", STATUSES), name="ck_webhook_log_status"),
        if_not_exists=True,
    )
    op.create_table(
        "sync_schedule",
        _id_column(),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("interval_hours", sa.Integer(), nullable=False, server_default=sa.text("6")),
        sa.Column("last_run_at", TIMESTAMPTZ),
        sa.Column("next_run_at", TIMESTAMPTZ),
        sa.Column("run_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_status", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("sync_requested_at", TIMESTAMPTZ),
        sa.UniqueConstraint("service", name="uq_sync_schedule_service"),
        sa.CheckConstraint(_in_list("service", SERVICES), name="ck_sync_schedule_service"),
        sa.CheckConstraint("interval_hours BETWEEN 1 AND 168", name="ck_sync_schedule_interval_hours"),
        if_not_exists=True,
    )

    if _is_postgres():
        _adopt_original_tables()
    op.create_index("ix_webhook_log_source", "webhook_log", ["source"], if_not_exists=True)
    op.create_index("ix_webhook_log_event_type", "webhook_log", ["event_type"], if_not_exists=True)
    op.create_index("ix_webhook_log_received_at", "webhook_log", [sa.text("received_at DESC")], if_not_exists=True)
    op.create_index("ix_webhook_log_processed", "webhook_log", ["processed"], if_not_exists=True)
    op.create_index(
        "ix_webhook_log_pending",
        "webhook_log",
        ["received_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_webhook_log_dispatched",
        "webhook_log",
        ["run_key"],
        postgresql_where=sa.text("status = 'dispatched'"),
        sqlite_where=sa.text("status = 'dispatched'"),
        if_not_exists=True,
    )

    if _is_postgres():
        op.execute(
            """
            CREATE OR REPLACE FUNCTION sync_schedule_touch_updated_at() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                NEW.updated_at := now();
                RETURN NEW;
            END
            $$
            """
        )
        op.execute("DROP TRIGGER IF EXISTS sync_schedule_touch_updated_at ON sync_schedule")
        op.execute(
            "CREATE TRIGGER sync_schedule_touch_updated_at BEFORE UPDATE ON sync_schedule "
            "FOR EACH ROW EXECUTE FUNCTION sync_schedule_touch_updated_at()"
        )
        new_id = "gen_random_uuid()"
    else:
        op.execute(SQLITE_TOUCH_TRIGGER)
        new_id = "lower(hex(randomblob(16)))"

    for service, enabled, interval in SEED:
        op.execute(
            "INSERT INTO sync_schedule (id, service, enabled, interval_hours) "
            f"VALUES ({new_id}, '{service}', {str(enabled).lower()}, {interval}) "
            "ON CONFLICT DO NOTHING"
        )


def _adopt_original_tables() -> None:
    """A database that already has the original migration 005's tables gets the added columns.

    The lifecycle status is derived from the original columns once, when the column is added.
    """
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                           AND table_name = 'webhook_log' AND column_name = 'status') THEN
                ALTER TABLE webhook_log ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
                UPDATE webhook_log SET status = CASE WHEN NOT coalesce(processed, false) THEN 'pending'
                    WHEN error_message IS NOT NULL THEN 'failed' ELSE 'processed' END;
                ALTER TABLE webhook_log ADD CONSTRAINT ck_webhook_log_status
                    CHECK (status IN ('pending', 'dispatched', 'processed', 'failed', 'ignored'));
            END IF;
        END
        $$
        """
    )
    for column in ("dispatched_at TIMESTAMP WITH TIME ZONE", "run_key TEXT", "run_id TEXT"):
        op.execute(f"ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS {column}")
    op.execute("ALTER TABLE sync_schedule ADD COLUMN IF NOT EXISTS sync_requested_at TIMESTAMP WITH TIME ZONE")


def downgrade() -> None:
    if _is_postgres():
        op.execute("DROP TRIGGER IF EXISTS sync_schedule_touch_updated_at ON sync_schedule")
        op.execute("DROP FUNCTION IF EXISTS sync_schedule_touch_updated_at()")
    else:
        op.execute("DROP TRIGGER IF EXISTS sync_schedule_touch_updated_at")
    op.drop_table("sync_schedule", if_exists=True)
    op.drop_table("webhook_log", if_exists=True)
