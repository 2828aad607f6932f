"""Every client pages to the end and no further: 0, 1, page size and page size + 1 items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartplex_simulators import Simulation
from tests.simulators.support import asgi_client, empty_simulation

PAGE = 3


def _add(sim: Simulation, service: str, count: int) -> None:
    """Make ``count`` items of what ``service``'s full refresh lists."""
    for n in range(count):
        if service in ("plex", "radarr"):
            sim.add_movie(f"Movie {n}")
        elif service == "sonarr":
            sim.add_show(f"Show {n}", seasons=1, episodes_per_season=1)
        elif service == "tautulli":
            movie = sim.add_movie(f"Movie {n}") if n == 0 else sim.universe.movies[1]
            sim.record_play(movie.rating_key)  # type: ignore[arg-type]
        else:
            sim.request_media(movie_id=sim.add_movie(f"Movie {n}").id)
        sim.advance_clock(60)


@pytest.mark.parametrize("count", [0, 1, PAGE, PAGE + 1])
@pytest.mark.parametrize("service", ["plex", "tautulli", "overseerr"])
def test_offset_paging_reads_every_item_once(service: str, count: int) -> None:
    sim = empty_simulation()
    _add(sim, service, count)
    with asgi_client(service, sim, page_size=PAGE) as client:
        items = list(client.iter_all())
        pages = client.stats.pages
    key = {"plex": "rating_key", "tautulli": "row_id", "overseerr": "id"}[service]
    keys = [getattr(i, key) for i in items]
    assert len(items) == count
    assert len(set(keys)) == count
    # Stops on the page that reaches the total; an empty listing still costs one page, and Plex
    # also lists the (empty) shows and episodes of its TV section.
    assert pages == max(1, -(-count // PAGE)) + (2 if service == "plex" else 0)


@pytest.mark.parametrize("count", [0, 1, PAGE, PAGE + 1])
@pytest.mark.parametrize("service", ["sonarr", "radarr"])
def test_arr_full_refresh_streams_the_unpaged_array(service: str, count: int) -> None:
    sim = empty_simulation()
    _add(sim, service, count)
    with asgi_client(service, sim, page_size=PAGE) as client:
        ids = [item.id for item in client.iter_all()]
    assert sorted(ids) == list(range(1, count + 1))


@pytest.mark.parametrize("count", [0, 1, PAGE, PAGE + 1])
def test_arr_history_pages_through_the_window(count: int) -> None:
    """Each movie import writes two history records; the window walks all their pages."""
    sim = empty_simulation()
    start = datetime.fromtimestamp(sim.universe.now, UTC)
    _add(sim, "radarr", count)
    end = datetime.fromtimestamp(sim.universe.now, UTC) + timedelta(seconds=1)
    with asgi_client("radarr", sim, page_size=PAGE) as client:
        changed = list(client.iter_changed(start, end))
        history_pages = client.stats.pages  # the few changed movies are then fetched one by one
    assert sorted(m.id for m in changed) == list(range(1, count + 1))
    # Newest first, reading stops at the first record older than the window: the grab of the first
    # movie, ten minutes before its import, which sorts right after the `count` imports.
    assert history_pages == -(-(count + 1) // PAGE)


def test_plex_lists_shows_and_episodes_of_tv_sections() -> None:
    sim = empty_simulation()
    show = sim.add_show("Only Show", seasons=2, episodes_per_season=2)
    with asgi_client("plex", sim, page_size=PAGE) as client:
        items = list(client.iter_all())
    assert [i.type for i in items].count("show") == 1
    episodes = [i for i in items if i.type == "episode"]
    assert {i.rating_key for i in episodes} == {str(e.rating_key) for e in show.episodes}
    assert all(e.grandparent_rating_key == str(show.rating_key) for e in episodes)
    assert {i.ids.tvdb for i in items if i.type == "show"} == {show.tvdb_id}
