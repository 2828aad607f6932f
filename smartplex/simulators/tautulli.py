"""Tautulli simulator: ``/api/v2?apikey=…&cmd=…`` with the commands a history sync uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex.simulators._app import build_app, json_response, query_int
from smartplex.simulators._format import day
from smartplex.simulators.plex import SECTIONS, SERVER_NAME
from smartplex.simulators.universe import Episode, Play, Show, Universe

if TYPE_CHECKING:
    from smartplex.simulators.simulation import Simulation

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
            "parent_rating_key": show.season_keys.get(item.season), "grandparent_rating_key": show.rating_key,
            "full_title": f"{show.title} - {item.title}", "title": item.title,
            "parent_title": f"Season {item.season}", "grandparent_title": show.title, "original_title": "",
            "year": show.year, "media_index": item.number, "parent_media_index": item.season}
        aired = day(item.air_date)
    else:
        family = {"parent_rating_key": None, "grandparent_rating_key": None, "full_title": item.title,
                  "title": item.title, "parent_title": "", "grandparent_title": "", "original_title": "",
                  "year": item.year, "media_index": None, "parent_media_index": None}
        aired = f"{item.year}-06-01"
    return {
        "reference_id": play.id, "row_id": play.id, "id": play.id, "date": play.started, "started": play.started,
        "stopped": play.stopped, "duration": duration, "play_duration": duration, "paused_counter": 0,
        "user_id": user.plex_id, "user": user.username, "friendly_name": user.username.capitalize(),
        "user_thumb": f"https://plex.tv/users/{user.plex_id:016x}/avatar?c={user.created}",
        "platform": "Android", "product": "Plex for Android (TV)", "player": "Living Room Shield",
        "ip_address": "192.168.1.42", "live": 0, "machine_id": f"{user.plex_id:032x}", "location": "lan",
        "secure": 1, "relayed": 0, "media_type": item.kind, "rating_key": play.rating_key, **family,
        "thumb": f"/library/metadata/{play.rating_key}/thumb/{item.plex_updated}",
        "originally_available_at": aired, "guid": f"plex://{item.kind}/{item.guid_hex}",
        "transcode_decision": "direct play", "percent_complete": play.percent,
        # Tautulli steps watched_status by quarters; whole values are ints.
        "watched_status": 1 if play.percent >= 90 else 0.5 if play.percent >= 50 else 0,
        "group_count": 1, "group_ids": str(play.id), "state": None, "session_key": None,
    }


class TautulliSimulator:
    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.universe: Universe = simulation.universe
        self.commands: dict[str, Callable[[Request], Response]] = {
            "get_history": self.get_history, "get_libraries": self.get_libraries,
            "get_tautulli_info": self.get_tautulli_info, "get_server_friendly_name": self.get_server_friendly_name,
        }

    def routes(self) -> list[Route]:
        return [Route("/api/v2", self.api), Route("/api/v2/", self.api)]

    def authenticate(self, request: Request) -> Response | None:
        if request.query_params.get("apikey") == self.sim.keys["tautulli"]:
            return None
        return _envelope({}, 401, "Invalid apikey")

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
        by: tuple[tuple[str, Callable[[Play], int]], ...] = (("user_id", lambda p: p.user.plex_id),
                                                             ("rating_key", lambda p: p.rating_key))
        for name, get in by:
            if name in params:
                plays = [p for p in plays if get(p) == int(params[name])]
        if "media_type" in params:
            plays = [p for p in plays if p.item.kind == params["media_type"]]
        if params.get("order_dir", "desc") == "desc":
            plays = plays[::-1]
        start, length = query_int(request, "start", 0), query_int(request, "length", 25)
        rows = [history_row(p) for p in plays[start:start + length]]
        return _envelope({"recordsFiltered": len(plays), "recordsTotal": total, "data": rows,
                          "draw": query_int(request, "draw", 1), "filter_duration": "0 mins",
                          "total_duration": "0 mins"})

    def get_libraries(self, request: Request) -> Response:
        libraries = []
        for key, (kind, title, _, _, _) in SECTIONS.items():
            row: dict[str, Any] = {"section_id": key, "section_name": title, "section_type": kind,
                                   "agent": f"tv.plex.agents.{'movie' if kind == 'movie' else 'series'}",
                                   "thumb": f"/:/resources/{kind}.png", "art": f"/:/resources/{kind}-fanart.jpg"}
            if kind == "movie":
                row["count"] = str(len(self.universe.plex_section("movie")))
            else:
                shows = self.universe.plex_section("show")
                row.update({"count": str(len(shows)),
                            "parent_count": str(sum(len(s.season_keys) for s in shows if isinstance(s, Show))),
                            "child_count": str(len(self.universe.plex_section("episode")))})
            row["is_active"] = 1
            libraries.append(row)
        return _envelope(libraries)

    def get_tautulli_info(self, request: Request) -> Response:
        return _envelope({"tautulli_install_type": "docker", "tautulli_version": VERSION,
                          "tautulli_branch": "master", "tautulli_commit": "", "tautulli_platform": "Linux",
                          "tautulli_platform_release": "6.1", "tautulli_platform_version": "",
                          "tautulli_platform_linux_distro": "", "tautulli_platform_device_name": "tautulli",
                          "tautulli_python_version": "3.11.9"})

    def get_server_friendly_name(self, request: Request) -> Response:
        return _envelope(SERVER_NAME)


def _local_midnight(when: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(when, time(), zone).timestamp())


def create_app(simulation: Simulation, url_base: str = "") -> Any:
    sim = TautulliSimulator(simulation)
    return build_app("tautulli", simulation, sim.routes(), sim.authenticate, url_base=url_base)
