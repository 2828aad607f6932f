"""What the Sonarr and Radarr simulators share: API v3 auth, paged history, status, health, file shapes,
and how their connections back off after failed webhooks.

Each is an :class:`ArrFlavor`: its resource, its history event numbers, and how to render items.
Each flavor serves one instance's library: the default instance's (the universe), or the 4K one's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex.instances import DEFAULT_INSTANCE, DEFAULT_INSTANCES, Instance
from smartplex.kinds import get_kind
from smartplex_simulators._app import RenderCache, build_app, json_array, json_response
from smartplex_simulators._format import iso_seconds, parse_iso
from smartplex_simulators.universe import UHD, ArrEvent, ArrLibrary, Episode, Movie, quality

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation

Render = Callable[[Any, ArrLibrary], dict[str, Any]]

#: The extra instances the simulators can run: a 4K Sonarr and a 4K Radarr, over the universe's 4K library.
EXTRA_INSTANCES: tuple[Instance, ...] = (Instance(get_kind("sonarr"), UHD), Instance(get_kind("radarr"), UHD))
#: Every instance a simulator can serve, by id: each kind's default one (``sonarr``), then the extra ones (``sonarr/4k``).
INSTANCE_IDS: tuple[str, ...] = tuple(i.id for i in (*DEFAULT_INSTANCES, *EXTRA_INSTANCES))

#: The connection (Settings > Connect) through which each simulated Sonarr and Radarr posts its webhooks.
WEBHOOK_CONNECTION = "SmartPlex"
#: How long a failing provider is disabled at each escalation level (Servarr's ``EscalationBackOff``).
BACK_OFF_PERIODS: tuple[timedelta, ...] = tuple(
    timedelta(minutes=m) for m in (0, 1, 5, 15, 30, 60, 3 * 60, 6 * 60, 12 * 60, 24 * 60)
)
# NotificationStatusService's settings; the startup ones are ProviderStatusServiceBase's.
_MAXIMUM_ESCALATION_LEVEL = 5
_GRACE_AFTER_INITIAL_FAILURE = timedelta(minutes=5)
_STARTUP_GRACE = timedelta(minutes=15)
_WIKI_FRAGMENT = "#notifications-are-unavailable-due-to-failures"


@dataclass
class NotificationStatus:
    """A connection's failures, kept as Sonarr's and Radarr's ``ProviderStatusServiceBase`` keeps them.

    The first failure opens a 5-minute grace, in which nothing is disabled. Each failure after it raises
    the escalation level and disables the connection for that level's period: 5, 15, 30, then 60
    minutes. In the first 15 minutes after the service started nothing escalates (a level-1 disable
    lasts a minute) and no disable lasts more than 5 minutes. A success steps one level down and
    enables the connection again; back at level 0, the next failure opens a new grace.
    """

    escalation_level: int = 0
    initial_failure: datetime | None = None
    most_recent_failure: datetime | None = None
    disabled_till: datetime | None = None

    def disabled(self, now: datetime) -> bool:
        return self.disabled_till is not None and self.disabled_till > now

    def record_success(self) -> None:
        if self.escalation_level > 0:
            self.escalation_level -= 1
            self.disabled_till = None

    def record_failure(self, now: datetime, started: datetime) -> None:
        self.most_recent_failure = now
        escalate = self.escalation_level > 0
        if not escalate:
            self.initial_failure, self.escalation_level = now, 1
        initial_failure = self.initial_failure or now
        in_startup_grace = started + _STARTUP_GRACE > now
        in_grace = initial_failure + _GRACE_AFTER_INITIAL_FAILURE > now
        if escalate and not in_grace and not in_startup_grace:
            self.escalation_level = min(_MAXIMUM_ESCALATION_LEVEL, self.escalation_level + 1)
        if not in_grace:
            self.disabled_till = now + BACK_OFF_PERIODS[self.escalation_level]
        if in_startup_grace and self.disabled_till is not None:
            self.disabled_till = min(self.disabled_till, now + BACK_OFF_PERIODS[2])

    def as_json(self, now: datetime) -> dict[str, Any]:
        """In the API's camelCase, with whether the connection is disabled at ``now``."""

        def moment(value: datetime | None) -> str | None:
            return None if value is None else iso_seconds(int(value.timestamp()))

        return {
            "escalationLevel": self.escalation_level,
            "initialFailure": moment(self.initial_failure),
            "mostRecentFailure": moment(self.most_recent_failure),
            "disabledTill": moment(self.disabled_till),
            "disabled": self.disabled(now),
        }


