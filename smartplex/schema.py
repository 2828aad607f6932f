"""The product's tables, as SQLAlchemy Core metadata.

Migrations in ``migrations/versions`` create these tables; a test checks that a migrated database
matches this metadata, so the two cannot drift.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from smartplex.services import SERVICE_NAMES
from smartplex.types import JSONDocument, UTCDateTime

metadata = MetaData()

#: Lifecycle of a webhook row: pending -> dispatched -> processed | failed; ignored rows never wait.
WEBHOOK_STATUSES: Final = ("pending", "dispatched", "processed", "failed", "ignored")
#: Statuses in which handling has finished (``processed`` is true).
FINISHED_STATUSES: Final = ("processed", "failed", "ignored")


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


webhook_log = Table(
    "webhook_log",
    metadata,
    Column("id", Uuid, primary_key=True, default=uuid.uuid4),
    Column("source", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONDocument, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("processed", Boolean, nullable=False, server_default=text("false")),
    Column("processed_at", UTCDateTime),
    Column("error_message", Text),
    # Added to the original columns: where the row is in its lifecycle, and which Dagster run has it.
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("dispatched_at", UTCDateTime),
    Column("run_key", Text),
    Column("run_id", Text),
    CheckConstraint(_in_list("source", SERVICE_NAMES), name="ck_webhook_log_source"),
    CheckConstraint(_in_list("status", WEBHOOK_STATUSES), name="ck_webhook_log_status"),
    Index("ix_webhook_log_source", "source"),
    Index("ix_webhook_log_event_type", "event_type"),
    Index("ix_webhook_log_processed", "processed"),
    # The sensor's poll: oldest pending rows first, touching only pending rows.
    Index(
        "ix_webhook_log_pending",
        "received_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    # The reconciler's scan of rows handed to a run, and retention by age within a status.
    Index("ix_webhook_log_status_received_at", "status", "received_at"),
)

# Newest-first listing and the status window; declared after the table to order by the column.
Index("ix_webhook_log_received_at", webhook_log.c.received_at.desc())

sync_schedule = Table(
    "sync_schedule",
    metadata,
    Column("id", Uuid, primary_key=True, default=uuid.uuid4),
    Column("service", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("interval_hours", Integer, nullable=False, server_default=text("6")),
    Column("last_run_at", UTCDateTime),
    Column("next_run_at", UTCDateTime),
    Column("run_count", Integer, nullable=False, server_default=text("0")),
    Column("last_status", Text),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=func.now()),
    # Added: "sync now" from the admin API; the schedule runs a full refresh at its next tick.
    Column("sync_requested_at", UTCDateTime),
    UniqueConstraint("service", name="uq_sync_schedule_service"),
    CheckConstraint(_in_list("service", SERVICE_NAMES), name="ck_sync_schedule_service"),
    CheckConstraint("interval_hours BETWEEN 1 AND 168", name="ck_sync_schedule_interval_hours"),
)

#: The original seed rows: (service, enabled, interval_hours).
SCHEDULE_SEED: Final = (
    ("plex", True, 12),
    ("tautulli", True, 6),
    ("sonarr", False, 24),
    ("radarr", False, 24),
    ("overseerr", False, 6),
)
