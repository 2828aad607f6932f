"""Failed and lost webhooks: Sonarr's and Radarr's back-off, their health check, and dropping on purpose.

Every webhook goes to a real HTTP server, and time is the simulation's clock, moved by ``advance_clock``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from smartplex_cli.demo import demo
from smartplex_cli.simulate import simulate
from smartplex_simulators import RunningSimulators, Simulation, Universe, run_simulators
from smartplex_simulators.webhooks import DROPPED, Delivery, Hook, WebhookSender

MINUTE = 60
#: Sonarr's own test notification: any event does.
TEST = Hook("Test", {"eventType": "Test", "instanceName": "Sonarr", "applicationUrl": ""})
IGNORING = "Temporarily ignoring notification SmartPlex till "


class Receiver(ThreadingHTTPServer):
    """Stands in for SmartPlex's webhook API: answers every POST with ``status``, remembers each path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.status = 202
        self.paths: list[str] = []

    def url(self, kind_path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}/api/webhooks/{kind_path}"


class _Answer(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.paths.append(self.path.removeprefix("/api/webhooks/"))
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(receiver: Receiver) -> Receiver:
    receiver.status, receiver.paths[:] = 202, []
    return receiver


@pytest.fixture
def sim() -> Simulation:
    return Simulation(Universe(size=0))


def _sender(sim: Simulation, api: Receiver, *, drop_rate: float = 0.0, seed: int = 0) -> WebhookSender:
    """A sender on the simulation's clock, to the receiver, for a Plex and three Sonarr or Radarr instances."""
    targets = {i: api.url(i) for i in ("plex", "sonarr", "radarr", "sonarr/4k")}
    sim.webhooks = WebhookSender(targets, clock=sim.clock, drop_rate=drop_rate, seed=seed)
    return sim.webhooks


def _send(sender: WebhookSender, instance_id: str = "sonarr") -> Delivery:
    delivery = sender.send(instance_id, TEST)
    assert delivery is not None
    return delivery


def _disabled_for(sim: Simulation, instance_id: str = "sonarr") -> timedelta:
    till = sim.webhooks.statuses()[instance_id].disabled_till
    assert till is not None and sim.webhooks.disabled(instance_id)
    return till - sim.clock()


def _wait_out(sim: Simulation, instance_id: str = "sonarr") -> None:
    sim.advance_clock(int(_disabled_for(sim, instance_id).total_seconds()))
    assert not sim.webhooks.disabled(instance_id)


def _fail_past_the_grace(sim: Simulation, sender: WebhookSender, instance_id: str = "sonarr") -> None:
    """A first failure, then another once its 5-minute grace is over: the connection is disabled."""
    assert _send(sender, instance_id).status == 401 and not sender.disabled(instance_id)
    sim.advance_clock(5 * MINUTE)
    assert _send(sender, instance_id).status == 401 and sender.disabled(instance_id)


# ----- back-off ---------------------------------------------------------------------------------------


def test_after_a_grace_each_failure_disables_for_longer_up_to_an_hour(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api)
    sim.advance_clock(15 * MINUTE)  # past the startup's gentler back-off
    api.status = 401
    assert _send(sender).status == 401
    sim.advance_clock(2 * MINUTE)
    assert _send(sender).status == 401  # within the grace: sent, nothing disabled
    assert not sender.disabled("sonarr") and sender.statuses()["sonarr"].escalation_level == 1
    sim.advance_clock(3 * MINUTE)
    assert _send(sender).status == 401
    assert _disabled_for(sim) == timedelta(minutes=5)
    for minutes in (15, 30, 60, 60):
        _wait_out(sim)
        assert _send(sender).status == 401
        assert _disabled_for(sim) == timedelta(minutes=minutes)
    assert sender.statuses()["sonarr"].escalation_level == 5
    assert len(api.paths) == 7 and [d.status for d in sender.deliveries] == [401] * 7


def test_in_the_first_15_minutes_nothing_escalates(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api)
    api.status = 401
    _fail_past_the_grace(sim, sender)
    assert _disabled_for(sim) == timedelta(minutes=1)
    _wait_out(sim)
    assert _send(sender).status == 401
    assert _disabled_for(sim) == timedelta(minutes=1)
    sim.advance_clock(9 * MINUTE)  # 15 minutes since the start
    assert _send(sender).status == 401
    assert _disabled_for(sim) == timedelta(minutes=5)


def test_after_a_restart_no_disable_lasts_more_than_5_minutes(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api)
    sim.advance_clock(15 * MINUTE)
    api.status = 401
    _fail_past_the_grace(sim, sender)
    for _ in range(3):
        _wait_out(sim)
        _send(sender)
    assert _disabled_for(sim) == timedelta(minutes=60)
    _wait_out(sim)
    sender.started = sim.clock()  # the statuses outlive a restart, in Sonarr's database
    assert _send(sender).status == 401
    assert _disabled_for(sim) == timedelta(minutes=5)
    assert sender.statuses()["sonarr"].escalation_level == 5


def test_a_success_steps_one_level_down(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api)
    sim.advance_clock(15 * MINUTE)
    api.status = 401
    _fail_past_the_grace(sim, sender)
    _wait_out(sim)
    api.status = 202
    assert _send(sender).status == 202
    assert sender.statuses()["sonarr"].escalation_level == 1 and not sender.disabled("sonarr")
    api.status = 401
    assert _send(sender).status == 401  # the grace is long over: disabled at once
    assert _disabled_for(sim) == timedelta(minutes=5)
    _wait_out(sim)
    api.status = 202
    _send(sender)
    _send(sender)
    assert sender.statuses()["sonarr"].escalation_level == 0
    api.status = 401
    assert _send(sender).status == 401
    assert not sender.disabled("sonarr")  # back at level 0, a new grace


def test_events_are_dropped_while_disabled_and_sent_again_after(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api)
    api.status = 401
    _fail_past_the_grace(sim, sender)
    api.status, api.paths[:] = 202, []
    show = sim.add_show("Unheard", episodes_per_season=2)  # SeriesAdd and two Downloads
    ignored = [d for d in sender.deliveries if d.instance_id == "sonarr"][-3:]
    assert [(d.event, d.status) for d in ignored] == [("SeriesAdd", None), ("Download", None), ("Download", None)]
    assert all(d.error and d.error.startswith(IGNORING) for d in ignored)
    assert all(d.error and d.error.endswith(" due to recent failures.") for d in ignored)
    assert "sonarr" not in api.paths and "plex" in api.paths  # Plex posts regardless
    _wait_out(sim)
    sim.delete_series(show.id)
    assert [d.status for d in sender.deliveries[-1:]] == [202] and api.paths[-1] == "sonarr"
    assert sender.statuses()["sonarr"].escalation_level == 0


def test_a_refused_connection_counts_as_a_failure(sim: Simulation) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api/webhooks/radarr"
    sender = sim.webhooks = WebhookSender({"radarr": url}, clock=sim.clock)
    assert "ConnectError" in (_send(sender, "radarr").error or "")
    sim.advance_clock(5 * MINUTE)
    _send(sender, "radarr")
    assert sender.disabled("radarr") and (_send(sender, "radarr").error or "").startswith(IGNORING)


def test_plex_tautulli_and_overseerr_never_back_off(sim: Simulation, api: Receiver) -> None:
    sender = sim.webhooks = WebhookSender({k: api.url(k) for k in ("plex", "tautulli", "overseerr")}, clock=sim.clock)
    api.status = 401
    for _ in range(6):
        for kind in ("plex", "tautulli", "overseerr"):
            assert _send(sender, kind).status == 401
        sim.advance_clock(10 * MINUTE)
    assert len(api.paths) == 18 and not any(sender.disabled(k) for k in ("plex", "tautulli", "overseerr"))
    assert sender.statuses() == {}


# ----- the health check -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arrs() -> Iterator[RunningSimulators]:
    simulation = Simulation(Universe(size=60, seed=4))
    with run_simulators(simulation=simulation, kinds=("sonarr", "radarr"), extra_instances=("sonarr/4k",)) as running:
        yield running


def _health(sims: RunningSimulators, instance_id: str) -> Any:
    response = httpx.get(sims.urls[instance_id] + "/api/v3/health", headers={"X-Api-Key": sims.keys[instance_id]})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    return response.json()


def test_health_names_the_disabled_connection_as_sonarr_and_radarr_do(arrs: RunningSimulators, api: Receiver) -> None:
    sim = arrs.simulation
    sender = _sender(sim, api)  # replaced after the apps started: the health check must see this one
    assert [_health(arrs, i) for i in ("sonarr", "sonarr/4k", "radarr")] == [[], [], []]
    assert httpx.get(arrs.urls["sonarr"] + "/api/v3/health").status_code == 401
    api.status = 401
    _fail_past_the_grace(sim, sender)
    assert _health(arrs, "sonarr") == [
        {
            "source": "NotificationStatusCheck",
            "type": "error",
            "message": "All notifications are unavailable due to failures",
            "wikiUrl": "https://wiki.servarr.com/sonarr/system#notifications-are-unavailable-due-to-failures",
        }
    ]
    assert _health(arrs, "sonarr/4k") == [] and _health(arrs, "radarr") == []
    try:
        sim.connections = ("SmartPlex", "Discord")
        assert _health(arrs, "sonarr") == [
            {
                "source": "NotificationStatusCheck",
                "type": "warning",
                "message": "Notifications unavailable due to failures: SmartPlex",
                "wikiUrl": "https://wiki.servarr.com/sonarr/system#notifications-are-unavailable-due-to-failures",
            }
        ]
    finally:
        sim.connections = ("SmartPlex",)
    _fail_past_the_grace(sim, sender, "radarr")
    [check] = _health(arrs, "radarr")
    assert check["wikiUrl"] == "https://wiki.servarr.com/radarr/system#notifications-are-unavailable-due-to-failures"
    status = httpx.get(arrs.urls["radarr"] + "/_sim/webhooks/status").json()
    assert status["radarr"]["disabled"] and status["radarr"]["escalationLevel"] == 1
    assert status["sonarr/4k"] == {
        "escalationLevel": 0,
        "initialFailure": None,
        "mostRecentFailure": None,
        "disabledTill": None,
        "disabled": False,
    }
    sim.advance_clock(5 * MINUTE)
    assert _health(arrs, "sonarr") == [] and _health(arrs, "radarr") == []


def test_connections_must_include_the_webhooks_one() -> None:
    with pytest.raises(ValueError, match="SmartPlex"):
        Simulation(Universe(size=0), connections=("Discord",))


# ----- dropping on purpose ----------------------------------------------------------------------------


def test_a_drop_rate_loses_about_that_share_reproducibly(sim: Simulation, api: Receiver) -> None:
    sender = _sender(sim, api, drop_rate=0.5, seed=11)
    deliveries = [_send(sender, "sonarr") for _ in range(200)]
    dropped = [d for d in deliveries if d.status is None]
    assert 70 <= len(dropped) <= 130
    assert all(d.error == DROPPED == "dropped on purpose (--drop-webhooks)" for d in dropped)
    assert len(api.paths) == 200 - len(dropped)
    again = _sender(sim, api, drop_rate=0.5, seed=11)
    assert [_send(again, "sonarr").status for _ in range(200)] == [d.status for d in deliveries]


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_a_drop_rate_of_0_loses_nothing_and_1_everything(sim: Simulation, api: Receiver, rate: float) -> None:
    sender = _sender(sim, api, drop_rate=rate)
    api.status = 401  # a lost webhook is no failure for the service: it never knew
    statuses = [_send(sender, instance_id).status for instance_id in ("sonarr", "plex") for _ in range(20)]
    assert statuses == ([401] * 40 if rate == 0 else [None] * 40)
    assert len(api.paths) == (40 if rate == 0 else 0)
    assert sender.statuses()["sonarr"].escalation_level == (1 if rate == 0 else 0)


def test_a_drop_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to 1"):
        WebhookSender({}, drop_rate=1.5)


def test_run_simulators_drops_webhooks_on_purpose(api: Receiver) -> None:
    with run_simulators(size=0, kinds=("radarr",), webhook_url=api.url("{kind}"), drop_webhooks=1.0) as sims:
        sims.simulation.add_movie("Lost")
        assert [d.error for d in sims.simulation.webhooks.deliveries] == [DROPPED] * 4
    assert api.paths == []
    with pytest.raises(ValueError, match="webhook_url"), run_simulators(drop_webhooks=0.5):
        pass


@pytest.mark.parametrize("command", [simulate, demo], ids=["simulate", "demo"])
def test_the_commands_refuse_a_drop_rate_outside_0_to_1(command: click.Command) -> None:
    result = CliRunner().invoke(command, ["--drop-webhooks", "2"])
    assert result.exit_code == 2
    assert "Invalid value for '--drop-webhooks': 2.0 is not in the range 0<=x<=1." in result.output


def test_simulate_says_a_drop_rate_needs_a_webhook_url() -> None:
    result = CliRunner().invoke(simulate, ["--drop-webhooks", "0.2"])
    assert result.exit_code == 2 and "--drop-webhooks needs --webhook-url" in result.output