def notification_health(kind: str, connections: Sequence[str], disabled: Sequence[str]) -> list[dict[str, str]]:
    """``/api/v3/health`` as NotificationStatusCheck fills it: an error when every connection is disabled,
    a warning naming the disabled ones when only some are, nothing when none is."""
    if not disabled:
        return []
    if len(disabled) >= len(connections):
        level, message = "error", "All notifications are unavailable due to failures"
    else:
        level, message = "warning", f"Notifications unavailable due to failures: {', '.join(disabled)}"
    wiki_url = f"https://wiki.servarr.com/{kind}/system{_WIKI_FRAGMENT}"
    return [{"source": "NotificationStatusCheck", "type": level, "message": message, "wikiUrl": wiki_url}]


@dataclass(frozen=True)
class ArrFlavor:
    kind: str
    app_name: str
    version: str
    resource: str  # "series" | "movie"
    id_field: str  # history's "seriesId" | "movieId"
    external_filter: str  # "tvdbId" | "tmdbId"
    event_numbers: dict[str, int]
    items: Callable[[ArrLibrary], dict[int, Any]]
    history: Callable[[ArrLibrary], list[ArrEvent]]
    render: Render
    render_event: Callable[[ArrEvent, ArrLibrary], dict[str, Any]]
    extra_routes: Callable[[ArrLibrary], list[Route]]


def instance_name(app_name: str, instance: str) -> str:
    """The name an instance gives itself (status, webhooks): "Sonarr", or "Sonarr 4K" for the 4K one."""
    return app_name if instance == DEFAULT_INSTANCE else f"{app_name} {instance.upper()}"


def quality_json(item: Movie | Episode, web_source: str) -> dict[str, Any]:
    """A quality; Sonarr names the web source "web", Radarr "webdl" and adds a modifier."""
    name, resolution, quality_id, _ = quality(item)
    inner: dict[str, Any] = {
        "id": quality_id,
        "name": name,
        "source": web_source if name.startswith("WEB") else "bluray",
        "resolution": resolution,
    }
    if web_source == "webdl":
        inner["modifier"] = "none"  # Radarr only
    return {"quality": inner, "revision": {"version": 1, "real": 0, "isRepack": False}}


def media_info(item: Movie | Episode) -> dict[str, Any]:
    _, resolution, _, codec = quality(item)
    width = 3840 if resolution == 2160 else 1920
    return {
        "audioBitrate": 640000,
        "audioChannels": 5.1,
        "audioCodec": "EAC3",
        "audioLanguages": "eng",
        "audioStreamCount": 1,
        "videoBitDepth": 10 if resolution == 2160 else 8,
        "videoBitrate": 8_000_000,
        "videoCodec": codec,
        "videoFps": 23.976,
        "videoDynamicRange": "",
        "videoDynamicRangeType": "",
        "resolution": f"{width}x{resolution}",
        "runTime": "45:00",
        "scanType": "Progressive",
        "subtitles": "eng",
    }


@dataclass(frozen=True)
class Downloads:
    """How a flavor's downloads appear in its history records."""

    client: str
    indexer: str
    info_url: str
    dropped_root: str


