"""A processed webhook means its change is in the table: each item a webhook names is fetched by id.

The simulators' clock here is fixed 30 days back, so everything their mutations create is stamped
outside the incremental window: only the webhooks themselves can bring it in. Webhooks go through
the real API, the real sensor claims them, and its run requests execute as the daemon would.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Table, select

from smartplex.schema import (
    overseerr_requests,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    tautulli_watch_history,
    webhook_log,
)
from smartplex.sync import SPECS, run_sync
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_simulators import webhooks
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Episode, Movie, Universe
from tests.conftest import DAY, WEBHOOK_SECRET, load_fixture, make_settings
from tests.dagster.test_webhook_sensor import _run, tick
from tests.helpers import statuses

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")


@pytest.fixture
def sims() -> Iterator[RunningSimulators]:
    """The services' clock a month behind ours (the ``resources`` fixture points at these)."""
    universe = Universe(seed=21, size=300, now=int(time.time()) - 30 * DAY)
    with run_simulators(simulation=Simulation(universe)) as running:
        yield running


@pytest.fixture
def api(database_url: str, tmp_path: Any, engine: Engine) -> Iterator[TestClient]:
    from webhook_api.app import create_app

    with TestClient(create_app(make_settings(database_url, tmp_path))) as client:
        yield client


def _deliver_to(api: TestClient, sims: RunningSimulators) -> None:
    """The simulators send each service's own webhooks to the API."""
    template = f"http://testserver/api/webhooks/{{kind}}?token={WEBHOOK_SECRET}"
    sims.simulation.webhooks = webhooks.WebhookSender.from_template(template, client=api)


def _baseline(engine: Engine, sims: RunningSimulators) -> None:
    for service, spec in SPECS.items():
        with sims.client(service) as client:
            run_sync(engine, client, spec, None)


def _handle_webhooks(instance: dg.DagsterInstance, database: DatabaseResource, resources: dict) -> list[Any]:
    requests = tick(instance, database)
    assert not isinstance(requests, dg.SkipReason), requests
    results = [_run(request, instance, resources) for request in requests]
    assert all(r.success for r in results)
    assert isinstance(tick(instance, database), dg.SkipReason)  # the reconciler settles every row
    return results


def _live(engine: Engine, table: Table, column: str, value: Any) -> dict[str, Any] | None:
    with engine.connect() as connection:
        query = select(table).where(table.c[column] == value, table.c.deleted_at.is_(None))
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def test_changes_older_than_the_window_land_through_their_webhooks_alone(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, api: TestClient,
) -> None:  # fmt: skip
    _baseline(engine, sims)
    _deliver_to(api, sims)
    simulation, universe = sims.simulation, sims.universe
    movie = simulation.add_movie("A Month Old Movie")  # radarr, plex library.new, tautulli created
    show = simulation.add_show("A Month Old Show", seasons=1, episodes_per_season=3)  # sonarr, plex, tautulli
    watched = next(e for e in universe.episodes.values() if e.rating_key is not None and e.show is not show)
    play = simulation.record_play(watched.rating_key, percent=100)  # plex media.scrobble, tautulli watched
    partial = simulation.record_play(movie.rating_key, percent=30)  # tautulli stop
    target = next(m for m in universe.movies.values() if m is not movie and all(
        r.target is not m for r in universe.requests.values()))  # fmt: skip
    request = simulation.request_media(movie_id=target.id)  # overseerr MEDIA_PENDING
    simulation.approve_request(request.id)  # overseerr MEDIA_APPROVED
    assert all(d.status == 202 for d in simulation.webhooks.deliveries), simulation.webhooks.deliveries

    _handle_webhooks(instance, database, resources)

    assert statuses(engine) == {"processed": len(simulation.webhooks.deliveries) - 1, "ignored": 1}  # media.stop
    assert _live(engine, radarr_movies, "id", movie.id)["title"] == "A Month Old Movie"
    assert _live(engine, sonarr_series, "id", show.id)["episode_file_count"] == 3
    assert _live(engine, plex_library_items, "rating_key", str(movie.rating_key))["title"] == "A Month Old Movie"
    assert _live(engine, plex_library_items, "rating_key", str(show.rating_key))["type"] == "show"
    for episode in show.episodes:  # the show's episodes come with it
        assert _live(engine, plex_library_items, "rating_key", str(episode.rating_key))["type"] == "episode"
    assert _live(engine, plex_library_items, "rating_key", str(watched.rating_key))["view_count"] == watched.view_count
    for each in (play, partial):
        assert _live(engine, tautulli_watch_history, "row_id", each.id)["rating_key"] == str(each.rating_key)
    assert _live(engine, overseerr_requests, "id", request.id)["status"] == 2  # approved


