"""One sync spec per kind: its table, its key, and how a fetched item becomes a row.

This is the one place that knows how each kind's items map onto SmartPlex's tables; the Dagster
asset factory and the sync engine are the same code for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table

from smartplex.clients import OverseerrRequest, PlexItem, RadarrMovie, SonarrSeries, TautulliPlay
from smartplex.clients.models import int_or_none
from smartplex.schema import (
    overseerr_requests,
    plex_libraries,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    tautulli_watch_history,
)

Row = dict[str, Any]
#: Values every row of one run shares (the Plex server's id), from the service itself.
Scope = dict[str, Any]


@dataclass(frozen=True)
class SyncSpec:
    #: The kind whose library it syncs (``sonarr``).
    kind: str
    table: Table
    #: The service's own key of an item; in the table, the instance comes first (:attr:`table_key`).
    key: tuple[str, ...]
    to_row: Callable[[Any, Scope], Row]
    #: Runs before fetching, given the run's scope (its instance): returns what else every row of the
    #: run shares (and may sync small side tables).
    prepare: Callable[[Any, Connection, datetime, Scope], Scope] = field(
        default=lambda client, connection, now, scope: {}
    )
    description: str = ""

    @property
    def table_key(self) -> tuple[str, ...]:
        return ("instance", *self.key)


def _plex_prepare(client: Any, connection: Connection, now: datetime, scope: Scope) -> Scope:
    """Key everything on the server's machine id, and keep its library sections current."""
    from smartplex.sync.upsert import upsert

    server_id = client.machine_identifier()
    sections = [
        {"server_id": server_id, "section_id": str(s["key"]), "title": s.get("title", ""), "type": s.get("type", ""),
         "synced_at": now, "deleted_at": None, **scope}
        for s in client.sections()
    ]  # fmt: skip
    upsert(connection, plex_libraries, ("instance", "server_id", "section_id"), sections)
    return {"server_id": server_id}


def _plex_row(item: PlexItem, scope: Scope) -> Row:
    media = (item.raw.get("Media") or [{}])[0]
    part = (media.get("Part") or [{}])[0]
    return {
        "rating_key": item.rating_key,
        "section_id": item.section_id,
        "guid": item.guid,
        "imdb_id": item.ids.imdb,
        "tmdb_id": item.ids.tmdb,
        "tvdb_id": item.ids.tvdb,
        "type": item.type,
        "title": item.title,
        "year": item.year,
        "parent_rating_key": item.parent_rating_key,
        "grandparent_rating_key": item.grandparent_rating_key,
        "season_number": int_or_none(item.raw.get("parentIndex")) if item.type == "episode" else None,
        "episode_number": int_or_none(item.raw.get("index")) if item.type == "episode" else None,
        "added_at": item.added_at,
        "updated_at": item.updated_at,
        "last_viewed_at": item.last_viewed_at,
        "view_count": item.view_count,
        "file_path": part.get("file"),
        "file_size": int_or_none(part.get("size")),
        "duration_ms": int_or_none(item.raw.get("duration")),
    }


def _tautulli_row(play: TautulliPlay, scope: Scope) -> Row:
    return {
        "row_id": play.row_id,
        "reference_id": play.reference_id,
        "rating_key": str(play.rating_key),
        "parent_rating_key": _str_or_none(play.parent_rating_key),
        "grandparent_rating_key": _str_or_none(play.grandparent_rating_key),
        "guid": play.guid,
        "media_type": play.media_type,
        "user_id": play.user_id,
        "user_name": play.user,
        "started_at": play.started,
        "stopped_at": play.stopped,
        "duration_seconds": int_or_none(play.raw.get("play_duration", play.raw.get("duration"))),
        "percent_complete": play.percent_complete,
        "watched": play.watched_status >= 1,
    }


def _sonarr_row(series: SonarrSeries, scope: Scope) -> Row:
    statistics = series.raw.get("statistics") or {}
    return {
        "id": series.id,
        "tvdb_id": series.tvdb_id,
        "tmdb_id": series.tmdb_id,
        "imdb_id": series.imdb_id,
        "title": series.title,
        "title_slug": series.title_slug,
        "path": series.path,
        "monitored": series.monitored,
        "status": series.status,
        "added_at": series.added,
        "episode_count": int_or_none(statistics.get("episodeCount")),
        "episode_file_count": int_or_none(statistics.get("episodeFileCount")),
        "size_on_disk": series.size_on_disk,
    }


def _radarr_row(movie: RadarrMovie, scope: Scope) -> Row:
    return {
        "id": movie.id,
        "tmdb_id": movie.tmdb_id,
        "imdb_id": movie.imdb_id,
        "title": movie.title,
        "year": movie.year,
        "path": movie.path,
        "monitored": movie.monitored,
        "status": movie.status,
        "added_at": movie.added,
        "has_file": movie.has_file,
        "size_on_disk": movie.size_on_disk,
    }


def _overseerr_row(request: OverseerrRequest, scope: Scope) -> Row:
    requested_by = request.raw.get("requestedBy") or {}
    return {
        "id": request.id,
        "status": request.status,
        "type": request.type,
        "is_4k": request.is_4k,
        "media_id": request.media_id,
        "tmdb_id": request.tmdb_id,
        "tvdb_id": request.tvdb_id,
        "rating_key": request.rating_key,
        "requested_by_id": request.requested_by_id,
        "requested_by": requested_by.get("displayName") or requested_by.get("username") or requested_by.get("email"),
        "created_at": request.created_at,
        "updated_at": request.updated_at,
    }


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


SPECS: dict[str, SyncSpec] = {
    spec.kind: spec
    for spec in (
        SyncSpec("plex", plex_library_items, ("server_id", "rating_key"), _plex_row, _plex_prepare,
                 "Movies, shows, seasons and episodes of every Plex library section."),
        SyncSpec("tautulli", tautulli_watch_history, ("row_id",), _tautulli_row,
                 description="Every play Tautulli recorded: who watched what, when, and how far."),
        SyncSpec("sonarr", sonarr_series, ("id",), _sonarr_row,
                 description="Sonarr's series with episode-file counts and size on disk."),
        SyncSpec("radarr", radarr_movies, ("id",), _radarr_row,
                 description="Radarr's movies: whether each has a file, and its size."),
        SyncSpec("overseerr", overseerr_requests, ("id",), _overseerr_row,
                 description="Overseerr requests: status, the media's ids and who asked."),
    )
}  # fmt: skip
