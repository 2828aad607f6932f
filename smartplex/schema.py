"""The product's tables, as SQLAlchemy Core metadata.

Migrations in ``migrations/versions`` create these tables; a test checks that a migrated database
matches this metadata, so the two cannot drift.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
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

from smartplex.column_types import JSONDocument, UTCDateTime
from smartplex.instances import DEFAULT_INSTANCE
from smartplex.kinds import KIND_NAMES, KINDS

metadata = MetaData()

#: Lifecycle of a webhook row: pending -> dispatched -> processed | failed | missing; ignored rows never
#: wait. ``missing``: the run finished, but the service could not return the item the webhook named.
WEBHOOK_STATUSES: Final = ("pending", "dispatched", "processed", "failed", "ignored", "missing")
#: Statuses in which handling has finished (``processed`` is true).
FINISHED_STATUSES: Final = ("processed", "failed", "ignored", "missing")


_DEFAULT_INSTANCE = text(f"'{DEFAULT_INSTANCE}'")


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
    # Replays count up, so replayed rows get a fresh run key.
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    # Copied from the Dagster run's records when the row is settled, so each stage of the row's path
    # (received, claimed, run created, run started, sync started, sync finished, settled) can be timed.
    Column("run_created_at", UTCDateTime),
    Column("run_started_at", UTCDateTime),
    Column("sync_started_at", UTCDateTime),
    Column("sync_finished_at", UTCDateTime),
    # Added: which instance of the source sent it (``default``: the one its kind's variables configure).
    Column("instance", Text, nullable=False, server_default=_DEFAULT_INSTANCE),
    CheckConstraint(_in_list("source", KIND_NAMES), name="ck_webhook_log_source"),
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
    # The reconciler's scan of rows handed to a run. Partial, so inserts (pending or ignored) skip it.
    Index(
        "ix_webhook_log_dispatched",
        "run_key",
        postgresql_where=text("status = 'dispatched'"),
        sqlite_where=text("status = 'dispatched'"),
    ),
)

# Newest-first listing and the status window; declared after the table to order by the column.
Index("ix_webhook_log_received_at", webhook_log.c.received_at.desc())

# Per source, the figures of each hour (span 3600) and day (span 86400) of webhook_log, by received_at:
# counts by status and a latency histogram per stage (``smartplex.webhook_rollups``). Triggers on
# webhook_log (migration 010) list the hours whose rows changed since their rollup was built.
webhook_rollup = Table(
    "webhook_rollup",
    metadata,
    Column("span", Integer, primary_key=True, autoincrement=False),
    Column("slot", BigInteger, primary_key=True, autoincrement=False),  # Unix seconds // span
    Column("source", Text, primary_key=True),
    Column("figures", JSONDocument, nullable=False),
)

webhook_rollup_stale = Table(
    "webhook_rollup_stale",
    metadata,
    Column("hour", BigInteger, primary_key=True, autoincrement=False),  # Unix seconds // 3600
    # The transaction that marked it, on PostgreSQL (0 on SQLite): see migration 010.
    Column("writer", BigInteger, primary_key=True, autoincrement=False, server_default=text("0")),
)

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
    # Added: the full refresh this schedule asked for, until its outcome is written back.
    Column("run_key", Text),
    # Added: one row per instance of a service, each with its own interval and on/off.
    Column("instance", Text, nullable=False, server_default=_DEFAULT_INSTANCE),
    UniqueConstraint("service", "instance", name="uq_sync_schedule_service_instance"),
    CheckConstraint(_in_list("service", KIND_NAMES), name="ck_sync_schedule_service"),
    CheckConstraint("interval_hours BETWEEN 1 AND 168", name="ck_sync_schedule_interval_hours"),
)

#: The seed rows of the default instances: (service, enabled, interval_hours).
SCHEDULE_SEED: Final = tuple((s.name, *s.schedule_seed) for s in KINDS)


# --- Synced library tables: one per service, keyed as the service keys its items. ---------------
# Every row carries synced_at (when a sync last wrote it) and deleted_at (soft delete: the service
# no longer has it; set by a full refresh, or by an incremental sync for deletions its history records).
# The instance it came from is part of the key: the same Sonarr series id in two instances is two rows.


def _synced_table(name: str, *columns: Column[Any] | Index | UniqueConstraint) -> Table:
    return Table(
        name,
        metadata,
        # First in the primary key: (instance, id), so the key's last column is still the service's id.
        Column("instance", Text, primary_key=True, server_default=_DEFAULT_INSTANCE),
        *columns,
        Column("synced_at", UTCDateTime, nullable=False),
        Column("deleted_at", UTCDateTime),
    )


plex_libraries = _synced_table(
    "plex_libraries",
    Column("server_id", Text, primary_key=True),
    Column("section_id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("type", Text, nullable=False),
)

plex_library_items = _synced_table(
    "plex_library_items",
    Column("server_id", Text, primary_key=True),
    Column("rating_key", Text, primary_key=True),
    Column("section_id", Text),
    Column("guid", Text),
    Column("imdb_id", Text),
    Column("tmdb_id", Integer),
    Column("tvdb_id", Integer),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("year", Integer),
    Column("parent_rating_key", Text),
    Column("grandparent_rating_key", Text),
    Column("season_number", Integer),
    Column("episode_number", Integer),
    Column("added_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("last_viewed_at", UTCDateTime),
    Column("view_count", Integer, nullable=False, server_default=text("0")),
    Column("file_path", Text),
    Column("file_size", BigInteger),
    Column("duration_ms", BigInteger),
    Index("ix_plex_library_items_tmdb_id", "tmdb_id"),
    Index("ix_plex_library_items_tvdb_id", "tvdb_id"),
    Index("ix_plex_library_items_imdb_id", "imdb_id"),
)

tautulli_watch_history = _synced_table(
    "tautulli_watch_history",
    Column("row_id", BigInteger, primary_key=True, autoincrement=False),
    Column("reference_id", BigInteger),
    Column("rating_key", Text, nullable=False),
    Column("parent_rating_key", Text),
    Column("grandparent_rating_key", Text),
    Column("guid", Text),
    Column("media_type", Text),
    Column("user_id", BigInteger),
    Column("user_name", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    Column("duration_seconds", Integer),
    Column("percent_complete", Integer),
    Column("watched", Boolean, nullable=False, server_default=text("false")),
    Index("ix_tautulli_watch_history_rating_key", "rating_key"),
    Index("ix_tautulli_watch_history_started_at", "started_at"),
)

sonarr_series = _synced_table(
    "sonarr_series",
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tvdb_id", Integer),
    Column("tmdb_id", Integer),
    Column("imdb_id", Text),
    Column("title", Text, nullable=False),
    Column("title_slug", Text),
    Column("path", Text),
    Column("monitored", Boolean),
    Column("status", Text),
    Column("added_at", UTCDateTime),
    Column("episode_count", Integer),
    Column("episode_file_count", Integer),
    Column("size_on_disk", BigInteger),
    Index("ix_sonarr_series_tvdb_id", "tvdb_id"),
)

radarr_movies = _synced_table(
    "radarr_movies",
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tmdb_id", Integer),
    Column("imdb_id", Text),
    Column("title", Text, nullable=False),
    Column("year", Integer),
    Column("path", Text),
    Column("monitored", Boolean),
    Column("status", Text),
    Column("added_at", UTCDateTime),
    Column("has_file", Boolean, nullable=False, server_default=text("false")),
    Column("size_on_disk", BigInteger),
    Index("ix_radarr_movies_tmdb_id", "tmdb_id"),
)

overseerr_requests = _synced_table(
    "overseerr_requests",
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("status", Integer, nullable=False),
    Column("type", Text),
    Column("is_4k", Boolean, nullable=False, server_default=text("false")),
    Column("media_id", Integer),
    Column("tmdb_id", Integer),
    Column("tvdb_id", Integer),
    Column("rating_key", Text),
    Column("requested_by_id", Integer),
    Column("requested_by", Text),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Index("ix_overseerr_requests_tmdb_id", "tmdb_id"),
)

# --- Derived tables, recomputed whole from the synced ones. ------------------------------------

watch_stats = Table(
    "watch_stats",
    metadata,
    # The Tautulli instance whose history it sums: two Plex servers' ratingKeys are not the same items.
    Column("instance", Text, primary_key=True, server_default=_DEFAULT_INSTANCE),
    Column("rating_key", Text, primary_key=True),
    Column("plays", Integer, nullable=False),
    Column("complete_plays", Integer, nullable=False),
    Column("users", Integer, nullable=False),
    Column("last_watched_at", UTCDateTime),
    Column("total_watch_seconds", BigInteger, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)

media_catalog = Table(
    "media_catalog",
    metadata,
    Column("server_id", Text, primary_key=True),
    Column("rating_key", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("year", Integer),
    Column("imdb_id", Text),
    Column("tmdb_id", Integer),
    Column("tvdb_id", Integer),
    Column("sonarr_series_id", Integer),
    Column("radarr_movie_id", Integer),
    Column("overseerr_request_id", Integer),
    Column("requested_by", Text),
    Column("plays", Integer, nullable=False),
    Column("last_watched_at", UTCDateTime),
    Column("total_watch_seconds", BigInteger, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)

# Every copy the catalog found of an entry: each Sonarr and Radarr instance that has the title (the HD
# and the 4K one), under its id there. media_catalog's sonarr_series_id / radarr_movie_id name the
# default instance's copy when it has one.
media_catalog_copies = Table(
    "media_catalog_copies",
    metadata,
    Column("server_id", Text, primary_key=True),
    Column("rating_key", Text, primary_key=True),
    Column("service", Text, primary_key=True),
    Column("instance", Text, primary_key=True),
    Column("item_id", Integer, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)


# --- The catch-up (migration 012): what each instance's service changed that no webhook announced. ---

catch_up_state = Table(
    "catch_up_state",
    metadata,
    Column("service", Text, primary_key=True),  # the kind, as in sync_schedule
    Column("instance", Text, primary_key=True, server_default=_DEFAULT_INSTANCE),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("interval_minutes", Integer, nullable=False, server_default=text("5")),
    # Every change the service made before this (less the overlap) is in the table.
    Column("watermark", UTCDateTime),
    Column("polled_at", UTCDateTime),
    # Sonarr/Radarr: the digests of the library listing, and of each item in it, last synced.
    Column("fingerprint", JSONDocument),
    # The catch-up run in flight: its run key, the watermark it moves to, the ids it syncs.
    Column("run_key", Text),
    Column("run_until", UTCDateTime),
    Column("run_ids", JSONDocument),
    Column("run_unannounced", Integer),
    Column("last_error", Text),
    # The service's own health check naming our webhook as failing (Sonarr/Radarr), and since when.
    Column("health", Text),
    Column("health_at", UTCDateTime),
    CheckConstraint(_in_list("service", KIND_NAMES), name="ck_catch_up_state_service"),
    CheckConstraint("interval_minutes BETWEEN 1 AND 1440", name="ck_catch_up_state_interval_minutes"),
)

# One row per catch-up that synced something: how many changes, and how many no webhook had announced.
catch_up_found = Table(
    "catch_up_found",
    metadata,
    Column("id", Uuid, primary_key=True, default=uuid.uuid4),
    Column("service", Text, nullable=False),
    Column("instance", Text, nullable=False, server_default=_DEFAULT_INSTANCE),
    Column("found_at", UTCDateTime, nullable=False),
    Column("changes", Integer, nullable=False),
    Column("unannounced", Integer, nullable=False),
    Column("run_id", Text),
    Index("ix_catch_up_found_found_at", "found_at"),
)
