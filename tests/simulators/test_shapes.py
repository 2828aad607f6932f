"""Each simulator answers with the example responses' shapes: same field names, nesting and types."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from smartplex.instances import Instance
from smartplex_simulators import RunningSimulators
from tests.simulators.support import API_FIXTURES, load_api_fixture

#: (instance id, fixture name, path, query). Paths take {show} / {episode} / {movie} ids.
CASES = [
    ("plex", "library_sections", "/library/sections", {}),
    ("plex", "library_section_all_movies", "/library/sections/1/all", {"type": 1, "includeGuids": 1}),
    ("plex", "library_section_all_shows", "/library/sections/2/all", {"type": 2, "includeGuids": 1}),
    ("plex", "library_section_all_episodes", "/library/sections/2/all", {"type": 4, "includeGuids": 1}),
    ("plex", "library_metadata", "/library/metadata/{episode_key}", {}),
    ("plex", "status_sessions_history_all", "/status/sessions/history/all", {"sort": "viewedAt:desc"}),
    ("plex", "library_recentlyAdded", "/library/recentlyAdded", {}),
    ("tautulli", "get_history", "/api/v2", {"cmd": "get_history", "length": 50}),
    ("tautulli", "get_libraries", "/api/v2", {"cmd": "get_libraries"}),
    ("tautulli", "get_recently_added", "/api/v2", {"cmd": "get_recently_added", "count": 1000}),
    ("tautulli", "get_metadata", "/api/v2", {"cmd": "get_metadata", "rating_key": "{episode_key}"}),
    ("tautulli", "get_library_media_info", "/api/v2", {"cmd": "get_library_media_info", "section_id": 1, "length": 50}),
    ("sonarr", "series", "/api/v3/series", {}),
    ("sonarr", "episode", "/api/v3/episode", {"seriesId": "{show}"}),
    ("sonarr", "episodefile", "/api/v3/episodefile", {"seriesId": "{show}"}),
    ("sonarr", "history", "/api/v3/history", {"pageSize": 50}),
    ("sonarr", "history_since", "/api/v3/history/since", {"date": "2000-01-01T00:00:00Z"}),
    ("sonarr", "system_status", "/api/v3/system/status", {}),
    ("radarr", "movie", "/api/v3/movie", {}),
    ("radarr", "moviefile", "/api/v3/moviefile", {"movieId": "{movie}"}),
    ("radarr", "history", "/api/v3/history", {"pageSize": 50}),
    ("radarr", "history_since", "/api/v3/history/since", {"date": "2000-01-01T00:00:00Z"}),
    ("radarr", "system_status", "/api/v3/system/status", {}),
    ("overseerr", "request", "/api/v1/request", {"take": 50}),
    ("overseerr", "media", "/api/v1/media", {"take": 50}),
    ("overseerr", "user", "/api/v1/user", {}),
    ("overseerr", "status", "/api/v1/status", {}),
]
#: The 4K Sonarr and Radarr answer as the others do.
CASES_4K = [(f"{kind}/4k", *rest) for kind, *rest in CASES if kind in ("sonarr", "radarr")]
#: Fields an item may lack where the example happens to have them: watch state exists only once
#: watched, *arr omit nulls, Overseerr leaves modifiedBy null until someone acts on a request.
OPTIONAL = {
    "viewCount",
    "lastViewedAt",
    "skipCount",
    "previousAiring",
    "lastSearchTime",
    "collection",
    "downloadId",
    "movieFile",
}
NULLABLE = {
    "modifiedBy",
    "mediaAddedAt",
    "ratingKey",
    "parent_rating_key",
    "grandparent_rating_key",
    "media_index",
    "parent_media_index",
}
#: Numbers that are whole in the example but need not be (Tautulli's watched_status steps by 0.25).
FRACTIONAL = {"watched_status"}
#: History events the examples show; other events carry other `data` keys.
EXAMPLE_EVENTS = {"grabbed", "downloadFolderImported"}


def _kind(value: Any) -> str:
    return "number" if isinstance(value, float) else type(value).__name__


def shape_problems(actual: Any, examples: list[Any], path: str = "$") -> list[str]:
    """Where ``actual`` departs from every example: unknown or missing keys, other JSON types."""
    present = [e for e in examples if e is not None]
    if actual is None:
        nullable = len(present) < len(examples) or path.rsplit(".", 1)[-1] in NULLABLE
        return [] if nullable else [f"{path}: null where the example has {_kind(present[0])}"]
    if not present:
        return []
    kinds = {_kind(e) for e in present}
    if path.rsplit(".", 1)[-1] in FRACTIONAL and kinds == {"int"}:
        kinds.add("number")
    if _kind(actual) not in kinds:
        return [f"{path}: {_kind(actual)} where the example has {'/'.join(sorted(kinds))}"]
    problems: list[str] = []
    if isinstance(actual, dict):
        dicts = [e for e in present if isinstance(e, dict)]
        known = set().union(*dicts)
        required = set.intersection(*(set(d) for d in dicts)) - OPTIONAL
        problems += [f"{path}: missing {k}" for k in sorted(required - actual.keys())]
        problems += [f"{path}: unexpected {k}" for k in sorted(actual.keys() - known)]
        for key in sorted(actual.keys() & known):
            problems += shape_problems(actual[key], [d[key] for d in dicts if key in d], f"{path}.{key}")
    elif isinstance(actual, list):
        elements = [x for e in present if isinstance(e, list) for x in e]
        if elements:
            for item in actual:
                problems += shape_problems(item, elements, f"{path}[]")
    return sorted(set(problems))


def _rows(body: Any) -> Any:
    """Keep history rows of the event types the examples show."""
    records = body.get("records") if isinstance(body, dict) else body
    if isinstance(records, list) and records and isinstance(records[0], dict) and "eventType" in records[0]:
        kept = [r for r in records if r["eventType"] in EXAMPLE_EVENTS]
        return {**body, "records": kept} if isinstance(body, dict) else kept
    return body


@pytest.mark.parametrize(
    ("instance_id", "name", "path", "query"), CASES + CASES_4K, ids=[f"{c[0]}-{c[1]}" for c in CASES + CASES_4K]
)
def test_simulator_matches_example_shape(
    sims: RunningSimulators, instance_id: str, name: str, path: str, query: dict[str, Any]
) -> None:
    instance = Instance.parse(instance_id)
    library = sims.universe.arr_library(instance.name)  # the 4K instances' ids are their own
    show = next(s for s in library.shows.values() if any(e.file_id for e in s.episodes))
    ids = {
        "show": show.id,
        "movie": next(m.id for m in library.movies.values() if m.file_id),
        "episode_key": next(e.rating_key for e in sims.universe.episodes.values() if e.rating_key),
    }
    params = {k: str(v).format(**ids) for k, v in query.items()}
    headers = {"Accept": "application/json", "X-Plex-Token": sims.keys["plex"], "X-Api-Key": sims.keys[instance_id]}
    if instance.kind.name == "tautulli":
        params["apikey"] = sims.keys["tautulli"]
    response = httpx.get(sims.urls[instance_id] + path.format(**ids), params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = _rows(response.json())
    example = _rows(load_api_fixture(instance.kind.name, name))
    assert body, "nothing to compare"
    assert shape_problems(body, [example]) == []


def test_the_checker_catches_departures() -> None:
    example = {"a": 1, "b": [{"c": "x", "d": 1.5}], "e": None}
    assert shape_problems({"a": 2, "b": [{"c": "y", "d": 2.0}], "e": "s"}, [example]) == []
    assert shape_problems({"a": "1", "b": [{"c": "y", "d": 2}], "f": 0}, [example]) == [
        "$.a: str where the example has int",
        "$.b[].d: int where the example has number",
        "$: missing e",
        "$: unexpected f",
    ]


SECONDS_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
MILLIS_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.mark.parametrize(
    ("instance_id", "path", "pick", "pattern"),
    [
        ("sonarr", "/api/v3/series", lambda body: body[0]["added"], SECONDS_Z),
        ("sonarr", "/api/v3/history", lambda body: body["records"][0]["date"], SECONDS_Z),
        ("radarr", "/api/v3/movie", lambda body: body[0]["added"], SECONDS_Z),
        ("overseerr", "/api/v1/request", lambda body: body["results"][0]["updatedAt"], MILLIS_Z),
        (
            "plex",
            "/library/sections/1/all",
            lambda body: str(body["MediaContainer"]["Metadata"][0]["addedAt"]),
            r"\d{10}",
        ),
    ],
    ids=["sonarr-series", "sonarr-history", "radarr-movie", "overseerr-request", "plex-item"],
)
def test_dates_are_written_as_each_service_writes_them(
    sims: RunningSimulators, instance_id: str, path: str, pick: Any, pattern: str
) -> None:
    headers = {"Accept": "application/json", "X-Plex-Token": sims.keys["plex"], "X-Api-Key": sims.keys[instance_id]}
    body = httpx.get(sims.urls[instance_id] + path, headers=headers).json()
    assert re.fullmatch(pattern, pick(body))


def test_every_example_response_is_checked() -> None:
    examples = {(p.parent.name, p.stem) for p in API_FIXTURES.glob("*/*.json")}
    assert examples == {(kind, name) for kind, name, _, _ in CASES}
