"""The 4K Sonarr and Radarr: a seeded share of the universe under ids of their own, kept in step with the
default instances by every mutation, and configured in SmartPlex by what ``env()`` returns."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from smartplex.kinds import KIND_NAMES
from smartplex.settings import Settings
from smartplex_simulators import RunningSimulators, Universe, run_simulators
from smartplex_simulators.universe import Episode, Library4K, Movie
from smartplex_simulators.webhooks import WebhookSender
from tests.simulators.test_shapes import shape_problems
from tests.simulators.test_webhooks import OPTIONAL_IN_HOOKS, Receiver, _example

TEMPLATE = "http://hooks.test/api/webhooks/{kind}{instance_path}?token=t"


def _four_k(sims: RunningSimulators) -> Library4K:
    assert sims.universe.four_k is not None
    return sims.universe.four_k


def _get(sims: RunningSimulators, instance: str, path: str, **params: Any) -> Any:
    response = httpx.get(sims.urls[instance] + path, params=params, headers={"X-Api-Key": sims.keys[instance]})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_4k_library_is_a_seeded_third_with_the_same_external_ids(sims: RunningSimulators) -> None:
    universe, four_k = sims.universe, _four_k(sims)
    shows = {s.tvdb_id: s for s in universe.shows.values()}
    movies = {m.tmdb_id: m for m in universe.movies.values()}
    for show in four_k.shows.values():
        original = shows[show.tvdb_id]
        shared = ("title", "tmdb_id", "imdb_id", "added")
        assert [getattr(show, name) for name in shared] == [getattr(original, name) for name in shared]
        assert [(e.tvdb_id, e.season, e.number) for e in show.episodes] == [
            (e.tvdb_id, e.season, e.number) for e in original.episodes
        ]
        assert universe.copies(original) == [original, show]
    for movie in four_k.movies.values():
        original = movies[movie.tmdb_id]
        assert (movie.title, movie.imdb_id, movie.year) == (original.title, original.imdb_id, original.year)
        assert universe.copies(original) == [original, movie]
    assert 0.2 < len(four_k.movies) / len(universe.movies) < 0.45
    assert 0.15 < len(four_k.shows) / len(universe.shows) < 0.5
    # Ids of its own: dense from 1, not the default instance's.
    assert sorted(four_k.movies) == list(range(1, len(four_k.movies) + 1))
    assert any(m.id != movies[m.tmdb_id].id for m in four_k.movies.values())
    assert any(s.id != shows[s.tvdb_id].id for s in four_k.shows.values())
    files = [*(m for m in four_k.movies.values() if m.file_id), *(e for e in four_k.episodes.values() if e.file_id)]
    assert files and all(f.size > 2_000_000_000 for f in files)


def test_a_seed_gives_the_same_4k_library_every_run() -> None:
    def fingerprint(seed: int) -> list[tuple[object, ...]]:
        four_k = Universe(seed=seed, size=600).enable_4k()
        return [(m.id, m.tmdb_id, m.file_id, m.size) for m in four_k.movies.values()] + [
            (e.id, e.tvdb_id, e.file_id, e.size) for e in four_k.episodes.values()
        ]

    assert fingerprint(4) == fingerprint(4) != fingerprint(5)


@pytest.mark.parametrize("instance", ["sonarr", "sonarr/4k"])
def test_series_episodes_files_and_history_agree(sims: RunningSimulators, instance: str) -> None:
    root = "/data/media/tv4k/" if instance.endswith("/4k") else "/data/media/tv/"
    series = {s["id"]: s for s in _get(sims, instance, "/api/v3/series")}
    assert series and all(s["path"].startswith(root) and s["rootFolderPath"] == root for s in series.values())
    episodes: dict[int, dict[str, Any]] = {}
    files: dict[int, dict[str, Any]] = {}
    for series_id, one in series.items():
        assert _get(sims, instance, f"/api/v3/series/{series_id}") == one
        assert [s["id"] for s in _get(sims, instance, "/api/v3/series", tvdbId=one["tvdbId"])] == [series_id]
        listed = _get(sims, instance, "/api/v3/episode", seriesId=series_id)
        on_disk = {f["id"]: f for f in _get(sims, instance, "/api/v3/episodefile", seriesId=series_id)}
        assert {e["episodeFileId"] for e in listed if e["hasFile"]} == set(on_disk)
        assert all(f["path"].startswith(one["path"] + "/") for f in on_disk.values())
        assert one["statistics"]["episodeFileCount"] == len(on_disk)
        episodes.update({e["id"]: e for e in listed})
        files.update(on_disk)
    history = _get(sims, instance, "/api/v3/history", pageSize=100_000)["records"]
    assert history
    for record in history:
        assert episodes[record["episodeId"]]["seriesId"] == record["seriesId"]
        imported = files.get(int(record["data"].get("fileId", 0)))
        if record["eventType"] == "downloadFolderImported" and imported:
            assert record["data"]["importedPath"] == imported["path"]
    if instance.endswith("/4k"):
        assert {f["quality"]["quality"]["resolution"] for f in files.values()} == {2160}


@pytest.mark.parametrize("instance", ["radarr", "radarr/4k"])
def test_movies_files_and_history_agree(sims: RunningSimulators, instance: str) -> None:
    root = "/data/media/movies4k" if instance.endswith("/4k") else "/data/media/movies"
    movies = {m["id"]: m for m in _get(sims, instance, "/api/v3/movie")}
    assert movies and all(m["path"].startswith(root + "/") and m["rootFolderPath"] == root for m in movies.values())
    with_file = sorted(i for i, m in movies.items() if m["hasFile"])
    files = {f["movieId"]: f for f in _get(sims, instance, "/api/v3/moviefile", movieId=with_file)}
    assert sorted(files) == with_file
    assert all(files[i] == movies[i]["movieFile"] for i in with_file)
    one = movies[with_file[0]]
    assert [m["id"] for m in _get(sims, instance, "/api/v3/movie", tmdbId=one["tmdbId"])] == [one["id"]]
    history = _get(sims, instance, "/api/v3/history", pageSize=100_000)["records"]
    assert history and all(r["movieId"] in movies for r in history)
    for record in history:
        if record["eventType"] == "downloadFolderImported" and record["movieId"] in files:
            assert record["data"]["importedPath"] == files[record["movieId"]]["path"]
    if instance.endswith("/4k"):
        assert {f["quality"]["quality"]["resolution"] for f in files.values()} == {2160}


def test_both_radarrs_name_the_same_titles_by_tmdb_id(sims: RunningSimulators) -> None:
    hd = {m["tmdbId"]: m for m in _get(sims, "radarr", "/api/v3/movie")}
    uhd = {m["tmdbId"]: m for m in _get(sims, "radarr/4k", "/api/v3/movie")}
    assert uhd.keys() < hd.keys()
    assert all((m["title"], m["imdbId"]) == (hd[tmdb]["title"], hd[tmdb]["imdbId"]) for tmdb, m in uhd.items())
    assert _get(sims, "radarr/4k", "/api/v3/system/status")["instanceName"] == "Radarr 4K"


def test_faults_and_keys_are_each_instances_own(sims: RunningSimulators) -> None:
    assert sims.keys["sonarr/4k"] != sims.keys["sonarr"]
    status = "/api/v3/system/status"
    wrong_key = httpx.get(sims.urls["sonarr/4k"] + status, headers={"X-Api-Key": sims.keys["sonarr"]})
    assert wrong_key.status_code == 401
    sims.simulation.faults["sonarr/4k"].update(fail_next=[503])
    try:
        assert (
            httpx.get(sims.urls["sonarr/4k"] + status, headers={"X-Api-Key": sims.keys["sonarr/4k"]}).status_code == 503
        )
        assert httpx.get(sims.urls["sonarr"] + status, headers={"X-Api-Key": sims.keys["sonarr"]}).status_code == 200
    finally:
        sims.simulation.faults["sonarr/4k"].clear()


def test_env_declares_and_configures_the_4k_instances(sims: RunningSimulators, monkeypatch: pytest.MonkeyPatch) -> None:
    env = sims.env()
    assert env["SMARTPLEX_INSTANCES"] == "sonarr:4k,radarr:4k"
    assert env["SMARTPLEX_SONARR_4K_URL"] == sims.urls["sonarr/4k"]
    assert env["SMARTPLEX_RADARR_4K_API_KEY"] == sims.keys["radarr/4k"]
    for name in list(os.environ):
        if name.startswith("SMARTPLEX_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert [i.id for i in settings.service_instances] == list(sims.urls)
    for instance_id in sims.urls:
        instance = settings.instance(instance_id)
        assert settings.is_configured(instance)
        assert settings.service_url(instance) == sims.urls[instance_id]
        credential = settings.service_credential(instance)
        assert credential is not None and credential.get_secret_value() == sims.keys[instance_id]
    with sims.client("radarr/4k") as client:
        assert len(list(client.iter_all())) == len(_four_k(sims).movies)


def test_only_the_4k_instances_can_be_added() -> None:
    with pytest.raises(ValueError, match="sonarr/4k, radarr/4k"), run_simulators(size=0, extra_instances=["plex/4k"]):
        pass


def test_a_template_names_the_4k_instances_only_with_an_instance_path() -> None:
    assert set(WebhookSender.from_template("http://h.test/{kind}").targets) == set(KIND_NAMES)
    targets = WebhookSender.from_template(TEMPLATE).targets
    assert targets["sonarr"] == "http://hooks.test/api/webhooks/sonarr?token=t"
    assert targets["radarr/4k"] == "http://hooks.test/api/webhooks/radarr/4k?token=t"


def test_a_template_with_an_unknown_placeholder_says_which() -> None:
    with pytest.raises(ValueError, match=r"no placeholder \{service\}; use \{kind\}"):
        WebhookSender.from_template("http://h.test/{service}")


@pytest.fixture
def receiver(sims: RunningSimulators) -> Receiver:
    receiver = Receiver()
    sims.simulation.webhooks = WebhookSender.from_template(
        TEMPLATE, httpx.Client(transport=httpx.MockTransport(receiver))
    )
    return receiver


def _split(items: list[Any], four_k: Library4K) -> tuple[Any, Any]:
    """One item the 4K library copied, and one it did not."""
    inside = [i for i in items if four_k.copy_of(i) is not None]
    outside = [i for i in items if four_k.copy_of(i) is None]
    assert inside and outside, "the seed puts no added title on one side: add more"
    return inside[0], outside[0]


def _events(receiver: Receiver, instance: str) -> list[tuple[str, int]]:
    """(event, series or movie id) of each webhook the instance sent."""
    return [(b["eventType"], (b.get("series") or b["movie"])["id"]) for b in receiver.bodies(instance)]


def _matches_example(body: dict[str, Any], kind: str) -> bool:
    problems = shape_problems(body, [_example(kind, body["eventType"])])
    return [p for p in problems if p.rsplit(" ", 1)[-1] not in OPTIONAL_IN_HOOKS] == []


def test_a_series_in_the_4k_share_changes_in_both_sonarrs(sims: RunningSimulators, receiver: Receiver) -> None:
    four_k, sim = _four_k(sims), sims.simulation
    show, other = _split([sim.add_show(f"Both {n}", seasons=1, episodes_per_season=2) for n in range(8)], four_k)
    copy = four_k.copy_of(show)
    assert copy is not None and copy.tvdb_id == show.tvdb_id
    assert [s["id"] for s in _get(sims, "sonarr/4k", "/api/v3/series", tvdbId=show.tvdb_id)] == [copy.id]
    assert _get(sims, "sonarr/4k", "/api/v3/series", tvdbId=other.tvdb_id) == []
    assert ("SeriesAdd", copy.id) in _events(receiver, "sonarr/4k")
    assert _events(receiver, "sonarr/4k").count(("Download", copy.id)) == 2
    assert not [b for b in receiver.bodies("sonarr/4k") if b["series"]["tvdbId"] == other.tvdb_id]
    added = next(
        b for b in receiver.bodies("sonarr/4k") if b["eventType"] == "SeriesAdd" and b["series"]["id"] == copy.id
    )
    assert added["series"]["path"].startswith("/data/media/tv4k/") and added["instanceName"] == "Sonarr 4K"

    episode = show.episodes[0]
    copied_episode = four_k.copy_of(episode)
    assert isinstance(copied_episode, Episode) and copied_episode.show is copy
    sim.delete_episode_file(episode.id)
    deleted = [b for b in receiver.bodies("sonarr/4k") if b["eventType"] == "EpisodeFileDelete"]
    assert [b["episodes"][0]["id"] for b in deleted] == [copied_episode.id]
    assert copied_episode.file_id is None
    assert len(_get(sims, "sonarr/4k", "/api/v3/episodefile", seriesId=copy.id)) == 1
    sim.delete_series(show.id)
    sim.delete_series(other.id)
    assert _events(receiver, "sonarr/4k")[-1] == ("SeriesDelete", copy.id)
    deleted_in_hd = [e for e in _events(receiver, "sonarr") if e[0] == "SeriesDelete"]
    assert deleted_in_hd == [("SeriesDelete", show.id), ("SeriesDelete", other.id)]
    gone = httpx.get(f"{sims.urls['sonarr/4k']}/api/v3/series/{copy.id}", headers={"X-Api-Key": sims.keys["sonarr/4k"]})
    assert gone.status_code == 404 and four_k.copy_of(show) is None
    assert all(_matches_example(b, "sonarr") for b in receiver.bodies("sonarr/4k"))


def test_a_movie_in_the_4k_share_changes_in_both_radarrs(sims: RunningSimulators, receiver: Receiver) -> None:
    four_k, sim = _four_k(sims), sims.simulation
    movie, other = _split([sim.add_movie(f"Both {n}") for n in range(8)], four_k)
    copy = four_k.copy_of(movie)
    assert isinstance(copy, Movie) and (copy.tmdb_id, copy.imdb_id) == (movie.tmdb_id, movie.imdb_id)
    assert [("MovieAdded", copy.id), ("Download", copy.id)] == [
        e for e in _events(receiver, "radarr/4k") if e[1] == copy.id
    ]
    assert not [b for b in receiver.bodies("radarr/4k") if b["movie"]["tmdbId"] == other.tmdb_id]

    sim.update_movie(movie.id, title="Renamed Both")
    assert _get(sims, "radarr/4k", f"/api/v3/movie/{copy.id}")["title"] == "Renamed Both"
    sim.delete_movie_file(movie.id)
    assert _events(receiver, "radarr/4k")[-1] == ("MovieFileDelete", copy.id)
    assert _get(sims, "radarr/4k", "/api/v3/moviefile", movieId=copy.id) == []
    history = _get(sims, "radarr/4k", "/api/v3/history", movieIds=copy.id)["records"]
    assert history[0]["eventType"] == "movieFileDeleted"
    sim.delete_movie(movie.id)
    sim.delete_movie(other.id)
    assert _events(receiver, "radarr/4k")[-1] == ("MovieDelete", copy.id)
    assert _events(receiver, "radarr")[-2:] == [("MovieDelete", movie.id), ("MovieDelete", other.id)]
    assert _get(sims, "radarr/4k", "/api/v3/history", movieIds=copy.id)["totalRecords"] == 0
    assert all(_matches_example(b, "radarr") for b in receiver.bodies("radarr/4k"))
