"""Radarr v5 simulator: movies, movie files and history under ``/api/v3``."""

from __future__ import annotations

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
)
from smartplex_simulators._format import iso_seconds
from smartplex_simulators.universe import ArrEvent, ArrLibrary, Movie, movie_file, movie_folder, root_folder

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

WEB_SOURCE = "webdl"
EVENT_NUMBERS = {
    "grabbed": 1,
    "downloadFolderImported": 3,
    "downloadFailed": 4,
    "movieFileDeleted": 6,
    "movieFolderImported": 7,
    "movieFileRenamed": 8,
    "downloadIgnored": 9,
}


def movie_file_json(movie: Movie) -> dict[str, Any]:
    assert movie.file_added is not None
    path = movie_file(movie)
    scene = f"{movie.title}.{movie.year}-SIM".replace(" ", ".")
    return {
        "movieId": movie.id,
        "relativePath": path.rsplit("/", 1)[1],
        "path": path,
        "size": movie.size,
        "dateAdded": iso_seconds(movie.file_added),
        "sceneName": scene,
        "releaseGroup": "SIM",
        "edition": "",
        "languages": [{"id": 1, "name": "English"}],
        "quality": quality_json(movie, WEB_SOURCE),
        "customFormats": [],
        "customFormatScore": 0,
        "indexerFlags": 0,
        "mediaInfo": media_info(movie),
        "originalFilePath": f"{scene}/{scene}.mkv",
        "qualityCutoffNotMet": False,
        "id": movie.file_id,
    }


def movie_json(movie: Movie, library: ArrLibrary) -> dict[str, Any]:
    has_file = movie.file_id is not None
    size = movie.size if has_file else 0
    release = iso_seconds(movie.added - movie.added % 86_400)
    rating = {"votes": 1000 + movie.id, "value": 7.5, "type": "user"}
    percent_rating = {"votes": 0, "value": 60 + movie.id % 40, "type": "user"}  # whole percents
    data: dict[str, Any] = {
        "title": movie.title,
        "originalTitle": movie.title,
        "originalLanguage": {"id": 1, "name": "English"},
        "alternateTitles": [],
        "secondaryYearSourceId": 0,
        "sortTitle": movie.title.lower(),
        "sizeOnDisk": size,
        "status": "released",
        "overview": f"{movie.title}, a {movie.genre.lower()} film.",
        "inCinemas": release,
        "physicalRelease": release,
        "digitalRelease": release,
        "releaseDate": release,
        "images": [
            {
                "coverType": "poster",
                "url": f"/MediaCover/{movie.id}/poster.jpg",
                "remoteUrl": f"https://image.tmdb.org/t/p/original/{movie.guid_hex[:12]}.jpg",
            }
        ],
        "website": "",
        "year": movie.year,
        "youTubeTrailerId": "",
        "studio": movie.studio,
        "path": movie_folder(movie),
        "qualityProfileId": 6,
        "hasFile": has_file,
        "movieFileId": movie.file_id or 0,
        "monitored": movie.monitored,
        "minimumAvailability": "released",
        "isAvailable": True,
        "folderName": movie_folder(movie),
        "runtime": 120,
        "cleanTitle": movie.title.lower().replace(" ", ""),
        "imdbId": movie.imdb_id,
        "tmdbId": movie.tmdb_id,
        "titleSlug": str(movie.tmdb_id),
        "rootFolderPath": root_folder(movie),
        "certification": "PG-13",
        "genres": [movie.genre],
        "keywords": [],
        "tags": [],
        "added": iso_seconds(movie.added),
        "ratings": {
            "imdb": rating,
            "tmdb": rating,
            "metacritic": percent_rating,
            "rottenTomatoes": percent_rating,
            "trakt": rating,
        },
    }
    if has_file:
        data["movieFile"] = movie_file_json(movie)
    data.update(
        {
            "popularity": 10.0 + movie.id % 90,
            "statistics": {
                "movieFileCount": int(has_file),
                "sizeOnDisk": size,
                "releaseGroups": ["SIM"] if has_file else [],
            },
            "id": movie.id,
        }
    )
    return data


_DOWNLOADS = Downloads(
    "qBittorrent", "TorrentLeech (Prowlarr)", "https://www.torrentleech.org/torrent/sim", "/data/torrents/movies"
)


def history_json(event: ArrEvent, library: ArrLibrary) -> dict[str, Any]:
    movie = library.movies.get(event.target)
    grab_ids = {"tmdbId": str(movie.tmdb_id), "imdbId": movie.imdb_id} if movie else {"tmdbId": "0", "imdbId": ""}
    data = history_data(
        event,
        _DOWNLOADS,
        str(movie.size) if movie else "0",
        movie_file(movie) if movie else "",
        grab_extra={
            **grab_ids,
            "protocol": "2",
            "customFormatScore": "0",
            "movieMatchType": "Id",
            "releaseSource": "Rss",
            "indexerFlags": "0",
            "indexerId": "4",
            "torrentInfoHash": event.download_id,
        },
        import_extra={},
        delete_extra={},
    )
    return {"movieId": event.target, **event_json(event, movie, WEB_SOURCE, data)}


def _extra_routes(library: ArrLibrary) -> list[Route]:
    async def movie_files(request: Request) -> Response:
        ids = {int(value) for name, value in request.query_params.multi_items() if name.lower() == "movieid"}
        with library.lock:
            movies = [library.movies[i] for i in sorted(ids) if i in library.movies]
            return json_response([movie_file_json(m) for m in movies if m.file_id is not None])

    return [Route("/api/v3/moviefile", movie_files)]


FLAVOR = ArrFlavor(
    kind="radarr",
    app_name="Radarr",
    version="5.28.0.10274",
    resource="movie",
    id_field="movieId",
    external_filter="tmdbId",
    event_numbers=EVENT_NUMBERS,
    items=lambda u: u.movies,
    history=lambda u: u.radarr_history,
    render=movie_json,
    render_event=history_json,
    extra_routes=_extra_routes,
)


def create_app(simulation: Simulation, url_base: str = "", instance: str = DEFAULT_INSTANCE) -> Any:
    return create_arr_app(simulation, FLAVOR, url_base, instance)
