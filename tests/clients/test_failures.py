"""Retries, timeouts and failures, against the simulators' fault injection over real sockets."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest

from smartplex.clients import (
    CLIENTS,
    BadResponse,
    NotConfigured,
    NotFound,
    RetryPolicy,
    ServiceTimeout,
    ServiceUnreachable,
    Unauthorized,
    client_for,
)
from smartplex.instances import Instance
from smartplex.settings import Settings
from smartplex_simulators import RunningSimulators

KINDS = ["plex", "tautulli", "sonarr", "radarr", "overseerr"]


class Sleeps(list[float]):
    """Records the client's backoff waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize("service", KINDS)
def test_a_503_then_success_is_retried(sims: RunningSimulators, service: str) -> None:
    sims.simulation.faults[service].update(fail_next=[503])
    sleeps = Sleeps()
    with sims.client(service, sleep=sleeps) as client:
        info = client.server_info()
    assert info.library_size > 0
    assert client.stats.retries == 1
    assert len(sleeps) == 1 and 0 < sleeps[0] <= RetryPolicy().backoff


def test_retry_after_is_honoured(sims: RunningSimulators) -> None:
    sims.simulation.faults["radarr"].update(fail_next=[429, 429], retry_after=7)
    sleeps = Sleeps()
    with sims.client("radarr", sleep=sleeps) as client:
        assert client.server_info().name == "Radarr"
    assert sleeps == [7.0, 7.0]


def test_a_retry_after_beyond_the_limit_fails_at_once(sims: RunningSimulators) -> None:
    sims.simulation.faults["sonarr"].update(fail_next=[429], retry_after=3600)
    sleeps = Sleeps()
    with sims.client("sonarr", sleep=sleeps, retry=RetryPolicy(max_retry_after=60)) as client:
        with pytest.raises(BadResponse) as caught:
            client.server_info()
    assert caught.value.status_code == 429
    assert sleeps == []


def test_backoff_grows_exponentially_with_jitter(sims: RunningSimulators) -> None:
    sims.simulation.faults["overseerr"].update(fail_next=[502, 502, 502])
    sleeps = Sleeps()
    policy = RetryPolicy(attempts=4, backoff=1.0)
    with sims.client("overseerr", sleep=sleeps, retry=policy) as client:
        client.server_info()
    assert len(sleeps) == 3
    for n, slept in enumerate(sleeps):
        step = policy.backoff * 2**n
        assert step / 2 <= slept <= step


@pytest.mark.parametrize("service", KINDS)
def test_gives_up_after_the_last_try(sims: RunningSimulators, service: str) -> None:
    faults = sims.simulation.faults[service]
    faults.update(fail_next=[503] * 5)
    with sims.client(service, sleep=Sleeps(), retry=RetryPolicy(attempts=3)) as client:
        with pytest.raises(BadResponse) as caught:
            list(client.iter_all())
    assert caught.value.status_code == 503
    assert "after 3 tries" in str(caught.value)
    assert len(faults.fail_next) == 2  # exactly three requests reached the server


def test_a_hung_server_times_out(sims: RunningSimulators) -> None:
    sims.simulation.faults["plex"].update(timeout_rate=1.0, hang_seconds=5)
    with sims.client("plex", timeout=0.2, sleep=Sleeps(), retry=RetryPolicy(attempts=2)) as client:
        with pytest.raises(ServiceTimeout, match="no answer within 0.2s after 2 tries"):
            client.server_info()
    assert client.stats.requests == 2


def test_added_latency_still_answers(sims: RunningSimulators) -> None:
    sims.simulation.faults["tautulli"].update(latency=0.05)
    with sims.client("tautulli") as client:
        assert client.server_info().version


@pytest.mark.parametrize("service", KINDS)
def test_a_wrong_credential_is_unauthorized_and_never_echoed(sims: RunningSimulators, service: str) -> None:
    wrong = "wrong-key-0123456789abcdef"
    with CLIENTS[service](sims.urls[service], wrong, sleep=Sleeps()) as client:
        with pytest.raises(Unauthorized) as caught:
            list(client.iter_all())
    message = str(caught.value)
    assert wrong not in message
    assert sims.urls[service] in message
    assert ("SMARTPLEX_PLEX_TOKEN" if service == "plex" else f"SMARTPLEX_{service.upper()}_API_KEY") in message
    assert client.stats.retries == 0  # a rejected key is not worth retrying


def test_injected_401s_are_unauthorized(sims: RunningSimulators) -> None:
    sims.simulation.faults["overseerr"].update(unauthorized_rate=1.0)
    with sims.client("overseerr") as client, pytest.raises(Unauthorized):
        client.server_info()


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}"
        with CLIENTS["sonarr"](url, "key", sleep=Sleeps(), retry=RetryPolicy(attempts=2)) as client:
            with pytest.raises(ServiceUnreachable, match="SMARTPLEX_SONARR_URL") as caught:
                client.server_info()
    assert caught.value.url == url
    assert client.stats.requests == 2


