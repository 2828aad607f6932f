"""Where a webhook's seconds go: when its run was created and started, when its sync step started and ended.

A row already says when it was received (``received_at``), claimed by the sensor (``dispatched_at``)
and settled (``processed_at``). These four, copied from the Dagster run's records when the row is
settled, fill in the stages between, so that the time of each stage can be computed for any row
without Dagster: ``GET /api/webhooks/status`` and ``/metrics`` report them.

Revision ID: 009
Revises: 008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "009"
down_revision = "008"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
#: The run record's creation and start, the sync step's start and its success or failure.
COLUMNS = ("run_created_at", "run_started_at", "sync_started_at", "sync_finished_at")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if op.get_context().as_sql:
        # Plain SQL for hand-managed databases: guarded so a second run is a no-op.
        for column in COLUMNS:
            op.execute(f"ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS {column} TIMESTAMP WITH TIME ZONE")
        return
    existing = _columns("webhook_log")
    for column in COLUMNS:
        if column not in existing:
            op.add_column("webhook_log", sa.Column(column, TIMESTAMPTZ))


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for column in COLUMNS:
            op.drop_column("webhook_log", column)
        return
    # SQLite drops columns by rebuilding the table; the descending index comes back ascending, so it is
    # made again (as in 008).
    with op.batch_alter_table("webhook_log", recreate="always") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
    op.drop_index("ix_webhook_log_received_at", "webhook_log")
    op.create_index("ix_webhook_log_received_at", "webhook_log", [sa.text("received_at DESC")])
