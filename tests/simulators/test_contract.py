"""The client libraries people already use work against the simulators unchanged."""

from __future__ import annotations

from datetime import datetime

import pytest
from plexapi.exceptions import Unauthorized as PlexUnauthorized
from plexapi.server import PlexServer
from pyarr import RadarrAPI, SonarrAPI
from pyarr.exceptions import PyarrUnauthorizedError

from smartplex.instances import Instance
from smartplex_simulators import RunningSimulators
from smartplex_simulators.universe import Movie, Show


@pytest.fixture(scope="module")
def plex(sims: RunningSimulators) -> PlexServer:
    return PlexServer(sims.urls["plex"], sims.keys["plex"])


def test_plexapi_reads_the_server_and_its_sections(plex: PlexServer, sims: RunningSimulators) -> None:
    assert plex.friendlyName == "Plexbox"
    assert plex.machineIdentifier == sims.universe.machine_id
    sections = {s.title: s for s in plex.library.sections()}
    assert {(s.TYPE, s.key) for s in sections.values()} == {("movie", 1), ("show", 2)}


def test_plexapi_pages_through_a_whole_section(plex: PlexServer, sims: RunningSimulators) -> None:
    movies = plex.library.sectionByID(1).all()  # 100 per request, as python-plexapi pages
    expected = [m for m in sims.universe.plex.values() if isinstance(m, Movie)]
    assert len(movies) == len(expected) > 100
    assert {m.ratingKey for m in movies} == {m.rating_key for m in expected}
    sample = next(m for m in movies if m.ratingKey == expected[0].rating_key)
    assert f"tmdb://{expected[0].tmdb_id}" in [g.id for g in sample.guids]
    assert sample.media[0].parts[0].file.endswith(".mkv")


def test_plexapi_searches_a_section_by_title_and_type(plex: PlexServer, sims: RunningSimulators) -> None:
    target = next(i for i in sims.universe.plex.values() if isinstance(i, Movie))
    found = plex.library.sectionByID(1).search(title=target.title)
    assert target.rating_key in [m.ratingKey for m in found]
    assert all(target.title.lower() in m.title.lower() for m in found)
    episodes = plex.library.sectionByID(2).search(libtype="episode")
    assert len(episodes) == len(sims.universe.plex_section("episode"))


def test_plexapi_filters_and_sorts_in_the_servers_grammar(plex: PlexServer, sims: RunningSimulators) -> None:
    """python-plexapi checks fields and operators against the section's metadata, then sends them."""
    movies = [m for m in sims.universe.plex.values() if isinstance(m, Movie)]
    cutoff = sorted(m.plex_added for m in movies)[-6]
    found = plex.library.sectionByID(1).search(sort="addedAt:desc", **{"addedAt>>": datetime.fromtimestamp(cutoff)})
    newest = sorted(
        (m for m in movies if m.plex_added > cutoff), key=lambda m: (m.plex_added, m.rating_key), reverse=True
    )
    assert [m.ratingKey for m in found] == [m.rating_key for m in newest]
    assert len(found) == 5
    watched = plex.library.sectionByID(1).search(**{"viewCount>>": 0})
    assert {m.ratingKey for m in watched} == {m.rating_key for m in movies if m.view_count > 0}


def test_plexapi_walks_a_show_to_its_episodes(plex: PlexServer, sims: RunningSimulators) -> None:
    show = next(i for i in sims.universe.plex.values() if isinstance(i, Show))
    fetched = plex.fetchItem(show.rating_key)
    assert fetched.title == show.title
    assert sorted(e.ratingKey for e in fetched.episodes()) == sorted(
        e.rating_key for e in show.episodes if e.rating_key is not None
    )


def test_plexapi_rejects_a_bad_token(sims: RunningSimulators) -> None:
    with pytest.raises(PlexUnauthorized):
        PlexServer(sims.urls["plex"], "not-the-token")


@pytest.mark.parametrize("instance", ["sonarr", "sonarr/4k"])
def test_pyarr_reads_sonarr(sims: RunningSimulators, instance: str) -> None:
    library = sims.universe.arr_library(Instance.parse(instance).name)
    sonarr = SonarrAPI(sims.urls[instance], sims.keys[instance])
    series = sonarr.get_series()
    assert {s["tvdbId"] for s in series} == {s.tvdb_id for s in library.shows.values()}
    first = library.shows[1]
    assert sonarr.get_series(first.id)["title"] == first.title
    assert [s["id"] for s in sonarr.get_series(first.tvdb_id, tvdb=True)] == [first.id]
    history = sonarr.get_history(page=1, page_size=5, sort_key="date", sort_dir="descending")
    assert history["totalRecords"] == len(library.sonarr_history)
    dates = [r["date"] for r in history["records"]]
    assert len(dates) == 5 and dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("instance", ["radarr", "radarr/4k"])
def test_pyarr_reads_radarr(sims: RunningSimulators, instance: str) -> None:
    library = sims.universe.arr_library(Instance.parse(instance).name)
    radarr = RadarrAPI(sims.urls[instance], sims.keys[instance])
    movies = radarr.get_movie()
    assert len(movies) == len(library.movies)
    target = library.movies[3]
    assert [m["id"] for m in radarr.get_movie(target.tmdb_id, tmdb=True)] == [target.id]
    history = radarr.get_history(page=2, page_size=10, sort_key="date", sort_dir="descending")
    assert history["page"] == 2 and len(history["records"]) == 10
    assert history["totalRecords"] == len(library.radarr_history)


def test_pyarr_rejects_a_bad_key(sims: RunningSimulators) -> None:
    with pytest.raises(PyarrUnauthorizedError):
        RadarrAPI(sims.urls["radarr"], "nope").get_movie()
    with pytest.raises(PyarrUnauthorizedError):  # each instance has its own key
        RadarrAPI(sims.urls["radarr/4k"], sims.keys["radarr"]).get_movie()