def history_data(
    event: ArrEvent,
    downloads: Downloads,
    size: str,
    imported_path: str,
    *,
    grab_extra: dict[str, str],
    import_extra: dict[str, str],
    delete_extra: dict[str, str],
) -> dict[str, str]:
    """A history record's ``data``: strings only, keys depending on the event type."""
    common = {"downloadClient": downloads.client, "downloadClientName": downloads.client}
    if event.event == "grabbed":
        return {
            "indexer": downloads.indexer,
            "nzbInfoUrl": downloads.info_url,
            "releaseGroup": "SIM",
            "age": "0",
            "ageHours": "0.5",
            "ageMinutes": "30",
            "publishedDate": iso_seconds(event.date - 1800),
            **common,
            "size": size,
            "downloadUrl": "http://prowlarr:9696/1/download",
            "guid": f"sim-{event.id}",
            **grab_extra,
        }
    if event.event == "downloadFolderImported":
        return {
            "fileId": str(event.file_id),
            "droppedPath": f"{downloads.dropped_root}/{event.source_title}.mkv",
            "importedPath": imported_path,
            **common,
            "releaseGroup": "SIM",
            "customFormatScore": "0",
            "size": size,
            "indexerFlags": "0",
            **import_extra,
        }
    # A file deletion: its path is the record's sourceTitle; no file id survives.
    return {"reason": "Manual", "releaseGroup": "SIM", **delete_extra}


def event_json(
    event: ArrEvent, item: Movie | Episode | None, flavor_source: str, data: dict[str, str]
) -> dict[str, Any]:
    """A history record; fields without a value are omitted, as the API omits nulls."""
    record: dict[str, Any] = {"sourceTitle": event.source_title, "languages": [{"id": 1, "name": "English"}]}
    if item is not None:
        record["quality"] = quality_json(item, flavor_source)
    record.update(
        {"customFormats": [], "customFormatScore": 0, "qualityCutoffNotMet": False, "date": iso_seconds(event.date)}
    )
    if event.download_id:
        record["downloadId"] = event.download_id
    record.update({"eventType": event.event, "data": data, "id": event.id})
    return record


