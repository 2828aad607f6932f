"""Tautulli simulator: ``/api/v2?apikey=…&cmd=…`` with the commands a history sync uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex_simulators._app import build_app, json_response, query_int
from smartplex_simulators._format import day
from smartplex_simulators.plex_items import (
    SECTIONS,
    SERVER_NAME,
    Season,
    metadata,
    recent_metadata,
    recently_added,
    section_of,
    slug,
)
from smartplex_simulators.universe import Episode, Movie, Play, Show, Universe

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

VERSION = "v2.17.2"


def _envelope(data: Any, status: int = 200, message: str | None = None) -> Response:
    result = "success" if status == 200 and message is None else "error"
    return json_response({"response": {"result": result, "message": message, "data": data}}, status)


def history_row(play: Play) -> dict[str, Any]:
    item, user = play.item, play.user
    duration = play.stopped - play.started
    if isinstance(item, Episode):
        show = item.show
        family: dict[str, Any] = {
            "parent_rating_key": play.parent_rating_key,
            "grandparent_rating_key": play.grandparent_rating_key,
            "full_title": f"{show.title} - {item.title}",
            "title": item.title,
            "parent_title": f"Season {item.season}",
            "grandparent_title": show.title,
            "original_title": "",
            "year": show.year,
            "media_index": item.number,
            "parent_media_index": item.season,
        }
        aired = day(item.air_date)
    else:
        family = {
            "parent_rating_key": None,
            "grandparent_rating_key": None,
            "full_title": item.title,
            "title": item.title,
            "parent_title": "",
            "grandparent_title": "",
            "original_title": "",
            "year": item.year,
            "media_index": None,
            "parent_media_index": None,
        }
        aired = f"{item.year}-06-01"
    return {
        "reference_id": play.id,
        "row_id": play.id,
        "id": play.id,
        "date": play.started,
        "started": play.started,
        "stopped": play.stopped,
        "duration": duration,
        "play_duration": duration,
        "paused_counter": 0,
        "user_id": user.plex_id,
        "user": user.username,
        "friendly_name": user.username.capitalize(),
        "user_thumb": f"https://plex.tv/users/{user.plex_id:016x}/avatar?c={user.created}",
        "platform": "Android",
        "product": "Plex for Android (TV)",
        "player": "Living Room Shield",
        "ip_address": "192.168.1.42",
        "live": 0,
        "machine_id": f"{user.plex_id:032x}",
        "location": "lan",
        "secure": 1,
        "relayed": 0,
        "media_type": item.kind,
        "rating_key": play.rating_key,
        **family,
        "thumb": f"/library/metadata/{play.rating_key}/thumb/{item.plex_updated}",
        "originally_available_at": aired,
        "guid": f"plex://{item.kind}/{item.guid_hex}",
        "transcode_decision": "direct play",
        "percent_complete": play.percent,
        # Tautulli steps watched_status by quarters; whole values are ints.
        "watched_status": 1 if play.percent >= 90 else 0.5 if play.percent >= 50 else 0,
        "group_count": 1,
        "group_ids": str(play.id),
        "state": None,
        "session_key": None,
    }


def _people(data: dict[str, Any], kind: str) -> list[str]:
    return [tag["tag"] for tag in data.get(kind, ())]


def item_fields(item: Movie | Show | Episode | Season) -> dict[str, Any]:
    """An item as Tautulli's metadata commands describe it: Plex's fields, renamed, all strings."""
    if isinstance(item, Season):
        data = recent_metadata(item)
        show = item.show
        return {
            "media_type": "season",
            "section_id": "2",
            "library_name": SECTIONS["2"][1],
            "rating_key": data["ratingKey"],
            "parent_rating_key": data["parentRatingKey"],
            "grandparent_rating_key": "",
            "title": data["title"],
            "parent_title": show.title,
            "grandparent_title": "",
            "original_title": "",
            "sort_title": "",
            "media_index": str(item.number),
            "parent_media_index": "1",
            "studio": "",
            "content_rating": "",
            "summary": "",
            "tagline": "",
            "rating": "",
            "rating_image": "",
            "audience_rating": "",
            "audience_rating_image": "",
            "user_rating": "",
            "duration": "",
            "year": str(show.year),
            "thumb": data["thumb"],
            "parent_thumb": data["parentThumb"],
            "grandparent_thumb": "",
            "art": data["art"],
            "banner": "",
            "originally_available_at": "",
            "added_at": str(data["addedAt"]),
            "updated_at": str(data["updatedAt"]),
            "last_viewed_at": str(show.last_viewed or ""),
            "guid": data["guid"],
            "parent_guid": data["parentGuid"],
            "grandparent_guid": "",
            "directors": [],
            "writers": [],
            "actors": [],
            "genres": [],
            "labels": [],
            "collections": [],
            "guids": [],
            "full_title": data["title"],
        }
    data = metadata(item)
    section, library, _ = section_of(item)
    series = item.show if isinstance(item, Episode) else None
    banner = f"/library/metadata/{series.rating_key}/banner/{series.plex_updated}" if series else ""
    return {
        "media_type": item.kind,
        "section_id": section,
        "library_name": library,
        "rating_key": data["ratingKey"],
        "parent_rating_key": data.get("parentRatingKey", ""),
        "grandparent_rating_key": data.get("grandparentRatingKey", ""),
        "title": item.title,
        "parent_title": data.get("parentTitle", ""),
        "grandparent_title": data.get("grandparentTitle", ""),
        "original_title": "",
        "sort_title": item.title,
        "media_index": str(data["index"]) if series else "",
        "parent_media_index": str(data.get("parentIndex", "")),
        "studio": series.network if series else data["studio"],
        "content_rating": data["contentRating"],
        "summary": data["summary"],
        "tagline": data.get("tagline", ""),
        "rating": str(data.get("rating", "")),
        "rating_image": data.get("ratingImage", ""),
        "audience_rating": str(data["audienceRating"]),
        "audience_rating_image": data["audienceRatingImage"],
        "user_rating": "",
        "duration": str(data["duration"]),
        "year": str(data["year"]),
        "thumb": data["thumb"],
        "parent_thumb": data.get("parentThumb", ""),
        "grandparent_thumb": data.get("grandparentThumb", ""),
        "art": data["art"],
        "banner": banner,
        "originally_available_at": data["originallyAvailableAt"],
        "added_at": str(item.plex_added),
        "updated_at": str(item.plex_updated),
        "last_viewed_at": str(item.last_viewed or ""),
        "guid": data["guid"],
        "parent_guid": data.get("parentGuid", ""),
        "grandparent_guid": data.get("grandparentGuid", ""),
        "directors": _people(data, "Director"),
        "writers": _people(data, "Writer"),
        "actors": _people(data, "Role"),
        "genres": _people(data, "Genre"),
        "labels": [],
        "collections": [],
        "guids": [g["id"] for g in data["Guid"]],
        "full_title": f"{series.title} - {item.title}" if series else item.title,
    }


#: get_recently_added's fields: the metadata fields less the parents' guids and years.
_RECENT_FIELDS = (
    "media_type",
    "section_id",
    "library_name",
    "rating_key",
    "parent_rating_key",
    "grandparent_rating_key",
    "title",
    "parent_title",
    "grandparent_title",
    "original_title",
    "sort_title",
    "media_index",
    "parent_media_index",
    "studio",
    "content_rating",
    "summary",
    "tagline",
    "rating",
    "rating_image",
    "audience_rating",
    "audience_rating_image",
    "user_rating",
    "duration",
    "year",
    "thumb",
    "parent_thumb",
    "grandparent_thumb",
    "art",
    "banner",
    "originally_available_at",
    "added_at",
    "updated_at",
    "last_viewed_at",
    "guid",
    "directors",
    "writers",
    "actors",
    "genres",
    "labels",
    "collections",
    "guids",
    "full_title",
)


def _media_info(item: Movie | Episode) -> list[dict[str, Any]]:
    media = metadata(item)["Media"][0]
    part = media["Part"][0]
    return [
        {
            "id": str(media["id"]),
            "container": "mkv",
            "bitrate": str(media["bitrate"]),
            "height": str(media["height"]),
            "width": str(media["width"]),
            "aspect_ratio": str(media["aspectRatio"]),
            "video_codec": media["videoCodec"],
            "video_resolution": media["videoResolution"],
            "video_full_resolution": f"{media['videoResolution']}p",
            "video_framerate": "24p",
            "video_profile": media["videoProfile"],
            "audio_codec": "eac3",
            "audio_channels": "6",
            "audio_channel_layout": "5.1(side)",
            "audio_profile": "",
            "optimized_version": 0,
            "channel_call_sign": "",
            "channel_identifier": "",
            "channel_thumb": "",
            "parts": [
                {
                    "id": str(part["id"]),
                    "file": part["file"],
                    "file_size": str(part["size"]),
                    "indexes": 1,
                    "streams": [],
                    "selected": 0,
                }
            ],
        }
    ]


class TautulliSimulator:
    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.universe: Universe = simulation.universe
        self.commands: dict[str, Callable[[Request], Response]] = {
            "get_history": self.get_history,
            "get_libraries": self.get_libraries,
            "get_tautulli_info": self.get_tautulli_info,
            "get_server_friendly_name": self.get_server_friendly_name,
            "get_recently_added": self.get_recently_added,
            "get_metadata": self.get_metadata,
            "get_library_media_info": self.get_library_media_info,
        }

    def routes(self) -> list[Route]:
        return [Route("/api/v2", self.api), Route("/api/v2/", self.api)]

    def authenticate(self, request: Request) -> Response | None:
        if request.query_params.get("apikey") == self.sim.keys["tautulli"]:
            return None
        # Tautulli sets 401, then answers every API error with 400: a bad key is a 400 too.
        return _envelope({}, 400, "Invalid apikey")

    async def api(self, request: Request) -> Response:
        cmd = request.query_params.get("cmd", "")
        handler = self.commands.get(cmd)
        if handler is None:
            return _envelope({}, message=f"Unknown command: {cmd}")
        with self.universe.lock:
            return handler(request)

    def get_history(self, request: Request) -> Response:
        params = request.query_params
        plays = self.universe.plays
        total = len(plays)
        zone = ZoneInfo(self.universe.timezone)
        # `after`/`before` are inclusive local dates of `started`: turn them into epoch bounds.
        if "after" in params:
            low = _local_midnight(date.fromisoformat(params["after"]), zone)
            plays = [p for p in plays if p.started >= low]
        if "before" in params:
            high = _local_midnight(date.fromisoformat(params["before"]) + timedelta(days=1), zone)
            plays = [p for p in plays if p.started < high]
        by: tuple[tuple[str, Callable[[Play], int]], ...] = (
            ("user_id", lambda p: p.user.plex_id),
            ("rating_key", lambda p: p.rating_key),
        )
        for name, get in by:
            if name in params:
                plays = [p for p in plays if get(p) == int(params[name])]
        if "media_type" in params:
            plays = [p for p in plays if p.item.kind == params["media_type"]]
        if params.get("order_dir", "desc") == "desc":
            plays = plays[::-1]
        start, length = query_int(request, "start", 0), query_int(request, "length", 25)
        rows = [history_row(p) for p in plays[start : start + length]]
        if params.get("include_activity", "1") != "0" and start == 0:
            # Tautulli's default (HISTORY_TABLE_ACTIVITY): what is playing now heads the first page,
            # as rows with no id.
            rows = [
                {**history_row(s), "id": None, "row_id": None, "reference_id": None, "state": "playing"}
                for s in self.universe.sessions
            ] + rows
        return _envelope(
            {
                "recordsFiltered": len(plays),
                "recordsTotal": total,
                "data": rows,
                "draw": query_int(request, "draw", 1),
                "filter_duration": "0 mins",
                "total_duration": "0 mins",
            }
        )

    def get_libraries(self, request: Request) -> Response:
        libraries = []
        for key, (kind, title, _, _, _) in SECTIONS.items():
            row: dict[str, Any] = {
                "section_id": key,
                "section_name": title,
                "section_type": kind,
                "agent": f"tv.plex.agents.{'movie' if kind == 'movie' else 'series'}",
                "thumb": f"/:/resources/{kind}.png",
                "art": f"/:/resources/{kind}-fanart.jpg",
            }
            if kind == "movie":
                row["count"] = str(len(self.universe.plex_section("movie")))
            else:
                shows = self.universe.plex_section("show")
                row.update(
                    {
                        "count": str(len(shows)),
                        "parent_count": str(sum(len(s.season_keys) for s in shows if isinstance(s, Show))),
                        "child_count": str(len(self.universe.plex_section("episode"))),
                    }
                )
            row["is_active"] = 1
            libraries.append(row)
        return _envelope(libraries)

    def get_tautulli_info(self, request: Request) -> Response:
        return _envelope(
            {
                "tautulli_install_type": "docker",
                "tautulli_version": VERSION,
                "tautulli_branch": "master",
                "tautulli_commit": "",
                "tautulli_platform": "Linux",
                "tautulli_platform_release": "6.1",
                "tautulli_platform_version": "",
                "tautulli_platform_linux_distro": "",
                "tautulli_platform_device_name": "tautulli",
                "tautulli_python_version": "3.11.9",
            }
        )

    def get_server_friendly_name(self, request: Request) -> Response:
        return _envelope(SERVER_NAME)

    def get_recently_added(self, request: Request) -> Response:
        if "count" not in request.query_params:
            return _envelope({}, message="Required parameter missing: count")
        entries = recently_added(self.universe, request.query_params.get("section_id"))
        start, count = query_int(request, "start", 0), query_int(request, "count", 0)
        rows = []
        for entry in entries[start : start + count]:
            fields = item_fields(entry)
            rows.append({**{key: fields[key] for key in _RECENT_FIELDS}, "child_count": ""})
        return _envelope({"recently_added": rows})

    def get_metadata(self, request: Request) -> Response:
        item = self.universe.plex.get(query_int(request, "rating_key", 0))
        if item is None:
            return _envelope({})  # Tautulli answers an unknown key with empty data
        fields = item_fields(item)
        show = item.show if isinstance(item, Episode) else None
        family = {
            "edition_title": "",
            "slug": "" if show else slug(fields["title"]),
            "parent_slug": "",
            "grandparent_slug": slug(show.title) if show else "",
            "parent_year": str(show.year) if show else "",
            "grandparent_year": str(show.year) if show else "",
        }
        markers = (
            [
                {
                    "id": item.rating_key,
                    "type": "credits",
                    "start_time_offset": 2_600_000,
                    "end_time_offset": 2_700_000,
                    "first": True,
                    "final": True,
                }
            ]
            if show
            else []
        )
        data = {
            **fields,
            **family,
            "markers": markers,
            "parent_guids": [],
            "grandparent_guids": [g["id"] for g in metadata(show)["Guid"]] if show else [],
            "children_count": 0 if not isinstance(item, Show) else len(item.episodes),
            "live": 0,
            "media_info": [] if isinstance(item, Show) else _media_info(item),
        }
        return _envelope(data)

    def get_library_media_info(self, request: Request) -> Response:
        section = request.query_params.get("section_id", "1")
        if section not in SECTIONS:
            return _envelope({}, message="Invalid section_id")
        kind, _, _, _, _ = SECTIONS[section]
        items = self.universe.plex_section(kind)
        plays: dict[int, list[Play]] = {}
        for play in self.universe.plays:
            key = play.item.show.rating_key if isinstance(play.item, Episode) else play.rating_key
            plays.setdefault(key or 0, []).append(play)
        start, length = query_int(request, "start", 0), query_int(request, "length", 25)
        sizes = {i.rating_key: _size_of(i) for i in items}
        rows = []
        for item in items[start : start + length]:
            data = metadata(item, include_guids=False)
            media = (data.get("Media") or [{}])[0]
            watched = plays.get(item.rating_key or 0, [])
            rows.append(
                {
                    "section_id": int(section),
                    "section_type": kind,
                    "added_at": str(item.plex_added),
                    "media_type": item.kind,
                    "rating_key": data["ratingKey"],
                    "parent_rating_key": "",
                    "grandparent_rating_key": "",
                    "title": item.title,
                    "sort_title": item.title,
                    "year": str(data["year"]),
                    "media_index": "",
                    "parent_media_index": "",
                    "thumb": data["thumb"],
                    "container": media.get("container", ""),
                    "bitrate": str(media.get("bitrate", "")),
                    "video_codec": media.get("videoCodec", ""),
                    "video_resolution": media.get("videoResolution", ""),
                    "video_framerate": media.get("videoFrameRate", ""),
                    "audio_codec": media.get("audioCodec", ""),
                    "audio_channels": str(media.get("audioChannels", "")),
                    "file_size": sizes[item.rating_key],
                    "last_played": max(p.stopped for p in watched) if watched else None,
                    "play_count": len(watched) or None,
                }
            )
        total = sum(sizes.values())
        return _envelope(
            {
                "draw": query_int(request, "draw", 1),
                "last_refreshed": self.universe.now,
                "recordsTotal": len(items),
                "recordsFiltered": len(items),
                "filtered_file_size": total,
                "total_file_size": total,
                "data": rows,
            }
        )


def _size_of(item: Movie | Show | Episode) -> int:
    if isinstance(item, Show):
        return sum(e.size for e in item.episodes if e.rating_key is not None)
    return item.size


def _local_midnight(when: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(when, time(), zone).timestamp())


def create_app(simulation: Simulation, url_base: str = "") -> Any:
    sim = TautulliSimulator(simulation)
    return build_app("tautulli", simulation, sim.routes(), sim.authenticate, url_base=url_base)
