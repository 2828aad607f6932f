"""Dispatch markers: a replay counter on webhook rows, the in-flight run key on each schedule.

``webhook_log.attempt`` goes up on every replay, so replayed rows get a fresh run key (Dagster skips
a run key it has seen). ``sync_schedule.run_key`` names the full refresh a schedule asked for until
its outcome is written back, which lets a missed outcome be found and settled later.

Revision ID: 007
Revises: 006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "007"
down_revision = "006"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)} if not op.get_context().as_sql else set()


def upgrade() -> None:
    if op.get_context().as_sql:
        # Plain SQL for hand-managed databases: guarded so a second run is a no-op.
        op.execute("ALTER TABLE webhook_log ADD COLUMN IF NOT EXISTS attempt INTEGER NOT NULL DEFAULT 0")
        op.execute("ALTER TABLE sync_schedule ADD COLUMN IF NOT EXISTS run_key TEXT")
        return
    if "attempt" not in _columns("webhook_log"):
        op.add_column("webhook_log", sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("0")))
    if "run_key" not in _columns("sync_schedule"):
        op.add_column("sync_schedule", sa.Column("run_key", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("sync_schedule") as batch:
        batch.drop_column("run_key")
    with op.batch_alter_table("webhook_log") as batch:
        batch.drop_column("attempt")
