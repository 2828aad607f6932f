"""Overseerr simulator: requests, media, users and status under ``/api/v1``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from smartplex_simulators._app import build_app, json_response, query_int
from smartplex_simulators._format import iso_millis
from smartplex_simulators.universe import Movie, Request, Show, Universe, User

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

VERSION = "1.34.0"
#: Overseerr's media status enum (``server/constants/media.ts``); the REST API sends the numbers.
MEDIA_STATUS_NAMES = {1: "UNKNOWN", 2: "PENDING", 3: "PROCESSING", 4: "PARTIALLY_AVAILABLE", 5: "AVAILABLE"}
_REQUEST_FILTERS = {"approved": {2}, "pending": {1}, "declined": {3}, "failed": {4}, "processing": {2}}
_FORBIDDEN = {"status": 403, "error": "You do not have permission to access this endpoint"}


def media_status(target: Movie | Show) -> int:
    """Available once in Plex (partially, for a show missing episodes); otherwise still processing."""
    if isinstance(target, Movie):
        return 5 if target.rating_key is not None else 3
    in_plex = sum(1 for e in target.episodes if e.rating_key is not None)
    return 5 if in_plex == len(target.episodes) else 4 if in_plex else 3


def _user(user: User, universe: Universe) -> dict[str, Any]:
    return {
        "permissions": 2 if user.id == 1 else 32,
        "id": user.id,
        "email": user.email,
        "plexUsername": user.username,
        "username": None,
        "recoveryLinkExpirationDate": None,
        "userType": 1,
        "plexId": user.plex_id,
        "avatar": f"https://plex.tv/users/{user.plex_id:016x}/avatar?c={user.created}",
        "movieQuotaLimit": None,
        "movieQuotaDays": None,
        "tvQuotaLimit": None,
        "tvQuotaDays": None,
        "createdAt": iso_millis(user.created),
        "updatedAt": iso_millis(user.created),
        "requestCount": universe.request_count(user),
        "displayName": user.username,
    }


def _media(target: Movie | Show, universe: Universe) -> dict[str, Any]:
    is_movie = isinstance(target, Movie)
    key = target.rating_key
    updated = max(target.added, target.plex_updated)
    seasons = (
        []
        if not isinstance(target, Show)
        else [
            {
                "id": target.id * 100 + season,
                "seasonNumber": season,
                "status": 5 if all(e.rating_key for e in target.episodes if e.season == season) else 3,
                "status4k": 1,
                "createdAt": iso_millis(target.added),
                "updatedAt": iso_millis(updated),
            }
            for season in sorted({e.season for e in target.episodes})
        ]
    )
    slug = str(target.tmdb_id) if is_movie else f"show-{target.id}"
    plex_path = f"%2Flibrary%2Fmetadata%2F{key}"
    return {
        "downloadStatus": [],
        "downloadStatus4k": [],
        "id": universe.media_id(target),
        "mediaType": "movie" if is_movie else "tv",
        "tmdbId": target.tmdb_id,
        "tvdbId": target.tvdb_id if isinstance(target, Show) else None,
        "imdbId": None,
        "status": media_status(target),
        "status4k": 1,
        "createdAt": iso_millis(target.added),
        "updatedAt": iso_millis(updated),
        "lastSeasonChange": iso_millis(target.added),
        "mediaAddedAt": iso_millis(target.plex_added) if key is not None else None,
        "serviceId": 0,
        "serviceId4k": None,
        "externalServiceId": target.id,
        "externalServiceId4k": None,
        "externalServiceSlug": slug,
        "externalServiceSlug4k": None,
        "ratingKey": str(key) if key is not None else None,
        "ratingKey4k": None,
        "seasons": seasons,
        "plexUrl": f"https://app.plex.tv/desktop#!/server/{universe.machine_id}/details?key={plex_path}",
        "iOSPlexUrl": f"plex://preplay/?metadataKey={plex_path}&server={universe.machine_id}",
        "serviceUrl": (
            f"https://radarr.example.com/movie/{slug}" if is_movie else f"https://sonarr.example.com/series/{slug}"
        ),
    }


def request_json(request: Request, universe: Universe) -> dict[str, Any]:
    target = request.target
    is_movie = isinstance(target, Movie)
    seasons = (
        []
        if not isinstance(target, Show)
        else [
            {
                "id": request.id * 100 + season,
                "seasonNumber": season,
                "status": request.status,
                "createdAt": iso_millis(request.created),
                "updatedAt": iso_millis(request.updated),
            }
            for season in sorted({e.season for e in target.episodes})
        ]
    )
    return {
        "id": request.id,
        "status": request.status,
        "createdAt": iso_millis(request.created),
        "updatedAt": iso_millis(request.updated),
        "type": "movie" if is_movie else "tv",
        "is4k": False,
        "serverId": 0,
        "profileId": 6 if is_movie else 4,
        "rootFolder": "/data/media/movies" if is_movie else "/data/media/tv",
        "languageProfileId": None if is_movie else 1,
        "tags": [],
        "isAutoRequest": False,
        "media": _media(target, universe),
        "seasons": seasons,
        "modifiedBy": _user(request.modified_by, universe) if request.modified_by else None,
        "requestedBy": _user(request.user, universe),
        "seasonCount": len(seasons),
    }


def _page(request: HttpRequest, rows: list[Any], default_take: int) -> tuple[list[Any], dict[str, int]]:
    take = max(1, query_int(request, "take", default_take))
    skip = query_int(request, "skip", 0)
    info = {
        "pages": math.ceil(len(rows) / take),
        "pageSize": take,
        "results": len(rows),
        "page": math.ceil(skip / take) + 1,
    }
    return rows[skip : skip + take], info


class OverseerrSimulator:
    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.universe = simulation.universe

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/status", self.status),
            Route("/api/v1/request", self.requests),
            Route("/api/v1/request/{id:int}", self.request),
            Route("/api/v1/media", self.media),
            Route("/api/v1/user", self.users),
        ]

    def authenticate(self, request: HttpRequest) -> Response | None:
        if request.headers.get("x-api-key") == self.sim.keys["overseerr"]:
            return None
        return json_response(_FORBIDDEN, 403)

    async def status(self, request: HttpRequest) -> Response:
        return json_response(
            {
                "version": VERSION,
                "commitTag": "46a9b244efd81e0e70a16a851252114bc2d3c2ca",
                "updateAvailable": False,
                "commitsBehind": 0,
                "restartRequired": False,
            }
        )

    async def requests(self, request: HttpRequest) -> Response:
        params = request.query_params
        with self.universe.lock:
            rows = list(self.universe.requests.values())
            statuses = _REQUEST_FILTERS.get(params.get("filter", "all"))
            if statuses is not None:
                rows = [r for r in rows if r.status in statuses]
            if "requestedBy" in params:
                rows = [r for r in rows if r.user.id == int(params["requestedBy"])]
            if params.get("sort") == "modified":
                rows.sort(key=lambda r: (r.updated, r.id), reverse=True)
            else:
                rows.reverse()  # "added": newest request id first
            page, info = _page(request, rows, 10)
            results = [request_json(r, self.universe) for r in page]
        return json_response({"pageInfo": info, "results": results})

    async def request(self, request: HttpRequest) -> Response:
        with self.universe.lock:
            found = self.universe.requests.get(request.path_params["id"])
            if found is None:
                return json_response({"message": "Request not found."}, 404)
            return json_response(request_json(found, self.universe))

    async def media(self, request: HttpRequest) -> Response:
        with self.universe.lock:
            targets = {id(r.target): r.target for r in self.universe.requests.values()}
            rows = sorted(targets.values(), key=lambda t: self.universe.media_id(t), reverse=True)
            if request.query_params.get("sort") == "modified":
                rows.sort(key=lambda t: max(t.added, t.plex_updated), reverse=True)
            page, info = _page(request, rows, 20)
            results = [_media(t, self.universe) for t in page]
        return json_response({"pageInfo": info, "results": results})

    async def users(self, request: HttpRequest) -> Response:
        with self.universe.lock:
            page, info = _page(request, self.universe.users, 10)
            results = [_user(u, self.universe) for u in page]
        return json_response({"pageInfo": info, "results": results})


def create_app(simulation: Simulation, url_base: str = "") -> Any:
    sim = OverseerrSimulator(simulation)
    return build_app("overseerr", simulation, sim.routes(), sim.authenticate, url_base=url_base)
