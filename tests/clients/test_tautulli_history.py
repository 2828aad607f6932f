"""Tautulli as it really answers: live sessions in its history unless asked not to, 400 for a bad key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from smartplex.clients import Unauthorized
from smartplex_simulators import RunningSimulators, run_simulators
from smartplex_simulators.universe import Episode


@pytest.fixture
def playing() -> Iterator[RunningSimulators]:
    """Tautulli with someone watching right now."""
    with run_simulators(size=200, seed=4, kinds=["tautulli"], now=None) as running:
        episode = next(i for i in running.universe.plex.values() if isinstance(i, Episode))
        assert episode.rating_key is not None
        running.universe.start_playing(episode.rating_key)
        yield running


def _history(sims: RunningSimulators, **params: str) -> dict:
    query = {"apikey": sims.keys["tautulli"], "cmd": "get_history", **params}
    response = httpx.get(f"{sims.urls['tautulli']}/api/v2", params=query)
    assert response.status_code == 200
    return response.json()["response"]["data"]


def test_the_simulator_lists_live_sessions_unless_include_activity_is_0(playing: RunningSimulators) -> None:
    with_activity = _history(playing)["data"]
    assert with_activity[0]["id"] is None and with_activity[0]["row_id"] is None
    assert all(row["id"] is not None for row in _history(playing, include_activity="0")["data"])


def test_a_sync_while_someone_watches_reads_only_history(playing: RunningSimulators) -> None:
    plays = playing.universe.plays
    now = datetime.now(UTC)
    session = playing.universe.sessions[0]
    with playing.client("tautulli") as client:
        every = list(client.iter_all())
        recent = list(client.iter_changed(now - timedelta(days=7), now + timedelta(days=1), also=[session.rating_key]))
    assert sorted(p.row_id for p in every) == sorted(p.id for p in plays)
    assert all(p.row_id > 0 for p in recent)


def test_a_bad_api_key_is_a_400_and_the_client_says_which_setting_to_check(playing: RunningSimulators) -> None:
    response = httpx.get(f"{playing.urls['tautulli']}/api/v2", params={"apikey": "nope", "cmd": "get_history"})
    assert response.status_code == 400
    assert response.json()["response"]["message"] == "Invalid apikey"
    with playing.client(
        "tautulli",
    ) as good:
        url = good.http.base_url
    from smartplex.clients import CLIENTS

    with CLIENTS["tautulli"](url, "nope") as client, pytest.raises(Unauthorized) as caught:
        client.server_info()
    assert "Invalid apikey" in str(caught.value) and "SMARTPLEX_TAUTULLI_API_KEY" in str(caught.value)
    assert client.stats.retries == 0
