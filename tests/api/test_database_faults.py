"""A database that goes away gives 503 with Retry-After, never a hang or a 500; service recovers.

How long a 503 takes against the database timeout is measured by ``bench/database_faults.py``: here a
request only has to answer at all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN, HOOK, load_fixture, make_settings
from tests.helpers import webhook_count
from tests.tcp_proxy import TcpProxy
from webhook_api.app import create_app

BODY = load_fixture("webhooks", "sonarr", "Download.json")
TIMEOUT = 2.0
#: A request without an answer this long after it was sent hangs. Far above TIMEOUT, so a busy machine
#: never trips it; below the kernel's own give-up on a connection (about two minutes), so it fails a
#: request that waits on the network rather than on the database timeout.
HANG = 60.0


def _post(client: TestClient) -> tuple[int, dict[str, str]]:
    """Status and headers; fails the test if no answer comes within HANG (the request is left behind,
    in a daemon thread, so the failure is reported rather than the test stuck)."""
    answer: Future[tuple[int, dict[str, str]]] = Future()

    def send() -> None:
        try:
            response = client.post("/api/webhooks/sonarr", json=BODY, headers=HOOK)
            answer.set_result((response.status_code, dict(response.headers)))
        except BaseException as exc:  # noqa: BLE001 - reported to the test's thread
            answer.set_exception(exc)

    threading.Thread(target=send, daemon=True).start()
    try:
        return answer.result(timeout=HANG)
    except TimeoutError:
        pytest.fail(f"no answer within {HANG:g}s (the database timeout is {TIMEOUT:g}s): the request hangs")


def _assert_unavailable(client: TestClient) -> None:
    status, headers = _post(client)
    assert status == 503
    assert headers["retry-after"].isdigit()


POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def proxied(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[tuple[TcpProxy, TestClient]]:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(through_proxy, tmp_path, db_timeout_seconds=TIMEOUT)
    with TestClient(create_app(settings)) as client:
        try:
            yield proxy, client
        finally:
            # Before the app shuts down: a request left hanging on the proxy ends, so shutdown does not wait.
            proxy.stop()


@POSTGRES_ONLY
def test_postgres_stopped_then_back(proxied: tuple[TcpProxy, TestClient], engine: Engine) -> None:
    proxy, client = proxied
    assert _post(client)[0] == 202
    proxy.stop()
    _assert_unavailable(client)
    assert client.get("/readyz").status_code == 503
    assert client.get("/api/webhooks/status", headers=ADMIN).status_code == 503
    proxy.start()
    assert _post(client)[0] == 202
    assert webhook_count(engine) == 2  # exactly the acknowledged ones


@POSTGRES_ONLY
def test_postgres_hung_answers_within_the_timeout(proxied: tuple[TcpProxy, TestClient], engine: Engine) -> None:
    proxy, client = proxied
    proxy.stop()
    proxy.stalled = True
    proxy.start()
    _assert_unavailable(client)
    proxy.stop()
    proxy.stalled = False
    proxy.start()
    deadline = time.monotonic() + 30
    while _post(client)[0] != 202:
        assert time.monotonic() < deadline, "did not recover"
    assert webhook_count(engine) >= 1


@SQLITE_ONLY
def test_sqlite_locked_then_released(database_url: str, engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, db_timeout_seconds=TIMEOUT)
    with TestClient(create_app(settings)) as client:
        assert _post(client)[0] == 202
        blocker = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            _assert_unavailable(client)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert _post(client)[0] == 202
    assert webhook_count(engine) == 2


def test_dead_port_at_start_still_serves_503(tmp_path: Path, postgres_server: str) -> None:
    dead = make_url(postgres_server).set(port=1).render_as_string(hide_password=False)
    with TestClient(create_app(make_settings(dead, tmp_path, db_timeout_seconds=TIMEOUT))) as client:
        _assert_unavailable(client)
        assert client.get("/healthz").status_code == 200