class ArrSimulator:
    def __init__(self, simulation: Simulation, flavor: ArrFlavor, instance: str = DEFAULT_INSTANCE) -> None:
        self.sim = simulation
        self.flavor = flavor
        self.instance = Instance(get_kind(flavor.kind), instance)
        self.library = simulation.universe.arr_library(instance)
        self._rendered = RenderCache(simulation.universe)

    def routes(self) -> list[Route]:
        resource = self.flavor.resource
        return [
            Route("/api/v3/system/status", self.status),
            Route("/api/v3/health", self.health),
            Route(f"/api/v3/{resource}", self.list_items),
            Route(f"/api/v3/{resource}/{{id:int}}", self.one_item),
            Route("/api/v3/history", self.history),
            Route("/api/v3/history/since", self.history_since),
            *self.flavor.extra_routes(self.library),
        ]

    def authenticate(self, request: Request) -> Response | None:
        # The same order the *arrs check: query parameter, header, then bearer token.
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        offered = (
            request.query_params.get("apikey")
            or request.headers.get("x-api-key")
            or (bearer if scheme.lower() == "bearer" else None)
        )
        return None if offered == self.sim.keys[self.instance.id] else Response(status_code=401)

    async def status(self, request: Request) -> Response:
        f = self.flavor
        return json_response(
            {
                "appName": f.app_name,
                "instanceName": instance_name(f.app_name, self.instance.name),
                "version": f.version,
                "buildTime": "2025-09-06T10:58:07Z",
                "isDebug": False,
                "isProduction": True,
                "isAdmin": False,
                "isUserInteractive": False,
                "startupPath": f"/app/{f.kind}/bin",
                "appData": "/config",
                "osName": "alpine",
                "osVersion": "3.22.1",
                "isNetCore": True,
                "isLinux": True,
                "isOsx": False,
                "isWindows": False,
                "isDocker": True,
                "mode": "console",
                "branch": "main",
                "authentication": "forms",
                "databaseType": "sqLite",
                "databaseVersion": "3.49.2",
                "migrationVersion": 217,
                "urlBase": "",
                "runtimeVersion": "8.0.19",
                "runtimeName": ".NET",
                "startTime": iso_seconds(self.library.now),
                "packageVersion": f"{f.version}-ls1",
                "packageAuthor": "[linuxserver.io](https://linuxserver.io)",
                "packageUpdateMechanism": "docker",
            }
        )

    async def health(self, request: Request) -> Response:
        # Asked per request: tests and the demo give the simulation a new sender after the apps start.
        disabled = [WEBHOOK_CONNECTION] if self.sim.webhooks.disabled(self.instance.id) else []
        return json_response(notification_health(self.flavor.kind, self.sim.connections, disabled))

    async def list_items(self, request: Request) -> Response:
        wanted = query_params(request).get(self.flavor.external_filter.lower())
        with self.library.lock:
            items = list(self.flavor.items(self.library).values())
            if wanted is not None:
                items = [i for i in items if getattr(i, f"{self.flavor.external_filter[:4]}_id") == int(wanted)]
            body = json_array([self._rendered.get(i.id, partial(self.flavor.render, i, self.library)) for i in items])
        return Response(body, media_type="application/json; charset=utf-8")

    async def one_item(self, request: Request) -> Response:
        with self.library.lock:
            item = self.flavor.items(self.library).get(request.path_params["id"])
            if item is None:
                return json_response({"message": "NotFound", "description": ""}, 404)
            return json_response(self.flavor.render(item, self.library))

    async def history(self, request: Request) -> Response:
        params = query_params(request)
        page, size = max(1, int(params.get("page", 1))), max(1, int(params.get("pagesize", 10)))
        descending = params.get("sortdirection", "descending") != "ascending"
        with self.library.lock:
            events = self._filtered(request, self.flavor.history(self.library))
            if descending:
                events = events[::-1]
            chunk = events[(page - 1) * size : page * size]
            records = [self.flavor.render_event(e, self.library) for e in chunk]
        # Only `date` and the title sort are accepted; anything else falls back to `date`.
        return json_response(
            {
                "page": page,
                "pageSize": size,
                "sortKey": "date",
                "sortDirection": "descending" if descending else "ascending",
                "totalRecords": len(events),
                "records": records,
            }
        )

    async def history_since(self, request: Request) -> Response:
        if "date" not in query_params(request):
            return json_response({"message": "date is required"}, 400)
        since = parse_iso(query_params(request)["date"])
        with self.library.lock:
            events = [e for e in self._filtered(request, self.flavor.history(self.library)) if e.date >= since]
            return json_response([self.flavor.render_event(e, self.library) for e in events])

    def _filtered(self, request: Request, events: list[ArrEvent]) -> list[ArrEvent]:
        params = query_params(request)
        if "eventtype" in params:
            wanted = params["eventtype"]
            number = int(wanted) if wanted.isdigit() else self.flavor.event_numbers.get(wanted, -1)
            events = [e for e in events if self.flavor.event_numbers[e.event] == number]
        ids_param = f"{self.flavor.id_field[:-2].lower()}ids"  # seriesids / movieids
        if ids_param in params:
            ids = {int(i) for i in params[ids_param].split(",") if i}
            events = [e for e in events if e.target in ids]
        if "episodeid" in params:
            events = [e for e in events if e.episode_id == int(params["episodeid"])]
        return events


def query_params(request: Request) -> dict[str, str]:
    """Query parameters by lower-cased name: ASP.NET binds them case-insensitively."""
    return {name.lower(): value for name, value in request.query_params.items()}


def create_arr_app(
    simulation: Simulation, flavor: ArrFlavor, url_base: str = "", instance: str = DEFAULT_INSTANCE
) -> Any:
    sim = ArrSimulator(simulation, flavor, instance)
    return build_app(sim.instance.id, simulation, sim.routes(), sim.authenticate, url_base=url_base)
