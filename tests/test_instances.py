"""Several instances of one service (Sonarr and Sonarr 4K): configuration, webhooks, schedules, status
and the sensor's runs keep each instance to itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, insert, select

from smartplex.instances import Instance
from smartplex.schema import (
    media_catalog,
    media_catalog_copies,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    sync_schedule,
    tautulli_watch_history,
    watch_stats,
    webhook_log,
)
from smartplex.settings import Settings, SettingsBase
from smartplex.sync import SPECS, recompute_media_catalog, recompute_watch_stats, run_sync
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.webhook_sensor import webhook_sensor
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from tests.api.test_admin_page import sign_in
from tests.conftest import ADMIN, HOOK, instance_env, load_fixture, make_settings
from tests.helpers import snapshot, webhook_rows

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")

SONARR = load_fixture("webhooks", "sonarr", "Download.json")
Declare = Callable[..., dict[str, str]]


# --- configuration -------------------------------------------------------------------------------


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> SettingsBase:
    for name in [n for n in os.environ if n.startswith("SMARTPLEX_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_declared_instances_follow_their_kinds_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    env = instance_env("sonarr:4k", "radarr:4k", "plex:office", SMARTPLEX_SONARR_4K_WEBHOOK_SECRET="4k-secret")
    settings = _settings(monkeypatch, {**env, "SMARTPLEX_WEBHOOK_SECRET_SONARR": "hd-secret"})
    assert [i.id for i in settings.service_instances] == [
        "plex", "plex/office", "tautulli", "sonarr", "sonarr/4k", "radarr", "radarr/4k", "overseerr",
    ]  # fmt: skip
    sonarr_4k, plex_office, radarr_4k = (settings.instance(i) for i in ("sonarr/4k", "plex/office", "radarr/4k"))
    assert settings.service_url(sonarr_4k) == "http://127.0.0.1:9"
    assert settings.service_credential(plex_office).get_secret_value() == "plex_office-key"  # type: ignore[union-attr]
    assert env["SMARTPLEX_PLEX_OFFICE_TOKEN"] == "plex_office-key"  # Plex's credential is its token
    assert settings.is_configured(radarr_4k) and not settings.is_configured(settings.instance("radarr"))
    # Its own secret; else its kind's; the default instance is not affected by the 4K one's.
    assert settings.webhook_secret_for(sonarr_4k).get_secret_value() == "4k-secret"  # type: ignore[union-attr]
    assert settings.webhook_secret_for(settings.instance("sonarr")).get_secret_value() == "hd-secret"  # type: ignore[union-attr]
    assert settings.webhook_secret_for(radarr_4k) is None
    assert settings.instance("sonarr/4k") == Instance.parse("sonarr/4k")
    with pytest.raises(KeyError):
        settings.instance("sonarr/uhd")


def test_without_declarations_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {"SMARTPLEX_SONARR_URL": "http://sonarr:8989", "SMARTPLEX_SONARR_API_KEY": "k"})
    assert [i.id for i in settings.service_instances] == ["plex", "tautulli", "sonarr", "radarr", "overseerr"]
    sonarr = settings.service_instances[2]
    assert (sonarr.library_asset, sonarr.slug, sonarr.title) == ("sonarr/series", "sonarr", "Sonarr")
    assert sonarr.env_names == ("SMARTPLEX_SONARR_URL", "SMARTPLEX_SONARR_API_KEY")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # Ambiguous: what would the second one be?
        (instance_env("sonarr:4k") | {"SMARTPLEX_INSTANCES": "sonarr:4k,sonarr:4K"}, "SMARTPLEX_INSTANCES names sonarr:4k twice"),
        ({"SMARTPLEX_INSTANCES": "sonarr:default"}, "SMARTPLEX_INSTANCES: 'sonarr:default': 'default' is the instance"),
        ({"SMARTPLEX_INSTANCES": "sonar:4k"}, "SMARTPLEX_INSTANCES: unknown service 'sonar'"),
        ({"SMARTPLEX_INSTANCES": "sonarr"}, "SMARTPLEX_INSTANCES: 'sonarr' needs a name, as SERVICE:NAME"),
        ({"SMARTPLEX_INSTANCES": "sonarr:4-k"}, "SMARTPLEX_INSTANCES: bad name '4-k'"),
        # Configured but not declared: a typo, or a forgotten declaration.
        ({"SMARTPLEX_SONARR_4K_URL": "http://x"}, "SMARTPLEX_SONARR_4K_URL is set, but SMARTPLEX_INSTANCES does not declare sonarr:4k"),
        (instance_env("sonarr:4k") | {"SMARTPLEX_RADARR_UHD_API_KEY": "k"}, "SMARTPLEX_RADARR_UHD_API_KEY is set"),
        # Incomplete.
        ({"SMARTPLEX_INSTANCES": "sonarr:4k", "SMARTPLEX_SONARR_4K_API_KEY": "k"}, "SMARTPLEX_SONARR_4K_URL is not set"),
        ({"SMARTPLEX_INSTANCES": "sonarr:4k", "SMARTPLEX_SONARR_4K_URL": "http://x"}, "SMARTPLEX_SONARR_4K_API_KEY is not set"),
        ({"SMARTPLEX_INSTANCES": "plex:office", "SMARTPLEX_PLEX_OFFICE_URL": "http://x"}, "SMARTPLEX_PLEX_OFFICE_TOKEN is not set"),
    ],
    ids=["twice", "default", "unknown", "no-name", "bad-name", "undeclared", "undeclared-key", "no-url", "no-key", "no-token"],
)  # fmt: skip
def test_an_ambiguous_or_incomplete_declaration_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(monkeypatch, env)


def test_every_command_refuses_to_start_and_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLEX_")}
    env |= {
        "SMARTPLEX_DATA_DIR": str(tmp_path),
        "SMARTPLEX_INSTANCES": "sonarr:4k",
        "SMARTPLEX_SONARR_4K_URL": "http://x",
    }
    for command in (["check"], ["api", "--port", "0"], ["db", "upgrade"]):
        result = subprocess.run(
            [sys.executable, "-m", "smartplex_cli", *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0, command
        assert "SMARTPLEX_SONARR_4K_API_KEY is not set" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr


# --- webhooks, status and schedules --------------------------------------------------------------


@pytest.fixture
def client(database_url: str, tmp_path: Path, engine: Engine, declare: Declare) -> Iterator[TestClient]:
    from webhook_api.app import create_app

    declare("sonarr:4k")
    with TestClient(create_app(make_settings(database_url, tmp_path))) as test_client:
        yield test_client


def test_webhooks_land_on_their_own_instance(client: TestClient, engine: Engine) -> None:
    hd = client.post("/api/webhooks/sonarr", json=SONARR, headers=HOOK)
    uhd = client.post("/api/webhooks/sonarr/4k", json=SONARR, headers=HOOK)
    also_default = client.post("/api/webhooks/sonarr/default", json=SONARR, headers=HOOK)
    assert (hd.status_code, uhd.status_code, also_default.status_code) == (202, 202, 202)
    assert (hd.json()["instance"], hd.json()["stale_assets"]) == ("default", ["sonarr/series"])
    assert (uhd.json()["instance"], uhd.json()["stale_assets"]) == ("4k", ["sonarr_4k/series"])
    stored = {str(row["id"]): row["instance"] for row in webhook_rows(engine)}
    assert stored == {hd.json()["id"]: "default", uhd.json()["id"]: "4k", also_default.json()["id"]: "default"}


@pytest.mark.parametrize("path", ["/api/webhooks/sonarr/uhd", "/api/webhooks/radarr/4k", "/api/webhooks/sonarr/4K!"])
def test_a_webhook_to_an_unknown_instance_is_404_and_stores_nothing(
    client: TestClient, engine: Engine, path: str
) -> None:
    before = snapshot(engine)
    response = client.post(path, json=SONARR, headers=HOOK)
    assert response.status_code == 404, response.text
    assert "is configured" in response.json()["detail"]
    assert client.post(path, json=SONARR).status_code == 401  # the secret is still checked first
    assert snapshot(engine) == before


def test_status_and_schedules_are_per_instance(client: TestClient, engine: Engine) -> None:
    for _ in range(2):
        client.post("/api/webhooks/sonarr/4k", json=SONARR, headers=HOOK)
    client.post("/api/webhooks/sonarr", json=SONARR, headers=HOOK)
    sources = client.get("/api/webhooks/status", headers=ADMIN).json()["sources"]
    assert (sources["sonarr"]["received"], sources["sonarr/4k"]["received"]) == (1, 2)
    assert (sources["sonarr"]["backlog"], sources["sonarr/4k"]["backlog"]) == (1, 2)

    listed = {row["library"]: row for row in client.get("/api/admin/schedules", headers=ADMIN).json()}
    assert set(listed) == {"plex", "tautulli", "sonarr", "sonarr/4k", "radarr", "overseerr"}
    assert (listed["sonarr/4k"]["service"], listed["sonarr/4k"]["instance"]) == ("sonarr", "4k")
    # Made from Sonarr's seed; changed on its own.
    assert (listed["sonarr/4k"]["enabled"], listed["sonarr/4k"]["interval_hours"]) == (False, 24)
    changed = client.patch("/api/admin/schedules/sonarr/4k", json={"enabled": True, "interval_hours": 3}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["interval_hours"] == 3
    assert client.post("/api/admin/schedules/sonarr/4k/sync", headers=ADMIN).status_code == 202
    assert client.patch("/api/admin/schedules/sonarr/uhd", json={"enabled": True}, headers=ADMIN).status_code == 404
    with engine.connect() as connection:
        rows = {
            (r.instance): (r.enabled, r.interval_hours, r.sync_requested_at is not None)
            for r in connection.execute(select(sync_schedule).where(sync_schedule.c.service == "sonarr"))
        }
    assert rows == {"default": (False, 24, False), "4k": (True, 3, True)}


def test_the_admin_page_shows_each_instance(client: TestClient) -> None:
    token = sign_in(client)
    overview = client.get("/admin").text
    assert 'id="source-sonarr_4k"' in overview and "Sonarr (4k)" in overview and "sonarr_4k/series" in overview
    assert 'id="schedule-sonarr_4k"' in client.get("/admin/schedules").text
    connect = client.get("/admin/connect").text
    assert "/api/webhooks/sonarr/4k" in connect
    changed = client.post(
        "/admin/schedules/sonarr_4k", data={"enabled": "on", "interval_hours": "5", "csrf_token": token}
    )
    assert changed.status_code == 200 and "Sonarr (4k): full refresh on, every 5 h." in changed.text
    assert client.post("/admin/schedules/sonarr_uhd/sync", data={"csrf_token": token}).status_code == 404


# --- the sensor ----------------------------------------------------------------------------------


def test_the_sensor_starts_one_run_per_instance_for_its_asset_alone(
    database_url: str, tmp_path: Path, engine: Engine, declare: Declare
) -> None:
    from webhook_api.app import create_app

    declare("sonarr:4k")
    with TestClient(create_app(make_settings(database_url, tmp_path))) as api:
        for path in ("/api/webhooks/sonarr/4k", "/api/webhooks/sonarr/4k", "/api/webhooks/sonarr"):
            assert api.post(path, json=SONARR, headers=HOOK).status_code == 202
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"database": DatabaseResource(url=database_url)})
        result = webhook_sensor(context)
    assert isinstance(result, dg.SensorResult)
    # In Dagster an instance is named by its slug: tags cannot hold the "/" of its id.
    requests = {r.tags["smartplex/instance"]: r for r in result.run_requests or []}
    assert set(requests) == {"sonarr", "sonarr_4k"}
    assert {r.tags["smartplex/kind"] for r in requests.values()} == {"sonarr"}
    assert requests["sonarr_4k"].asset_selection == [dg.AssetKey(["sonarr_4k", "series"])]
    assert requests["sonarr"].asset_selection == [dg.AssetKey(["sonarr", "series"])]
    assert (requests["sonarr_4k"].tags["smartplex/webhooks"], requests["sonarr"].tags["smartplex/webhooks"]) == (
        "2",
        "1",
    )
    assert requests["sonarr_4k"].run_key.startswith("webhooks-sonarr_4k-")
    claimed = {(row["instance"], row["run_key"]) for row in webhook_rows(engine)}
    assert claimed == {("4k", requests["sonarr_4k"].run_key), ("default", requests["sonarr"].run_key)}


# --- syncs and the catalog, against a 4K Sonarr and Radarr ---------------------------------------


@pytest.fixture
def sims_4k() -> Iterator[RunningSimulators]:
    universe = Universe(seed=21, size=300, now=int(time.time()))
    with run_simulators(simulation=Simulation(universe), extra_instances=("sonarr/4k", "radarr/4k")) as running:
        yield running


def _refresh(engine: Engine, sims: RunningSimulators, library: str) -> Any:
    instance = Instance.parse(library)
    with sims.client(library) as client:
        return run_sync(engine, client, SPECS[instance.kind.name], None, instance=instance)


def _live(engine: Engine, table: Any, instance: str) -> dict[Any, dict[str, Any]]:
    query = select(table).where(table.c.instance == instance, table.c.deleted_at.is_(None))
    with engine.connect() as connection:
        return {row["id"]: dict(row) for row in connection.execute(query).mappings()}


def _listed(sims: RunningSimulators, library: str) -> dict[int, int | None]:
    """What one simulator lists: id -> external id (tvdb for Sonarr, tmdb for Radarr)."""
    with sims.client(library) as client:
        return {item.id: getattr(item, "tvdb_id", None) or getattr(item, "tmdb_id", None) for item in client.iter_all()}


def test_each_instance_syncs_its_own_rows_and_never_deletes_the_others(
    engine: Engine, sims_4k: RunningSimulators
) -> None:
    for library in ("sonarr", "sonarr/4k", "radarr", "radarr/4k"):
        result = _refresh(engine, sims_4k, library)
        assert result.row_count == len(_listed(sims_4k, library)), library  # counts its own rows only
    hd, uhd = _live(engine, sonarr_series, "default"), _live(engine, sonarr_series, "4k")
    assert {i: r["tvdb_id"] for i, r in uhd.items()} == _listed(sims_4k, "sonarr/4k")
    assert {i: r["tvdb_id"] for i, r in hd.items()} == _listed(sims_4k, "sonarr")
    assert 0 < len(uhd) < len(hd)
    assert set(hd) & set(uhd), "the same series id in both instances: two rows"

    # A series both hold disappears from both; refreshing the HD one deletes the HD row alone.
    tvdb_4k = {r["tvdb_id"] for r in uhd.values()}
    gone = next(r for r in hd.values() if r["tvdb_id"] in tvdb_4k)
    sims_4k.simulation.delete_series(gone["id"])
    assert _refresh(engine, sims_4k, "sonarr").deleted == 1
    assert gone["id"] not in _live(engine, sonarr_series, "default")
    assert _live(engine, sonarr_series, "4k") == uhd  # untouched, though the HD refresh did not list them
    assert _refresh(engine, sims_4k, "sonarr/4k").deleted == 1
    assert len(_live(engine, sonarr_series, "4k")) == len(uhd) - 1
    assert _live(engine, radarr_movies, "default") and _live(engine, radarr_movies, "4k")


def test_the_catalog_knows_both_copies_of_a_title(engine: Engine, sims_4k: RunningSimulators) -> None:
    for library in ("plex", "sonarr", "sonarr/4k", "radarr", "radarr/4k"):
        _refresh(engine, sims_4k, library)
    recompute_media_catalog(engine)
    with engine.connect() as connection:
        catalog = {(r.server_id, r.rating_key): r for r in connection.execute(select(media_catalog))}
        copies = connection.execute(select(media_catalog_copies)).mappings().all()
    hd = {r["tmdb_id"]: i for i, r in _live(engine, radarr_movies, "default").items()}
    uhd = {r["tmdb_id"]: i for i, r in _live(engine, radarr_movies, "4k").items()}
    both = {(c["server_id"], c["rating_key"]) for c in copies if c["service"] == "radarr" and c["instance"] == "4k"}
    assert both, "the 4K Radarr's movies are in the catalog"
    assert len(catalog) == len({(c["server_id"], c["rating_key"]) for c in copies} | set(catalog))  # one entry each
    for key in both:
        entry = catalog[key]
        found = {c["instance"]: c["item_id"] for c in copies if (c["server_id"], c["rating_key"]) == key}
        assert found == {"default": hd[entry.tmdb_id], "4k": uhd[entry.tmdb_id]}
        assert entry.radarr_movie_id == hd[entry.tmdb_id]  # the entry names the default instance's copy
    shows = {(c["server_id"], c["rating_key"]) for c in copies if c["service"] == "sonarr" and c["instance"] == "4k"}
    assert shows and all(catalog[key].sonarr_series_id is not None for key in shows)


def test_check_connects_to_every_instance(sims_4k: RunningSimulators, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLEX_")}
    env |= {**sims_4k.env(), "SMARTPLEX_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "smartplex_cli", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ok = (re.match(r"ok\s+(.+?)\s{2,}", line) for line in result.stdout.splitlines())
    lines = {match[1]: match.string for match in ok if match}
    assert {"Sonarr", "Sonarr (4k)", "Radarr", "Radarr (4k)"} <= set(lines)
    listed = len(_listed(sims_4k, "sonarr/4k"))
    assert f": {listed} items" in lines["Sonarr (4k)"]


def test_two_plex_servers_get_the_plays_of_their_own_tautulli(engine: Engine) -> None:
    """The same ratingKey on two servers is two items; each server's plays are its Tautulli's."""
    now = datetime.now(UTC)
    items = [
        {"instance": instance, "server_id": server, "rating_key": "100", "type": "movie", "title": title,
         "view_count": 0, "synced_at": now}
        for instance, server, title in (("default", "server-a", "A movie"), ("office", "server-b", "Another"))
    ]  # fmt: skip
    plays = [
        {"instance": instance, "row_id": row_id, "rating_key": "100", "media_type": "movie", "user_id": row_id,
         "started_at": now - timedelta(hours=row_id), "duration_seconds": 60, "percent_complete": 100,
         "synced_at": now}
        for instance, row_ids in (("default", (1, 2)), ("office", (1, 2, 3, 4, 5)))
        for row_id in row_ids
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(plex_library_items), items)
        connection.execute(insert(tautulli_watch_history), plays)
    recompute_watch_stats(engine)
    recompute_media_catalog(engine)
    with engine.connect() as connection:
        stats = {(r.instance, r.rating_key): r.plays for r in connection.execute(select(watch_stats))}
        catalog = {r.server_id: (r.plays, r.total_watch_seconds) for r in connection.execute(select(media_catalog))}
    assert stats == {("default", "100"): 2, ("office", "100"): 5}
    assert catalog == {"server-a": (2, 120), "server-b": (5, 300)}


def test_a_replay_can_name_one_instance(client: TestClient, engine: Engine) -> None:
    rows = [
        {"id": uuid.uuid4(), "source": "sonarr", "instance": instance, "event_type": "Download", "payload": {},
         "status": "failed", "processed": True}
        for instance in ("default", "4k", "4k")
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
    replay = "/api/admin/webhooks/replay"
    assert client.post(replay, json={"source": "sonarr/4K"}, headers=ADMIN).status_code == 422
    assert client.post(replay, json={"source": "sonarr/4k"}, headers=ADMIN).json() == {"replayed": 2}
    assert {(r["instance"], r["status"]) for r in webhook_rows(engine)} == {("default", "failed"), ("4k", "pending")}
    assert client.post(replay, json={"source": "sonarr"}, headers=ADMIN).json() == {"replayed": 1}  # every instance
