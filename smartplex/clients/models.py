"""Typed results of the clients, carrying the ids the syncs key and join on.

Each model keeps the item's full JSON in ``raw`` so a sync can store what it does not model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from smartplex.clients._time import from_epoch, from_iso

Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExternalIds:
    """Ids shared across services: what joins a Plex item to Sonarr, Radarr and Overseerr."""

    imdb: str | None = None
    tmdb: int | None = None
    tvdb: int | None = None

    @classmethod
    def from_guids(cls, guids: list[str]) -> ExternalIds:
        """From Plex ``Guid[].id`` / Tautulli ``guids`` strings such as ``tmdb://693134``."""
        found: dict[str, str] = {}
        for guid in guids:
            scheme, sep, value = guid.partition("://")
            if sep and scheme in ("imdb", "tmdb", "tvdb"):
                found.setdefault(scheme, value)
        return cls(
            imdb=found.get("imdb"),
            tmdb=int_or_none(found.get("tmdb")),
            tvdb=int_or_none(found.get("tvdb")),
        )


@dataclass(frozen=True, slots=True)
class PlexItem:
    """A movie, show or episode; keyed on ``rating_key`` (server-local) and ``guid`` (stable)."""

    rating_key: str
    guid: str
    type: str
    title: str
    section_id: str
    ids: ExternalIds
    added_at: datetime | None
    updated_at: datetime | None
    last_viewed_at: datetime | None
    view_count: int
    year: int | None = None
    parent_rating_key: str | None = None
    grandparent_rating_key: str | None = None
    grandparent_guid: str | None = None
    files: tuple[str, ...] = ()
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw, section_id: str) -> PlexItem:
        return cls(
            rating_key=str(data["ratingKey"]),
            guid=data.get("guid", ""),
            type=data["type"],
            title=data.get("title", ""),
            section_id=str(data.get("librarySectionID", section_id)),
            ids=ExternalIds.from_guids([g["id"] for g in data.get("Guid", ())]),
            added_at=from_epoch(data.get("addedAt")),
            updated_at=from_epoch(data.get("updatedAt")),
            last_viewed_at=from_epoch(data.get("lastViewedAt")),
            view_count=int(data.get("viewCount", 0)),
            year=data.get("year"),
            parent_rating_key=data.get("parentRatingKey"),
            grandparent_rating_key=data.get("grandparentRatingKey"),
            grandparent_guid=data.get("grandparentGuid"),
            files=tuple(part["file"] for media in data.get("Media", ()) for part in media.get("Part", ())),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TautulliPlay:
    """One row of Tautulli's watch history; ``row_id`` is unique, ``rating_key`` joins to Plex."""

    row_id: int
    reference_id: int | None
    rating_key: int
    parent_rating_key: int | None
    grandparent_rating_key: int | None
    guid: str
    media_type: str
    user_id: int
    user: str
    started: datetime
    stopped: datetime | None
    percent_complete: int
    watched_status: float
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> TautulliPlay:
        started = from_epoch(data.get("started") or data["date"])
        assert started is not None  # `date` is required in every history row
        return cls(
            row_id=int(data["id"]),
            reference_id=int_or_none(data.get("reference_id")),
            rating_key=int(data["rating_key"]),
            parent_rating_key=int_or_none(data.get("parent_rating_key")),
            grandparent_rating_key=int_or_none(data.get("grandparent_rating_key")),
            guid=data.get("guid") or "",
            media_type=data.get("media_type") or "",
            user_id=int(data["user_id"]),
            user=data.get("user") or "",
            started=started,
            stopped=from_epoch(data.get("stopped")),
            percent_complete=int(data.get("percent_complete") or 0),
            watched_status=float(data.get("watched_status") or 0),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrItem:
    """What a Sonarr series and a Radarr movie share; ``id`` is local to the instance."""

    id: int
    imdb_id: str | None
    title: str
    path: str
    monitored: bool
    status: str
    added: datetime | None
    size_on_disk: int
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def _shared(data: Raw, size_on_disk: int) -> dict[str, Any]:
        return {
            "id": int(data["id"]),
            "imdb_id": data.get("imdbId") or None,
            "title": data.get("title", ""),
            "path": data.get("path", ""),
            "monitored": bool(data.get("monitored", False)),
            "status": data.get("status", ""),
            "added": from_iso(data.get("added")),
            "size_on_disk": size_on_disk,
            "raw": data,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SonarrSeries(ArrItem):
    """A Sonarr series; ``tvdb_id`` is its primary external id."""

    tvdb_id: int | None
    tmdb_id: int | None
    title_slug: str

    @classmethod
    def from_api(cls, data: Raw) -> SonarrSeries:
        return cls(
            **cls._shared(data, int(data.get("statistics", {}).get("sizeOnDisk", 0))),
            tvdb_id=data.get("tvdbId") or None,
            tmdb_id=data.get("tmdbId") or None,
            title_slug=data.get("titleSlug", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RadarrMovie(ArrItem):
    """A Radarr movie; ``tmdb_id`` is its primary external id."""

    tmdb_id: int
    year: int | None
    has_file: bool

    @classmethod
    def from_api(cls, data: Raw) -> RadarrMovie:
        return cls(
            **cls._shared(data, int(data.get("sizeOnDisk", 0))),
            tmdb_id=int(data["tmdbId"]),
            year=data.get("year"),
            has_file=bool(data.get("hasFile", False)),
        )


@dataclass(frozen=True, slots=True)
class OverseerrRequest:
    """An Overseerr request with its media's ids: tmdb/tvdb, the Plex ``rating_key`` and the *arr id."""

    id: int
    status: int
    type: str
    is_4k: bool
    created_at: datetime | None
    updated_at: datetime | None
    requested_by_id: int | None
    media_id: int | None
    tmdb_id: int | None
    tvdb_id: int | None
    rating_key: str | None
    external_service_id: int | None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> OverseerrRequest:
        media = data.get("media") or {}
        return cls(
            id=int(data["id"]),
            status=int(data["status"]),
            type=data.get("type", ""),
            is_4k=bool(data.get("is4k", False)),
            created_at=from_iso(data.get("createdAt")),
            updated_at=from_iso(data.get("updatedAt")),
            requested_by_id=(data.get("requestedBy") or {}).get("id"),
            media_id=media.get("id"),
            tmdb_id=media.get("tmdbId"),
            tvdb_id=media.get("tvdbId"),
            rating_key=media.get("ratingKey"),
            external_service_id=media.get("externalServiceId"),
            raw=data,
        )


DeletedKind = Literal["series", "movie", "episodeFile", "movieFile", "plexItem", "request"]


@dataclass(frozen=True, slots=True)
class Deleted:
    """Something removed, for the sync to soft-delete.

    ``id`` is the id the service's table keys on: the series (Sonarr) or movie (Radarr) id, a Plex
    ratingKey, an Overseerr request id. For ``series``, ``movie``, ``plexItem`` and ``request`` that
    item is gone (the service answered that it has no such item); for ``episodeFile`` and
    ``movieFile`` it lost the file at ``path`` (Sonarr also names the ``episode_id``). History
    records no file id, only the path.
    """

    kind: DeletedKind
    id: int | str
    at: datetime | None = None
    path: str | None = None
    episode_id: int | None = None


@dataclass(frozen=True, slots=True)
class Missing:
    """An item asked for by id that the service did not return, where that proves no deletion
    (Tautulli: no play of a ratingKey yet). Nothing is written for it; the webhook that named it
    is told."""

    id: int | str


@dataclass(frozen=True, slots=True)
class ChangeFeed:
    """What a service's own change feeds say changed since a point in time (a catch-up's poll).

    ``items``: changed items, as the sync's item type, to compare with the table. ``ids``: items named
    without their data (Sonarr/Radarr history). ``totals``: how many items the service holds, per
    scope (a Plex section and type, all Overseerr requests), for a count check that finds removals no
    feed records. ``fingerprint``: digests of the whole listing and of each item (Sonarr/Radarr);
    ``listing``: that listing, parsed when there were no item digests to compare. ``health``: the service's own
    messages saying its notifications (our webhook among them) are disabled after failures.
    """

    items: list[Any] = field(default_factory=list)
    ids: set[int | str] = field(default_factory=set)
    totals: dict[str, int] = field(default_factory=dict)
    fingerprint: dict[str, Any] | None = None
    listing: list[Any] | None = None
    health: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What ``smartplex check`` prints: who answered, which version, how big the library is."""

    kind: str
    name: str
    version: str
    library_size: int


def int_or_none(value: Any) -> int | None:
    """An id or count as the services write it (int, numeric string, ``50.0``, or empty for none)."""
    if value is None or value == "":
        return None
    return int(value)
