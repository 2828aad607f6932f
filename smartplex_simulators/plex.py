"""Plex Media Server simulator: sections, paged and filtered listings, metadata and play history.

Answers JSON when asked (``Accept: application/json``) and XML otherwise, as PMS does; python-plexapi
speaks only XML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex_simulators._app import RenderCache, build_app, json_response, query_int
from smartplex_simulators._format import day
from smartplex_simulators.plex_items import (
    KIND_BY_TYPE,
    SECTION_OF_KIND,
    SECTIONS,
    SERVER_NAME,
    detailed_metadata,
    metadata,
    recent_metadata,
    recently_added,
    section_of,
)
from smartplex_simulators.universe import Episode, Movie, Show, Universe

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

VERSION = "1.40.2.8395-c67dce28e"
#: Filterable fields: how to read each from an item.
_FILTER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "addedAt": lambda i: i.plex_added,
    "updatedAt": lambda i: i.plex_updated,
    "lastViewedAt": lambda i: i.last_viewed,
    "viewCount": lambda i: i.view_count,
    "year": lambda i: i.show.year if isinstance(i, Episode) else i.year,
}
_SORT_FIELDS: dict[str, Callable[[Any], Any]] = {
    **_FILTER_FIELDS,
    "lastViewedAt": lambda i: i.last_viewed or 0,
    "titleSort": lambda i: i.title.lower(),
    "title": lambda i: i.title.lower(),
    "ratingKey": lambda i: i.rating_key,
}
#: ``field`` + operator; the field may be qualified by its type (``episode.addedAt``), as plexapi sends it.
_OPERATOR = re.compile(r"(?:[a-z]+\.)?([A-Za-z]+)(>>|<<|>|<|!)?")
_TEST: dict[str | None, Callable[[Any, Any], bool]] = {
    None: lambda a, b: a == b,
    "!": lambda a, b: a != b,
    ">>": lambda a, b: a > b,
    "<<": lambda a, b: a < b,
    ">": lambda a, b: a >= b,
    "<": lambda a, b: a <= b,
}
_PAGING = ("X-Plex-Container-Start", "X-Plex-Container-Size")
#: What listings filter and sort on, as PMS describes it (``includeMeta=1``): key, title, type.
_FIELDS = (
    ("title", "Title", "string"),
    ("year", "Year", "integer"),
    ("viewCount", "Plays", "integer"),
    ("addedAt", "Date Added", "date"),
    ("updatedAt", "Date Updated", "date"),
    ("lastViewedAt", "Last Viewed", "date"),
)
#: The operators this simulator implements, per field type (see ``_TEST``).
_OPERATORS = {
    "string": (("=", "contains"),),
    "integer": (("=", "is"), ("!=", "is not"), (">>=", "is greater than"), ("<<=", "is less than")),
    "date": ((">>=", "is after"), ("<<=", "is before")),
}


def _meta(section: str, kinds: list[str]) -> dict[str, Any]:
    """The filter and sort vocabulary of a section's listings, which python-plexapi validates against."""
    types = []
    for kind in kinds:
        number = next(n for n, k in KIND_BY_TYPE.items() if k == kind)
        types.append(
            {
                "key": f"/library/sections/{section}/all?type={number}",
                "type": kind,
                "title": kind.capitalize(),
                "active": kind == kinds[0],
                "Field": [{"key": key, "title": title, "type": kind_} for key, title, kind_ in _FIELDS],
                "Sort": [
                    {
                        "defaultDirection": "desc" if kind_ == "date" else "asc",
                        "descKey": f"{key}:desc",
                        "key": key,
                        "title": title,
                    }
                    for key, title, kind_ in _FIELDS
                ],
            }
        )
    field_types = [
        {"type": kind_, "Operator": [{"key": key, "title": title} for key, title in operators]}
        for kind_, operators in _OPERATORS.items()
    ]
    return {"Type": types, "FieldType": field_types}


def _to_xml(tag: str, data: dict[str, Any]) -> ElementTree.Element:
    """PMS's XML: scalars become attributes, objects and lists of objects child elements."""
    element = ElementTree.Element(tag)
    for name, value in data.items():
        if isinstance(value, dict):
            element.append(_to_xml(name, value))
        elif isinstance(value, list):
            for child in value:
                element.append(_to_xml(_xml_tag(name, child), child))
        elif isinstance(value, bool):
            element.set(name, "1" if value else "0")
        elif value is not None:
            element.set(name, str(value))
    return element


