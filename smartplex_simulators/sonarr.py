"""Sonarr v4 simulator: series, episodes, episode files and history under ``/api/v3``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex.instances import DEFAULT_INSTANCE
from smartplex_simulators._app import json_response
from smartplex_simulators._arr import (
    ArrFlavor,
    Downloads,
    create_arr_app,
    event_json,
    history_data,
    media_info,
    quality_json,
    query_params,
)
from smartplex_simulators._format import day, iso_seconds
from smartplex_simulators.universe import (
    ArrEvent,
    ArrLibrary,
    Episode,
    Show,
    episode_file,
    episode_relative_file,
    root_folder,
    show_folder,
)

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

WEB_SOURCE = "web"
EVENT_NUMBERS = {
    "grabbed": 1,
    "seriesFolderImported": 2,
    "downloadFolderImported": 3,
    "downloadFailed": 4,
    "episodeFileDeleted": 5,
    "episodeFileRenamed": 6,
    "downloadIgnored": 7,
}


def percent(part: int, whole: int) -> float:
    """Sonarr's percentOfEpisodes: one decimal, rounded down."""
    return math.floor(1000 * part / whole) / 10 if whole else 0.0


def _statistics(episodes: list[Episode], season_level: bool) -> dict[str, Any]:
    with_file = [e for e in episodes if e.file_id is not None]
    stats: dict[str, Any] = {}
    last_air = max((e.air_date for e in episodes), default=None)
    if season_level and last_air is not None:
        stats["previousAiring"] = iso_seconds(last_air)
    stats.update(
        {
            "episodeFileCount": len(with_file),
            "episodeCount": len(episodes),
            "totalEpisodeCount": len(episodes),
            "sizeOnDisk": sum(e.size for e in with_file),
            "releaseGroups": ["SIM"] if with_file else [],
            "percentOfEpisodes": percent(len(with_file), len(episodes)),
        }
    )
    return stats


def series_json(show: Show, library: ArrLibrary) -> dict[str, Any]:
    seasons = sorted({e.season for e in show.episodes})
    first = min((e.air_date for e in show.episodes), default=show.added)
    last = max((e.air_date for e in show.episodes), default=show.added)
    totals = _statistics(show.episodes, season_level=False)
    data: dict[str, Any] = {
        "title": show.title,
        "alternateTitles": [],
        "sortTitle": show.title.lower(),
        "status": "ended",
        "ended": True,
        "overview": f"{show.title}, a {show.genre.lower()} series.",
        "previousAiring": iso_seconds(last),
        "network": show.network,
        "airTime": "21:00",
        "images": [
            {
                "coverType": "poster",
                "url": f"/MediaCover/{show.id}/poster.jpg",
                "remoteUrl": f"https://artworks.thetvdb.com/banners/posters/{show.tvdb_id}-1.jpg",
            }
        ],
        "originalLanguage": {"id": 1, "name": "English"},
        "seasons": [
            {
                "seasonNumber": s,
                "monitored": True,
                "statistics": _statistics([e for e in show.episodes if e.season == s], season_level=True),
            }
            for s in seasons
        ],
        "year": show.year,
        "path": show_folder(show),
        "qualityProfileId": 4,
        "seasonFolder": True,
        "monitored": show.monitored,
        "monitorNewItems": "all",
        "useSceneNumbering": False,
        "runtime": 45,
        "tvdbId": show.tvdb_id,
        "tvRageId": 0,
        "tvMazeId": 0,
        "tmdbId": show.tmdb_id,
        "firstAired": iso_seconds(first - first % 86_400),
        "lastAired": iso_seconds(last - last % 86_400),
        "seriesType": "standard",
        "cleanTitle": show.title.lower().replace(" ", ""),
        "imdbId": show.imdb_id,
        "titleSlug": f"show-{show.id}",
        "rootFolderPath": f"{root_folder(show)}/",
        "certification": "TV-MA",
        "genres": [show.genre],
        "tags": [],
        "added": iso_seconds(show.added),
        "ratings": {"votes": 1000 + show.id, "value": 8.2},
        "statistics": {"seasonCount": len(seasons), **totals},
        "languageProfileId": 1,
        "id": show.id,
    }
    return data


