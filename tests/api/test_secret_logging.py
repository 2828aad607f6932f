"""Secrets never reach the logs: every credential the auth scenarios send, right or wrong, is searched for
in everything a real ``smartplex api`` process prints, and in every log record of the app in-process."""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from smartplex_cli.supervisor import free_port, wait_for_http
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, load_fixture, make_settings
from tests.helpers import basic_auth
from webhook_api.app import create_app

PLEX_SECRET = "plex-only-secret-8c1d"
SONARR = load_fixture("webhooks", "sonarr", "Download.json")
PLEX = load_fixture("webhooks", "plex", "library.new.json")


@dataclass
class Call:
    method: str
    path: str
    expected: int
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""  # raw, as typed into the sender's URL field
    json: object = None


def _wrong(form: str) -> str:
    """A wrong secret unique to its scenario, so a leak names the place it came from."""
    return f"wrong-{form}-5e0b9a"


#: The auth scenarios: every form the secret may take, right and wrong, on each kind of route.
CALLS = [
    # Right secrets in every form, the per-source secret included.
    Call("POST", "/api/webhooks/plex", 202, query=f"token={PLEX_SECRET}", json=PLEX),
    Call("POST", "/api/webhooks/sonarr", 202, query=f"token={WEBHOOK_SECRET}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 202, query=f"a=1&token={WEBHOOK_SECRET}&b=2", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 202, {"Authorization": f"Bearer {WEBHOOK_SECRET}"}, json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 202, basic_auth(WEBHOOK_SECRET), json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 202, {"X-Webhook-Token": WEBHOOK_SECRET}, json=SONARR),
    Call("PUT", "/api/webhooks/plex", 202, {"X-Webhook-Token": PLEX_SECRET}, json=PLEX),
    Call("GET", "/api/webhooks/status", 200, {"Authorization": f"Bearer {ADMIN_SECRET}"}),
    Call("GET", "/api/admin/schedules", 200, {"X-Admin-Token": ADMIN_SECRET}),
    # Wrong secrets in every form.
    Call("POST", "/api/webhooks/sonarr", 401, query=f"token={_wrong('query')}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, query=f"TOKEN={_wrong('upper-query')}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, query=f"token={quote(_wrong('space query') + ' &x')}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, {"Authorization": f"Bearer {_wrong('bearer')}"}, json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, basic_auth(_wrong("basic")), json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, {"X-Webhook-Token": _wrong("header")}, json=SONARR),
    Call("GET", "/api/webhooks/status", 401, {"Authorization": f"Bearer {_wrong('admin-bearer')}"}),
    Call("GET", "/api/admin/schedules", 401, {"X-Admin-Token": _wrong("admin-header")}),
    Call("GET", "/api/admin/webhooks", 401, query=f"token={_wrong('admin-query')}"),
    # A secret of the wrong scope: the installation's on Plex, Plex's on Sonarr, admin and webhook swapped.
    Call("POST", "/api/webhooks/plex", 401, query=f"token={WEBHOOK_SECRET}", json=PLEX),
    Call("POST", "/api/webhooks/sonarr", 401, query=f"token={PLEX_SECRET}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 401, {"Authorization": f"Bearer {ADMIN_SECRET}"}, json=SONARR),
    Call("GET", "/api/webhooks/status", 401, {"Authorization": f"Bearer {WEBHOOK_SECRET}"}),
    Call("GET", "/api/webhooks/status", 401, query=f"token={ADMIN_SECRET}"),
    # Refused for another reason, the secret still in the URL.
    Call("POST", "/api/webhooks/emby", 422, query=f"token={WEBHOOK_SECRET}", json=SONARR),
    Call("POST", "/api/webhooks/sonarr", 422, query=f"token={WEBHOOK_SECRET}", json={"no": "event"}),
]

#: The query token's name spelt with percent-escapes: not the token (401), and never in the log either.
ENCODED_NAME_CALLS = [
    Call("POST", "/api/webhooks/sonarr", 401, query=f"to%6Ben={WEBHOOK_SECRET}", json=SONARR),
    Call("POST", "/api/webhooks/plex", 401, query=f"%74oken={PLEX_SECRET}", json=PLEX),
    Call("GET", "/api/webhooks/status", 401, query=f"TO%4BEN={ADMIN_SECRET}"),
]

#: Where a call may carry a credential: these headers, and a query parameter named ``token`` (any case,
#: percent-escapes decoded). A call with any other header fails, so a new place for a secret is not missed.
CREDENTIAL_HEADERS = {"authorization", "x-webhook-token", "x-admin-token"}


def _credentials(call: Call) -> set[str]:
    """What ``call`` sends as a credential: header values (a Basic header's password), query tokens."""
    found = {value for name, value in parse_qsl(call.query, keep_blank_values=True) if name.lower() == "token"}
    for name, value in call.headers.items():
        assert name.lower() in CREDENTIAL_HEADERS, f"{name} is not a known credential header"
        scheme, _, credential = value.partition(" ")
        if name.lower() != "authorization":
            found.add(value)
        elif scheme.lower() == "basic":
            found.add(base64.b64decode(credential).decode().partition(":")[2])
        else:
            found.add(credential)
    return found


def _secrets(calls: list[Call]) -> list[str]:
    """Every credential the calls send, each space-separated piece of one too (a log may cut it there)."""
    secrets = {secret for call in calls for secret in _credentials(call)}
    pieces = {piece for secret in secrets for piece in secret.split() if len(piece) >= 8}
    return sorted(secrets | pieces)


#: Everything the scenarios sent as a credential.
SECRETS = _secrets(CALLS + ENCODED_NAME_CALLS)


def _leaks(output: str) -> list[str]:
    """Each secret found in ``output``: as sent, percent-encoded, or inside a Basic header."""
    found = []
    for secret in SECRETS:
        for shape in {
            secret,
            quote(secret),
            quote(secret, safe=""),
            base64.b64encode(f"sonarr:{secret}".encode()).decode(),
        }:
            if shape in output:
                found.append(f"{secret!r} as {shape!r}")
    return found


def _send(client: httpx.Client | TestClient, call: Call) -> None:
    url = call.path + (f"?{call.query}" if call.query else "")
    response = client.request(call.method, url, headers=call.headers, json=call.json)
    assert response.status_code == call.expected, f"{call.method} {url}: {response.status_code} {response.text}"


def _server_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLEX_")}
    return env | {
        "SMARTPLEX_DATA_DIR": str(tmp_path / "data"),  # the embedded SQLite, migrated at start
        "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMARTPLEX_WEBHOOK_SECRET_PLEX": PLEX_SECRET,
        "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
    }


#: ``smartplex api`` as shipped, and the same command with uvicorn and every logger at DEBUG.
LAUNCHERS = {
    "as shipped": [sys.executable, "-m", "smartplex_cli", "api"],
    "debug": [
        sys.executable,
        "-c",
        "import functools, logging, sys, uvicorn\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "uvicorn.run = functools.partial(uvicorn.run, log_level='debug', access_log=True)\n"
        "from smartplex_cli import main\n"
        "sys.argv[0] = 'smartplex'\n"
        "main()",
        "api",
    ],
}


@pytest.fixture(params=list(LAUNCHERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``smartplex api`` process; yields its URL and the file holding all it printed."""
    port = free_port()
    output = tmp_path / "server.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*LAUNCHERS[request.param], "--port", str(port)],
            env=_server_env(tmp_path),
            cwd=tmp_path,  # no stray .env
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60)
        yield f"http://127.0.0.1:{port}", output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_real_server_never_prints_a_secret(server: tuple[str, Path]) -> None:
    url, output = server
    with httpx.Client(base_url=url, timeout=10) as client:
        for call in CALLS:
            _send(client, call)
    # The access log is flushed line by line; a last request marks the end of what was sent.
    with httpx.Client(base_url=url, timeout=10) as client:
        client.get("/healthz?done=1")
    wait_for_http(f"{url}/healthz", 5)

    printed = output.read_text(errors="replace")
    assert '"GET /healthz?done=1 HTTP/1.1" 200' in printed, printed[-2000:]  # the log was captured
    assert '"POST /api/webhooks/plex?token=*** HTTP/1.1" 202' in printed  # and the query token masked
    assert not _leaks(printed), "\n".join(_leaks(printed)) + "\n\n" + printed[-4000:]


def test_a_real_server_never_prints_a_secret_under_an_encoded_name(server: tuple[str, Path]) -> None:
    url, output = server
    with httpx.Client(base_url=url, timeout=10) as client:
        for call in ENCODED_NAME_CALLS:
            _send(client, call)
        client.get("/healthz?done=1")
    wait_for_http(f"{url}/healthz", 5)
    printed = output.read_text(errors="replace")
    assert '"GET /healthz?done=1 HTTP/1.1" 200' in printed, printed[-2000:]
    assert not _leaks(printed), "\n".join(_leaks(printed))


def test_the_app_never_logs_a_secret(
    database_url: str, tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(database_url, tmp_path, webhook_secret_plex=PLEX_SECRET)
    with TestClient(create_app(settings)) as client:
        for call in CALLS + ENCODED_NAME_CALLS:
            _send(client, call)
    # httpx logs each URL the test client sends: the sender's log, not the API's.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith(("webhook_api", "smartplex")) for r in records)  # the app did log
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''} {vars(r)}" for r in records)
    assert not _leaks(logged), "\n".join(_leaks(logged))