def _xml_tag(name: str, child: dict[str, Any]) -> str:
    if name == "Metadata":
        return "Video" if child.get("type") in ("movie", "episode") else "Directory"
    return name


def _respond(request: Request, container: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    if "json" in request.headers.get("accept", ""):
        return json_response({"MediaContainer": container}, headers=headers)
    xml = ElementTree.tostring(_to_xml("MediaContainer", container), encoding="utf-8", xml_declaration=True)
    return Response(xml, headers=headers, media_type="text/xml;charset=utf-8")


def _paging(request: Request, total: int) -> tuple[int, int]:
    start = query_int(request, _PAGING[0], 0)
    return start, query_int(request, _PAGING[1], total)


# ----- the app --------------------------------------------------------------------------------------


class PlexSimulator:
    """Routes over a :class:`Universe`; caches each filtered, sorted listing until the universe changes."""

    def __init__(self, simulation: Simulation) -> None:
        self.sim = simulation
        self.universe: Universe = simulation.universe
        self._listings: dict[tuple[Any, ...], tuple[int, list[Any]]] = {}
        self._rendered = RenderCache(self.universe)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root),
            Route("/identity", self.identity),
            Route("/library", self.library),
            Route("/library/sections", self.sections),
            Route("/library/sections/all", self.sections),
            Route("/library/sections/{section}/all", self.section_all),
            Route("/library/sections/{section}/collections", self.collections),
            Route("/library/metadata/{keys}", self.metadata),
            Route("/library/metadata/{key:int}/allLeaves", self.all_leaves),
            Route("/library/recentlyAdded", self.recently_added),
            Route("/library/sections/{section}/recentlyAdded", self.recently_added),
            Route("/status/sessions/history/all", self.history),
        ]

    def authenticate(self, request: Request) -> Response | None:
        token = request.headers.get("x-plex-token") or request.query_params.get("X-Plex-Token")
        if token == self.sim.keys["plex"]:
            return None
        return Response(
            "<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>",
            401,
            media_type="text/html",
        )

    async def root(self, request: Request) -> Response:
        return _respond(
            request,
            {
                "size": 0,
                "allowCameraUpload": False,
                "allowSync": True,
                "friendlyName": SERVER_NAME,
                "machineIdentifier": self.universe.machine_id,
                "myPlex": True,
                "myPlexUsername": self.universe.users[0].email,
                "platform": "Linux",
                "platformVersion": "6.1",
                "transcoderActiveVideoSessions": 0,
                "updatedAt": self.universe.now,
                "version": VERSION,
            },
        )

    async def identity(self, request: Request) -> Response:
        return _respond(
            request, {"size": 0, "claimed": True, "machineIdentifier": self.universe.machine_id, "version": VERSION}
        )

    async def library(self, request: Request) -> Response:
        return _respond(
            request,
            {
                "size": 1,
                "allowSync": False,
                "identifier": "com.plexapp.plugins.library",
                "mediaTagPrefix": "/system/bundle/media/flags/",
                "title1": "Plex Library",
                "Directory": [{"key": "sections", "title": "Library Sections"}],
            },
        )

    async def sections(self, request: Request) -> Response:
        directories = []
        for key, (kind, title, uuid, _, path) in SECTIONS.items():
            directories.append(
                {
                    "allowSync": True,
                    "art": f"/:/resources/{kind}-fanart.jpg",
                    "composite": f"/library/sections/{key}/composite/{self.universe.now}",
                    "filters": True,
                    "refreshing": False,
                    "thumb": f"/:/resources/{kind}.png",
                    "key": key,
                    "type": kind,
                    "title": title,
                    "agent": f"tv.plex.agents.{'movie' if kind == 'movie' else 'series'}",
                    "scanner": "Plex Movie" if kind == "movie" else "Plex TV Series",
                    "language": "en-US",
                    "uuid": uuid,
                    "updatedAt": self.universe.now,
                    "createdAt": self.universe.now - 5 * 365 * 86_400,
                    "scannedAt": self.universe.now,
                    "content": True,
                    "directory": True,
                    "contentChangedAt": self.universe.revision,
                    "hidden": 0,
                    "Location": [{"id": int(key), "path": path}],
                }
            )
        return _respond(
            request, {"size": len(directories), "allowSync": False, "title1": "Plex Library", "Directory": directories}
        )

    async def section_all(self, request: Request) -> Response:
        section = request.path_params["section"]
        if section not in SECTIONS:
            return Response("", 404)
        kind, title, uuid, default_type, _ = SECTIONS[section]
        plex_type = int(request.query_params.get("type", default_type))
        item_kind = KIND_BY_TYPE.get(plex_type)
        if item_kind is None or SECTION_OF_KIND.get(item_kind) != section:
            return Response("", 400)
        include_guids = request.query_params.get("includeGuids") == "1"
        as_json = "json" in request.headers.get("accept", "")
        with self.universe.lock:
            items = self._listing(item_kind, request)
            start, size = _paging(request, len(items))
            window = items[start : start + size]
            page: list[Any] = [
                self._item_json(i, include_guids) if as_json else metadata(i, include_guids) for i in window
            ]
        container = {
            "size": len(page),
            "totalSize": len(items),
            "offset": start,
            "allowSync": True,
            "art": f"/:/resources/{kind}-fanart.jpg",
            "identifier": "com.plexapp.plugins.library",
            "librarySectionID": int(section),
            "librarySectionTitle": title,
            "librarySectionUUID": uuid,
            "mediaTagPrefix": "/system/bundle/media/flags/",
            "mediaTagVersion": 1712345678,
            **({"nocache": True} if kind == "show" else {}),
            "thumb": f"/:/resources/{kind}.png",
            "title1": title,
            "title2": f"All {title}",
            "viewGroup": item_kind,
        }
        if request.query_params.get("includeMeta") == "1":
            container["Meta"] = _meta(section, ["movie"] if kind == "movie" else ["show", "episode"])
        headers = {"X-Plex-Container-Start": str(start), "X-Plex-Container-Total-Size": str(len(items))}
        if not as_json:
            return _respond(request, {**container, "Metadata": page}, headers)
        # Splice the items' cached JSON into the container: a page costs a join, not a render.
        head = json.dumps({"MediaContainer": container}, separators=(",", ":")).encode()[:-2]
        body = b"".join((head, b',"Metadata":[', b",".join(page), b"]}}"))
        return Response(body, headers=headers, media_type="application/json; charset=utf-8")

    def _item_json(self, item: Movie | Show | Episode, include_guids: bool) -> bytes:
        return self._rendered.get((item.rating_key, include_guids), lambda: metadata(item, include_guids))

    async def collections(self, request: Request) -> Response:
        """The simulated libraries have no collections."""
        return _respond(request, {"size": 0, "totalSize": 0, "offset": 0})

    def _listing(self, kind: str, request: Request) -> list[Any]:
        """The section's items of ``kind`` that pass the query's filters, in its sort order."""
        filters: list[tuple[str, str | None, str]] = []
        for name, value in request.query_params.multi_items():
            match = _OPERATOR.fullmatch(name)
            if match and (match[1] in _FILTER_FIELDS or match[1] == "title"):
                filters.append((match[1], match[2], value))
        sort = request.query_params.get("sort", "titleSort")
        cache_key = (kind, tuple(filters), sort)
        cached = self._listings.get(cache_key)
        if cached is not None and cached[0] == self.universe.revision:
            return cached[1]
        items: Iterable[Any] = self.universe.plex_section(kind)
        for field, op, value in filters:
            items = _apply_filter(items, field, op, value)
        field, _, direction = sort.rpartition(".")[2].partition(":")
        if field == "addedAt" and direction != "desc" and not filters:
            listing = self.universe.plex_section(kind)  # already in the order items were added
        else:
            listing = sorted(
                items,
                key=lambda i: (_SORT_FIELDS.get(field, _SORT_FIELDS["titleSort"])(i), i.rating_key),
                reverse=direction == "desc",
            )
        if len(self._listings) > 32:
            self._listings.clear()
        self._listings[cache_key] = (self.universe.revision, listing)
        return listing

    async def metadata(self, request: Request) -> Response:
        with self.universe.lock:
            # Like Plex: a list of ratingKeys answers with the items that exist; none at all is a 404.
            keys = [k for k in request.path_params["keys"].split(",") if k.isdigit()]
            items = [self.universe.plex[int(k)] for k in keys if int(k) in self.universe.plex]
            if not items:
                return Response("", 404)
            rendered = [detailed_metadata(item) for item in items]
        section = SECTIONS[str(rendered[0]["librarySectionID"])]
        return _respond(
            request,
            {
                "size": len(rendered),
                "allowSync": True,
                "identifier": "com.plexapp.plugins.library",
                "librarySectionID": rendered[0]["librarySectionID"],
                "librarySectionTitle": section[1],
                "librarySectionUUID": section[2],
                "mediaTagPrefix": "/system/bundle/media/flags/",
                "mediaTagVersion": 1712345678,
                "Metadata": rendered,
            },
        )

    async def all_leaves(self, request: Request) -> Response:
        with self.universe.lock:
            show = self.universe.plex.get(request.path_params["key"])
            if not isinstance(show, Show):
                return Response("", 404)
            leaves = [e for e in show.episodes if e.rating_key is not None]
            start, size = _paging(request, len(leaves))
            page = [metadata(e) for e in leaves[start : start + size]]
        return _respond(
            request,
            {"size": len(page), "totalSize": len(leaves), "offset": start, "librarySectionID": 2, "Metadata": page},
        )

    async def recently_added(self, request: Request) -> Response:
        with self.universe.lock:
            entries = recently_added(self.universe, request.path_params.get("section"))
            start, size = _paging(request, len(entries))
            page = [recent_metadata(e) for e in entries[start : start + size]]
        return _respond(
            request,
            {
                "size": len(page),
                "allowSync": False,
                "identifier": "com.plexapp.plugins.library",
                "mediaTagPrefix": "/system/bundle/media/flags/",
                "mediaTagVersion": 1712345678,
                "mixedParents": True,
                "Metadata": page,
            },
        )

    async def history(self, request: Request) -> Response:
        params = request.query_params
        with self.universe.lock:
            plays = [p for p in self.universe.plays if p.percent >= 90 and p.item.rating_key is not None]
            for name, value in params.multi_items():
                match = _OPERATOR.fullmatch(name)
                if match and match[1] == "viewedAt":
                    test = _TEST[match[2]]
                    plays = [p for p in plays if test(p.stopped, int(value))]
            if "accountID" in params:
                plays = [p for p in plays if p.user.plex_id == int(params["accountID"])]
            if "librarySectionID" in params:
                plays = [p for p in plays if section_of(p.item)[0] == params["librarySectionID"]]
            if "metadataItemID" in params:
                plays = [p for p in plays if p.item.rating_key == int(params["metadataItemID"])]
            if params.get("sort", "viewedAt:desc").endswith(":desc"):
                plays.reverse()
            start, size = _paging(request, len(plays))
            rows = [_history_row(p) for p in plays[start : start + size]]
        return _respond(request, {"size": len(rows), "totalSize": len(plays), "offset": start, "Metadata": rows})


