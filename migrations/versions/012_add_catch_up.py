"""The catch-up: per instance, the point up to which the service's changes are synced, and what the
catch-up found that no webhook announced.

``catch_up_state`` has a row per instance (made when the catch-up first polls it): its interval and
on/off (the admin page edits them), its watermark, the run in flight and the sender's health.
``catch_up_found`` has a row per catch-up run that synced something; the status counts the changes no
webhook announced over 24 hours and 7 days from it.

Revision ID: 012
Revises: 011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "012"
down_revision = "011"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KINDS = ("plex", "tautulli", "sonarr", "radarr", "overseerr")


def upgrade() -> None:
    op.create_table(
        "catch_up_state",
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False, server_default=sa.text("'default'")),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("interval_minutes", sa.Integer(), nullable=False, server_default=sa.text("5")),
        sa.Column("watermark", TIMESTAMPTZ),
        sa.Column("polled_at", TIMESTAMPTZ),
        sa.Column("fingerprint", JSON_DOCUMENT),
        sa.Column("run_key", sa.Text()),
        sa.Column("run_until", TIMESTAMPTZ),
        sa.Column("run_ids", JSON_DOCUMENT),
        sa.Column("run_unannounced", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("health", sa.Text()),
        sa.Column("health_at", TIMESTAMPTZ),
        sa.PrimaryKeyConstraint("service", "instance"),
        sa.CheckConstraint(f"service IN ({', '.join(repr(k) for k in KINDS)})", name="ck_catch_up_state_service"),
        sa.CheckConstraint("interval_minutes BETWEEN 1 AND 1440", name="ck_catch_up_state_interval_minutes"),
        if_not_exists=True,
    )
    op.create_table(
        "catch_up_found",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False, server_default=sa.text("'default'")),
        sa.Column("found_at", TIMESTAMPTZ, nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("unannounced", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index("ix_catch_up_found_found_at", "catch_up_found", ["found_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_catch_up_found_found_at", table_name="catch_up_found", if_exists=True)
    op.drop_table("catch_up_found", if_exists=True)
    op.drop_table("catch_up_state", if_exists=True)
