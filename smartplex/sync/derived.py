"""Derived tables, recomputed whole from the synced tables in one transaction each.

Watch statistics always come from the entire Tautulli history table, which only grows: a 7-day sync
adds rows to it and can never shrink a lifetime total.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, case, delete, func, insert, literal, select, union_all

from smartplex.column_types import utcnow
from smartplex.instances import DEFAULT_INSTANCE
from smartplex.schema import (
    media_catalog,
    media_catalog_copies,
    overseerr_requests,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    tautulli_watch_history,
    watch_stats,
)

#: A play counts as complete at this percentage (Tautulli's default "watched" threshold is 85-90%).
COMPLETE_PERCENT = 90


def recompute_watch_stats(engine: Engine, now: datetime | None = None) -> int:
    """Per Tautulli instance and item: plays, complete plays, distinct users, last watched, total time;
    shows sum their episodes."""
    now = now or utcnow()
    history = tautulli_watch_history
    live = history.c.deleted_at.is_(None)

    def rollup(key: ColumnElement[Any]) -> Select[Any]:
        return (
            select(
                history.c.instance,
                key.label("rating_key"),
                func.count().label("plays"),
                func.count(case((history.c.percent_complete >= COMPLETE_PERCENT, 1))).label("complete_plays"),
                func.count(history.c.user_id.distinct()).label("users"),
                func.max(func.coalesce(history.c.stopped_at, history.c.started_at)).label("last_watched_at"),
                func.coalesce(func.sum(history.c.duration_seconds), 0).label("total_watch_seconds"),
                literal(now, watch_stats.c.computed_at.type).label("computed_at"),
            )
            .where(live, key.is_not(None))
            .group_by(history.c.instance, key)
        )

    items = rollup(history.c.rating_key)
    shows = rollup(history.c.grandparent_rating_key).where(history.c.media_type == "episode")
    with engine.begin() as connection:
        connection.execute(delete(watch_stats))
        connection.execute(insert(watch_stats).from_select(list(watch_stats.c.keys()), union_all(items, shows)))
        return connection.execute(select(func.count()).select_from(watch_stats)).scalar_one()


def _copies(now: datetime) -> Select[Any]:
    """Every Sonarr series and Radarr movie that is a live Plex show or movie, per instance (the HD and
    the 4K copy of a title are two), matched by tvdb (shows) or tmdb (movies) id, else by imdb id."""
    plex = plex_library_items

    def matches(table: Any, kind: str, plex_type: str, id_column: str) -> Select[Any]:
        same = (table.c[id_column] == plex.c[id_column]) | (
            plex.c[id_column].is_(None) & (table.c.imdb_id == plex.c.imdb_id)
        )
        return (
            select(
                plex.c.server_id,
                plex.c.rating_key,
                literal(kind).label("service"),  # the column holds the kind
                table.c.instance,
                func.min(table.c.id).label("item_id"),  # one per instance, should it list a title twice
                literal(now, media_catalog_copies.c.computed_at.type).label("computed_at"),
            )
            .select_from(plex.join(table, same & (plex.c.type == plex_type)))
            .where(plex.c.deleted_at.is_(None), table.c.deleted_at.is_(None))
            .group_by(plex.c.server_id, plex.c.rating_key, table.c.instance)
        )

    return union_all(
        matches(sonarr_series, "sonarr", "show", "tvdb_id"), matches(radarr_movies, "radarr", "movie", "tmdb_id")
    )  # type: ignore[return-value]


def recompute_media_catalog(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """Plex movies and shows joined to Radarr/Sonarr by tmdb/tvdb/imdb, to Overseerr requests, and to stats.

    Each entry's copies in every Sonarr and Radarr instance go to ``media_catalog_copies``; the entry
    names the default instance's copy, or else the copy with the lowest id.
    """
    now = now or utcnow()
    plex = plex_library_items
    copies = media_catalog_copies

    def chosen(kind: str) -> Any:
        preferred = func.min(case((copies.c.instance == DEFAULT_INSTANCE, copies.c.item_id)))
        return (
            select(
                copies.c.server_id,
                copies.c.rating_key,
                func.coalesce(preferred, func.min(copies.c.item_id)).label("item_id"),
            )
            .where(copies.c.service == kind)
            .group_by(copies.c.server_id, copies.c.rating_key)
            .subquery(kind)
        )

    sonarr, radarr = chosen("sonarr"), chosen("radarr")
    # A Plex server's plays are those of the Tautulli instance of the same name (``plex/office``:
    # ``tautulli/office``), else of the default one, as the routing pairs their webhooks.
    tautulli = case(
        (plex.c.instance.in_(select(watch_stats.c.instance).distinct()), plex.c.instance), else_=DEFAULT_INSTANCE
    )
    # The newest live request per tmdb id says who asked for it.
    requests = (
        select(
            overseerr_requests.c.tmdb_id,
            func.max(overseerr_requests.c.id).label("request_id"),
        )
        .where(overseerr_requests.c.deleted_at.is_(None), overseerr_requests.c.tmdb_id.is_not(None))
        .group_by(overseerr_requests.c.tmdb_id)
        .subquery("latest_request")
    )
    requester = overseerr_requests.alias("requester")
    query = (
        select(
            plex.c.server_id,
            plex.c.rating_key,
            plex.c.type,
            plex.c.title,
            plex.c.year,
            plex.c.imdb_id,
            plex.c.tmdb_id,
            plex.c.tvdb_id,
            sonarr.c.item_id.label("sonarr_series_id"),
            radarr.c.item_id.label("radarr_movie_id"),
            requests.c.request_id.label("overseerr_request_id"),
            requester.c.requested_by,
            func.coalesce(watch_stats.c.plays, 0).label("plays"),
            watch_stats.c.last_watched_at,
            func.coalesce(watch_stats.c.total_watch_seconds, 0).label("total_watch_seconds"),
            literal(now, media_catalog.c.computed_at.type).label("computed_at"),
        )
        .select_from(plex)
        .outerjoin(sonarr, (sonarr.c.server_id == plex.c.server_id) & (sonarr.c.rating_key == plex.c.rating_key))
        .outerjoin(radarr, (radarr.c.server_id == plex.c.server_id) & (radarr.c.rating_key == plex.c.rating_key))
        .outerjoin(requests, requests.c.tmdb_id == plex.c.tmdb_id)
        .outerjoin(requester, requester.c.id == requests.c.request_id)
        .outerjoin(watch_stats, (watch_stats.c.rating_key == plex.c.rating_key) & (watch_stats.c.instance == tautulli))
        .where(plex.c.deleted_at.is_(None), plex.c.type.in_(("movie", "show")))
    )
    with engine.begin() as connection:
        connection.execute(delete(copies))
        connection.execute(insert(copies).from_select(list(copies.c.keys()), _copies(now)))
        connection.execute(delete(media_catalog))
        connection.execute(insert(media_catalog).from_select(list(media_catalog.c.keys()), query))
        total = connection.execute(select(func.count()).select_from(media_catalog)).scalar_one()
        matched = connection.execute(
            select(func.count())
            .select_from(media_catalog)
            .where(media_catalog.c.sonarr_series_id.is_not(None) | media_catalog.c.radarr_movie_id.is_not(None))
        ).scalar_one()
    return {"rows": total, "matched": matched}