def _apply_filter(items: Iterable[Any], field: str, op: str | None, value: str) -> list[Any]:
    if field == "title":
        needle = value.lower()
        return [i for i in items if needle in i.title.lower()]
    get, test, bound = _FILTER_FIELDS[field], _TEST[op], int(value)
    return [i for i in items if (v := get(i)) is not None and test(v, bound)]


def _history_row(play: Any) -> dict[str, Any]:
    item = play.item
    key = item.rating_key
    row: dict[str, Any] = {
        "historyKey": f"/status/sessions/history/{play.id}",
        "key": f"/library/metadata/{key}",
        "ratingKey": str(key),
        "librarySectionID": section_of(item)[0],
        "title": item.title,
        "type": item.kind,
        "thumb": f"/library/metadata/{key}/thumb/{item.plex_updated}",
    }
    if isinstance(item, Episode):
        show = item.show
        row.update(
            {
                "parentKey": f"/library/metadata/{show.season_keys[item.season]}",
                "grandparentKey": f"/library/metadata/{show.rating_key}",
                "grandparentTitle": show.title,
                "parentThumb": f"/library/metadata/{show.season_keys[item.season]}/thumb/{show.plex_updated}",
                "grandparentThumb": f"/library/metadata/{show.rating_key}/thumb/{show.plex_updated}",
                "grandparentArt": f"/library/metadata/{show.rating_key}/art/{show.plex_updated}",
                "index": item.number,
                "parentIndex": item.season,
                "originallyAvailableAt": day(item.air_date),
            }
        )
    else:
        row["originallyAvailableAt"] = f"{item.year}-06-01"
    row.update({"viewedAt": play.stopped, "accountID": play.user.plex_id, "deviceID": 1 + play.user.id})
    return row


def create_app(simulation: Simulation, url_base: str = "") -> Any:
    sim = PlexSimulator(simulation)
    return build_app("plex", simulation, sim.routes(), sim.authenticate, url_base=url_base, public=("/identity",))
