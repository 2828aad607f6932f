"""A webhook outcome of its own: ``missing``, for a row whose named item the service could not return.

A webhook that names an item (a Plex ``ratingKey``, an Overseerr ``request_id``, a Sonarr series id...)
is fetched by that id; when the service answers that it has no such item, the row is finished with
status ``missing`` and a note saying what was asked for, instead of a silent ``processed``.

Revision ID: 008
Revises: 007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "008"
down_revision = "007"
branch_labels = None
depends_on = None

BEFORE = ("pending", "dispatched", "processed", "failed", "ignored")
AFTER = (*BEFORE, "missing")
NAME = "ck_webhook_log_status"


def _check(statuses: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(s) for s in statuses)})"


def _replace_check(statuses: tuple[str, ...]) -> None:
    if op.get_context().dialect.name == "postgresql":
        # Guarded, so the printed SQL can run twice.
        op.execute(f"ALTER TABLE webhook_log DROP CONSTRAINT IF EXISTS {NAME}")
        op.execute(f"ALTER TABLE webhook_log ADD CONSTRAINT {NAME} CHECK ({_check(statuses)})")
        return
    # SQLite cannot alter a constraint: batch mode rebuilds the table. Its indexes come along, but a
    # descending one comes back ascending, so that one is made again.
    with op.batch_alter_table("webhook_log", recreate="always") as batch:
        batch.drop_constraint(NAME, type_="check")
        batch.create_check_constraint(NAME, _check(statuses))
    op.drop_index("ix_webhook_log_received_at", "webhook_log")
    op.create_index("ix_webhook_log_received_at", "webhook_log", [sa.text("received_at DESC")])


def upgrade() -> None:
    _replace_check(AFTER)


def downgrade() -> None:
    # A missing row was finished without error: it goes back to the closest earlier outcome.
    op.execute("UPDATE webhook_log SET status = 'processed' WHERE status = 'missing'")
    _replace_check(BEFORE)