def _post(api: TestClient, source: str, body: dict[str, Any]) -> None:
    url = f"/api/webhooks/{source}?token={WEBHOOK_SECRET}"
    if source == "plex":
        import json

        response = api.post(url, files={"payload": (None, json.dumps(body))})
    else:
        response = api.post(url, json=body)
    assert response.status_code == 202, response.text


def _unknown(source: str, fixture: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = load_fixture("webhooks", source, fixture)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


def test_a_webhook_naming_an_item_the_service_does_not_have_is_finished_as_missing(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, api: TestClient,
) -> None:  # fmt: skip
    _baseline(engine, sims)
    gone = next(iter(sims.universe.movies.values()))
    sims.simulation.delete_movie(gone.id)  # Radarr no longer has it: its delete webhook is what it says
    unknown = {
        "plex": _unknown("plex", "library.new.json", ("Metadata", "ratingKey"), "987654"),
        "tautulli": _unknown("tautulli", "watched.json", ("rating_key",), "987654"),
        "sonarr": _unknown("sonarr", "SeriesAdd.json", ("series", "id"), 987654),
        "overseerr": _unknown("overseerr", "MEDIA_APPROVED.json", ("request", "request_id"), "987654"),
    }
    for source, body in unknown.items():
        _post(api, source, body)
    _post(api, "radarr", webhooks.radarr_movie_delete(gone, 0).body)

    _handle_webhooks(instance, database, resources)

    with engine.connect() as connection:
        rows = {r["source"]: dict(r) for r in connection.execute(select(webhook_log)).mappings()}
    notes = {
        "plex": "Plex Media Server has no item with ratingKey 987654",
        "tautulli": "Tautulli has no item with ratingKey 987654",
        "sonarr": "Sonarr has no series 987654",
        "overseerr": "Overseerr has no request 987654",
    }
    for source, note in notes.items():
        row = rows[source]
        assert (row["status"], row["processed"], row["error_message"]) == ("missing", True, note), row
        assert row["run_id"] is not None and row["processed_at"] is not None
    radarr = rows["radarr"]
    assert (radarr["status"], radarr["error_message"]) == ("processed", None)
    assert _live(engine, radarr_movies, "id", gone.id) is None  # the deletion is confirmed and applied


def test_the_status_endpoint_counts_missing_rows(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, api: TestClient,
) -> None:  # fmt: skip
    _post(api, "overseerr", _unknown("overseerr", "MEDIA_PENDING.json", ("request", "request_id"), "55555"))
    _handle_webhooks(instance, database, resources)
    from tests.conftest import ADMIN

    status = api.get("/api/webhooks/status", headers=ADMIN).json()
    assert status["sources"]["overseerr"]["missing"] == 1
    assert status["totals"]["missing"] == 1 and status["totals"]["processed"] == 0


def test_an_episode_named_alone_brings_its_show(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, api: TestClient,
) -> None:  # fmt: skip
    """Plex announces what it added; a new show's first episode must not arrive without its show."""
    show = sims.simulation.add_show("Only Its Episodes", seasons=1, episodes_per_season=2)
    episode: Episode = show.episodes[0]
    body = webhooks.plex_event("library.new", episode, sims.universe, sims.universe.users[0]).body
    _post(api, "plex", body)
    _handle_webhooks(instance, database, resources)
    assert _live(engine, plex_library_items, "rating_key", str(show.rating_key))["title"] == "Only Its Episodes"
    assert _live(engine, plex_library_items, "rating_key", str(episode.rating_key))["grandparent_rating_key"] == str(
        show.rating_key
    )
    assert isinstance(sims.universe.plex[show.rating_key], type(show)) and not isinstance(show, Movie)


def test_a_missing_row_replayed_once_the_item_exists_lands_it(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, api: TestClient,
) -> None:  # fmt: skip
    from tests.conftest import ADMIN

    request_id = max(sims.universe.requests) + 1  # the next request Overseerr will create
    _post(api, "overseerr", _unknown("overseerr", "MEDIA_PENDING.json", ("request", "request_id"), str(request_id)))
    _handle_webhooks(instance, database, resources)
    assert statuses(engine) == {"missing": 1}

    target = next(
        m for m in sims.universe.movies.values() if all(r.target is not m for r in sims.universe.requests.values())
    )
    assert sims.universe.request_media(target).id == request_id
    replay = api.post("/api/admin/webhooks/replay", json={"status": "missing"}, headers=ADMIN)
    assert replay.status_code == 200 and replay.json() == {"replayed": 1}
    _handle_webhooks(instance, database, resources)
    assert statuses(engine) == {"processed": 1}
    assert _live(engine, overseerr_requests, "id", request_id)["status"] == 1