def episode_json(episode: Episode) -> dict[str, Any]:
    return {
        "seriesId": episode.show.id,
        "tvdbId": episode.tvdb_id,
        "episodeFileId": episode.file_id or 0,
        "seasonNumber": episode.season,
        "episodeNumber": episode.number,
        "title": episode.title,
        "airDate": day(episode.air_date),
        "airDateUtc": iso_seconds(episode.air_date),
        "runtime": 45,
        "overview": "",
        "hasFile": episode.file_id is not None,
        "monitored": True,
        "absoluteEpisodeNumber": episode.number,
        "unverifiedSceneNumbering": False,
        "id": episode.id,
    }


def episode_file_json(episode: Episode) -> dict[str, Any]:
    assert episode.file_added is not None
    return {
        "seriesId": episode.show.id,
        "seasonNumber": episode.season,
        "relativePath": episode_relative_file(episode),
        "path": episode_file(episode),
        "size": episode.size,
        "dateAdded": iso_seconds(episode.file_added),
        "sceneName": episode_relative_file(episode)[10:-4],
        "releaseGroup": "SIM",
        "languages": [{"id": 1, "name": "English"}],
        "quality": quality_json(episode, WEB_SOURCE),
        "customFormats": [],
        "customFormatScore": 0,
        "indexerFlags": 0,
        "releaseType": "singleEpisode",
        "mediaInfo": media_info(episode),
        "qualityCutoffNotMet": False,
        "id": episode.file_id,
    }


_DOWNLOADS = Downloads(
    "SABnzbd", "NZBgeek (Prowlarr)", "https://nzbgeek.info/geekseek.php?guid=sim", "/data/usenet/complete/tv"
)


def history_json(event: ArrEvent, library: ArrLibrary) -> dict[str, Any]:
    episode = library.episodes.get(event.episode_id or 0)
    show = library.shows.get(event.target)
    size = str(episode.size) if episode else "0"
    release = {"indexerFlags": "0", "releaseType": "SingleEpisode"}
    data = history_data(
        event,
        _DOWNLOADS,
        size,
        episode_file(episode) if episode else "",
        grab_extra={
            "tvdbId": str(show.tvdb_id if show else 0),
            "tvRageId": "0",
            "imdbId": show.imdb_id if show else "",
            "protocol": "1",
            "customFormatScore": "0",
            "seriesMatchType": "Id",
            "releaseSource": "Rss",
            **release,
        },
        import_extra={"releaseType": "SingleEpisode"},
        delete_extra={"size": size, **release},
    )
    record = event_json(event, episode, WEB_SOURCE, data)
    return {"episodeId": event.episode_id, "seriesId": event.target, **record}


def _extra_routes(library: ArrLibrary) -> list[Route]:
    def episodes_of(request: Request) -> list[Episode] | None:
        show = library.shows.get(int(query_params(request).get("seriesid", 0)))
        return None if show is None else show.episodes

    async def episodes(request: Request) -> Response:
        with library.lock:
            found = episodes_of(request)
            if found is None:
                return json_response({"message": "seriesId, episodeIds or episodeFileId is required"}, 400)
            return json_response([episode_json(e) for e in found])

    async def episode_files(request: Request) -> Response:
        with library.lock:
            found = episodes_of(request) or []
            return json_response([episode_file_json(e) for e in found if e.file_id is not None])

    return [Route("/api/v3/episode", episodes), Route("/api/v3/episodefile", episode_files)]


FLAVOR = ArrFlavor(
    kind="sonarr",
    app_name="Sonarr",
    version="4.0.19.2979",
    resource="series",
    id_field="seriesId",
    external_filter="tvdbId",
    event_numbers=EVENT_NUMBERS,
    items=lambda u: u.shows,
    history=lambda u: u.sonarr_history,
    render=series_json,
    render_event=history_json,
    extra_routes=_extra_routes,
)


def create_app(simulation: Simulation, url_base: str = "", instance: str = DEFAULT_INSTANCE) -> Any:
    return create_arr_app(simulation, FLAVOR, url_base, instance)