def test_a_wrong_url_base_is_not_found(sims: RunningSimulators) -> None:
    with CLIENTS["radarr"](sims.urls["radarr"] + "/radarr", sims.keys["radarr"]) as client:
        with pytest.raises(NotFound, match="URL base path"):
            client.server_info()


def test_an_html_page_is_a_bad_response() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>login</html>"))
    with CLIENTS["overseerr"]("http://overseerr.test", "key", transport=transport) as client:
        with pytest.raises(BadResponse, match="not JSON"):
            client.server_info()


def test_a_truncated_array_is_a_bad_response() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b'[{"id": 1, "tmdbId": 2}, {"id"'))
    with CLIENTS["radarr"]("http://radarr.test", "key", transport=transport) as client:
        items = client.iter_all()
        assert next(items).id == 1
        with pytest.raises(BadResponse, match="malformed JSON array"):
            next(items)


def test_tautulli_error_envelopes_become_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"response": {"result": "error", "message": "API not enabled", "data": {}}})

    with CLIENTS["tautulli"]("http://tautulli.test", "key", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(BadResponse, match="API not enabled"):
            client.server_info()


def test_client_for_names_the_missing_settings(sims: RunningSimulators) -> None:
    with pytest.raises(NotConfigured, match="SMARTPLEX_PLEX_URL and SMARTPLEX_PLEX_TOKEN"):
        client_for(Instance.parse("plex"), Settings(_env_file=None))
    with pytest.raises(ValueError, match="unknown service"):
        client_for(Instance.parse("jellyfin"), Settings(_env_file=None))
    settings = Settings(_env_file=None, sonarr_url=sims.urls["sonarr"], sonarr_api_key=sims.keys["sonarr"])
    with client_for(Instance.parse("sonarr"), settings) as client:
        assert client.server_info().version == "4.0.19.2979"


@pytest.mark.parametrize("url", ["localhost:8989", "ftp://sonarr.lan", "http://"])
def test_a_url_that_is_not_http_is_a_configuration_error(url: str) -> None:
    with pytest.raises(NotConfigured, match="SMARTPLEX_SONARR_URL must be an http:// or https:// URL"):
        CLIENTS["sonarr"](url, "key")


def _keys(items: list[Any]) -> list[Any]:
    return [getattr(i, "rating_key", None) or getattr(i, "row_id", None) or i.id for i in items]


@pytest.mark.parametrize("service", KINDS)
def test_a_flaky_server_still_yields_everything_exactly_once(sims: RunningSimulators, service: str) -> None:
    with sims.client(service, page_size=25) as client:
        expected = _keys(list(client.iter_all()))
    # A sure failure first (the *arrs list in one request), then seeded random ones.
    sims.simulation.faults[service].update(fail_next=[503], error_rate=0.3, rate_limit_rate=0.1, retry_after=0, seed=3)
    with sims.client(service, page_size=25, sleep=Sleeps(), retry=RetryPolicy(attempts=10)) as client:
        assert _keys(list(client.iter_all())) == expected
    assert client.stats.retries > 0


def test_a_redirect_is_reported_not_followed() -> None:
    seen: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(301, headers={"Location": "https://overseerr.example.com/api/v1/status"})

    with CLIENTS["overseerr"]("http://overseerr.test", "key", transport=httpx.MockTransport(redirect)) as client:
        with pytest.raises(BadResponse, match="redirected .HTTP 301. to https://overseerr.example.com") as caught:
            client.server_info()
    assert "SMARTPLEX_OVERSEERR_URL" in str(caught.value)
    assert len(seen) == 1


class _BrokenStream(httpx.SyncByteStream):
    """Sends the first element of an array, then fails the way a dying connection does."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def __iter__(self) -> Any:
        yield b'[{"id": 1, "tmdbId": 2},'
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ReadTimeout("slow"), ServiceTimeout),
        (httpx.RemoteProtocolError("peer closed connection"), ServiceUnreachable),
    ],
)
def test_a_stream_that_breaks_mid_array_raises_after_what_arrived(failure: Exception, expected: type) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=_BrokenStream(failure)))
    with CLIENTS["radarr"]("http://radarr.test", "key", transport=transport) as client:
        movies = client.iter_all()
        assert next(movies).tmdb_id == 2
        with pytest.raises(expected, match="mid-response"):
            next(movies)


def test_keys_in_query_strings_stay_out_of_the_logs(sims: RunningSimulators, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"), sims.client("tautulli") as client:
        client.server_info()
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert requests and all("apikey=REDACTED" in m for m in requests)
    assert sims.keys["tautulli"] not in caplog.text
