"""Add the synced library tables (one per service) and the derived watch_stats and media_catalog.

Revision ID: 006
Revises: 005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "006"
down_revision = "005"
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.DateTime(timezone=True)


def _table(name: str, *columns: sa.Column | sa.PrimaryKeyConstraint, synced: bool = True) -> None:
    tail = [sa.Column("synced_at", TIMESTAMPTZ, nullable=False), sa.Column("deleted_at", TIMESTAMPTZ)] if synced else []
    op.create_table(name, *columns, *tail, if_not_exists=True)


def _index(table: str, column: str) -> None:
    op.create_index(f"ix_{table}_{column}", table, [column], if_not_exists=True)


def upgrade() -> None:
    _table(
        "plex_libraries",
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("section_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "section_id"),
    )
    _table(
        "plex_library_items",
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("rating_key", sa.Text(), nullable=False),
        sa.Column("section_id", sa.Text()),
        sa.Column("guid", sa.Text()),
        sa.Column("imdb_id", sa.Text()),
        sa.Column("tmdb_id", sa.Integer()),
        sa.Column("tvdb_id", sa.Integer()),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer()),
        sa.Column("parent_rating_key", sa.Text()),
        sa.Column("grandparent_rating_key", sa.Text()),
        sa.Column("season_number", sa.Integer()),
        sa.Column("episode_number", sa.Integer()),
        sa.Column("added_at", TIMESTAMPTZ),
        sa.Column("updated_at", TIMESTAMPTZ),
        sa.Column("last_viewed_at", TIMESTAMPTZ),
        sa.Column("view_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("file_path", sa.Text()),
        sa.Column("file_size", sa.BigInteger()),
        sa.Column("duration_ms", sa.BigInteger()),
        sa.PrimaryKeyConstraint("server_id", "rating_key"),
    )
    for column in ("tmdb_id", "tvdb_id", "imdb_id"):
        _index("plex_library_items", column)

    _table(
        "tautulli_watch_history",
        sa.Column("row_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("reference_id", sa.BigInteger()),
        sa.Column("rating_key", sa.Text(), nullable=False),
        sa.Column("parent_rating_key", sa.Text()),
        sa.Column("grandparent_rating_key", sa.Text()),
        sa.Column("guid", sa.Text()),
        sa.Column("media_type", sa.Text()),
        sa.Column("user_id", sa.BigInteger()),
        sa.Column("user_name", sa.Text()),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.Column("stopped_at", TIMESTAMPTZ),
        sa.Column("duration_seconds", sa.Integer()),
        sa.Column("percent_complete", sa.Integer()),
        sa.Column("watched", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("row_id"),
    )
    _index("tautulli_watch_history", "rating_key")
    _index("tautulli_watch_history", "started_at")

    _table(
        "sonarr_series",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("tvdb_id", sa.Integer()),
        sa.Column("tmdb_id", sa.Integer()),
        sa.Column("imdb_id", sa.Text()),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_slug", sa.Text()),
        sa.Column("path", sa.Text()),
        sa.Column("monitored", sa.Boolean()),
        sa.Column("status", sa.Text()),
        sa.Column("added_at", TIMESTAMPTZ),
        sa.Column("episode_count", sa.Integer()),
        sa.Column("episode_file_count", sa.Integer()),
        sa.Column("size_on_disk", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("sonarr_series", "tvdb_id")

    _table(
        "radarr_movies",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("tmdb_id", sa.Integer()),
        sa.Column("imdb_id", sa.Text()),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer()),
        sa.Column("path", sa.Text()),
        sa.Column("monitored", sa.Boolean()),
        sa.Column("status", sa.Text()),
        sa.Column("added_at", TIMESTAMPTZ),
        sa.Column("has_file", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("size_on_disk", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("radarr_movies", "tmdb_id")

    _table(
        "overseerr_requests",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text()),
        sa.Column("is_4k", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("media_id", sa.Integer()),
        sa.Column("tmdb_id", sa.Integer()),
        sa.Column("tvdb_id", sa.Integer()),
        sa.Column("rating_key", sa.Text()),
        sa.Column("requested_by_id", sa.Integer()),
        sa.Column("requested_by", sa.Text()),
        sa.Column("created_at", TIMESTAMPTZ),
        sa.Column("updated_at", TIMESTAMPTZ),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("overseerr_requests", "tmdb_id")

    _table(
        "watch_stats",
        sa.Column("rating_key", sa.Text(), nullable=False),
        sa.Column("plays", sa.Integer(), nullable=False),
        sa.Column("complete_plays", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("last_watched_at", TIMESTAMPTZ),
        sa.Column("total_watch_seconds", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("rating_key"),
        synced=False,
    )
    _table(
        "media_catalog",
        sa.Column("server_id", sa.Text(), nullable=False),
        sa.Column("rating_key", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer()),
        sa.Column("imdb_id", sa.Text()),
        sa.Column("tmdb_id", sa.Integer()),
        sa.Column("tvdb_id", sa.Integer()),
        sa.Column("sonarr_series_id", sa.Integer()),
        sa.Column("radarr_movie_id", sa.Integer()),
        sa.Column("overseerr_request_id", sa.Integer()),
        sa.Column("requested_by", sa.Text()),
        sa.Column("plays", sa.Integer(), nullable=False),
        sa.Column("last_watched_at", TIMESTAMPTZ),
        sa.Column("total_watch_seconds", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("server_id", "rating_key"),
        synced=False,
    )


def downgrade() -> None:
    for table in (
        "media_catalog", "watch_stats", "overseerr_requests", "radarr_movies", "sonarr_series",
        "tautulli_watch_history", "plex_library_items", "plex_libraries",
    ):  # fmt: skip
        op.drop_table(table, if_exists=True)
