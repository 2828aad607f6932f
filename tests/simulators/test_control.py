"""The ``/_sim`` endpoints drive a running simulation: faults, clock and mutations over HTTP."""

from __future__ import annotations

import httpx
import pytest

from smartplex_simulators import RunningSimulators


@pytest.fixture
def control(sims: RunningSimulators) -> httpx.Client:
    with httpx.Client(base_url=sims.urls["sonarr"] + "/_sim") as client:
        yield client
    for faults in sims.simulation.faults.values():
        faults.clear()


def test_faults_set_over_http_apply_to_that_simulator_only(sims: RunningSimulators, control: httpx.Client) -> None:
    answer = control.put("/faults", json={"fail_next": [502, 429], "retry_after": 4})
    assert answer.json()["fail_next"] == [502, 429]
    api = {"X-Api-Key": sims.keys["sonarr"]}
    assert (
        httpx.get(sims.urls["radarr"] + "/api/v3/system/status", headers={"X-Api-Key": sims.keys["radarr"]}).status_code
        == 200
    )
    assert httpx.get(sims.urls["sonarr"] + "/api/v3/system/status", headers=api).status_code == 502
    limited = httpx.get(sims.urls["sonarr"] + "/api/v3/system/status", headers=api)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")
    assert httpx.get(sims.urls["sonarr"] + "/api/v3/system/status", headers=api).status_code == 200
    assert control.delete("/faults").json()["fail_next"] == []


def test_unknown_fault_settings_are_refused(control: httpx.Client) -> None:
    answer = control.put("/faults", json={"explode": True})
    assert answer.status_code == 400 and "explode" in answer.json()["error"]


def test_error_rate_is_seeded_and_roughly_that_fraction(sims: RunningSimulators, control: httpx.Client) -> None:
    control.put("/faults", json={"error_rate": 0.5, "seed": 42})
    with httpx.Client(base_url=sims.urls["sonarr"], headers={"X-Api-Key": sims.keys["sonarr"]}) as api:
        statuses = [api.get("/api/v3/system/status").status_code for _ in range(200)]
    assert set(statuses) == {200, 503}
    assert 60 < statuses.count(503) < 140


def test_mutations_and_clock_over_http(sims: RunningSimulators, control: httpx.Client) -> None:
    before = control.get("/clock").json()["now"]
    assert control.post("/clock/advance", json={"seconds": 3600}).json() == {"now": before + 3600}
    movie = control.post("/movies", json={"title": "Over HTTP"}).json()
    assert movie["title"] == "Over HTTP" and movie["ratingKey"] is not None
    plex = httpx.get(
        f"{sims.urls['plex']}/library/metadata/{movie['ratingKey']}",
        headers={"X-Plex-Token": sims.keys["plex"], "Accept": "application/json"},
    ).json()
    assert plex["MediaContainer"]["Metadata"][0]["addedAt"] == before + 3600
    play = control.post("/plays", json={"rating_key": movie["ratingKey"]}).json()
    assert play["ratingKey"] == movie["ratingKey"]
    request = control.post("/requests", json={"movie_id": movie["id"]}).json()
    assert control.post(f"/requests/{request['id']}/approve").json()["status"] == 2
    assert control.patch(f"/movies/{movie['id']}", json={"title": "Renamed"}).json()["title"] == "Renamed"
    assert control.delete(f"/movies/{movie['id']}").status_code == 200
    assert control.delete(f"/movies/{movie['id']}").status_code == 404
    radarr = httpx.get(f"{sims.urls['radarr']}/api/v3/movie/{movie['id']}", headers={"X-Api-Key": sims.keys["radarr"]})
    assert radarr.status_code == 404


def test_a_bad_mutation_is_a_400(control: httpx.Client) -> None:
    answer = control.post("/requests", json={"movie_id": 1, "series_id": 1})
    assert answer.status_code == 400 and "exactly one" in answer.json()["error"]
    assert control.post("/movies", content=b"{not json").status_code == 400
    assert control.put("/faults", content=b"[1, 2]").status_code == 400


def test_recently_added_lists_new_movies_and_groups_new_episodes_by_season(
    sims: RunningSimulators, control: httpx.Client
) -> None:
    show = control.post("/series", json={"title": "Grouped", "seasons": 2, "episodes_per_season": 3}).json()
    control.post("/clock/advance", json={"seconds": 60})
    movie = control.post("/movies", json={"title": "Newest"}).json()
    plex = httpx.get(
        f"{sims.urls['plex']}/library/recentlyAdded",
        headers={"X-Plex-Token": sims.keys["plex"], "Accept": "application/json", "X-Plex-Container-Size": "3"},
    ).json()
    recent = [(m["type"], m.get("parentTitle"), m.get("leafCount")) for m in plex["MediaContainer"]["Metadata"]]
    assert recent[0] == ("movie", None, None)
    assert recent[1:] == [("season", "Grouped", 3), ("season", "Grouped", 3)]
    tautulli = httpx.get(
        f"{sims.urls['tautulli']}/api/v2",
        params={"apikey": sims.keys["tautulli"], "cmd": "get_recently_added", "count": 1},
    ).json()
    assert tautulli["response"]["data"]["recently_added"][0]["rating_key"] == str(movie["ratingKey"])
    assert show["ratingKey"] is not None
