"""Group commit shares transactions between concurrent requests; a killed server loses nothing it acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event, select

from smartplex import migrate
from smartplex.column_types import RawJSON, utcnow
from smartplex.db import make_engine
from smartplex.schema import webhook_log
from smartplex_cli.supervisor import free_port, wait_for_http
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, load_fixture
from webhook_api.writer import WebhookWriter

BODY = load_fixture("webhooks", "sonarr", "Download.json")


def _row() -> dict:
    return {"id": uuid.uuid4(), "source": "sonarr", "event_type": "Download", "payload": BODY,
            "received_at": utcnow(), "status": "pending", "processed": False}  # fmt: skip


def _observed(database_url: str) -> tuple[Engine, list[str], list[int]]:
    """A migrated engine, the first word of every statement its connections send from now on, and its
    commits. On PostgreSQL the writer hands its statement to the driver's cursor, in autocommit mode
    (a statement is its own transaction), so what is sent is read from psycopg2's logging connection."""
    statements: list[str] = []
    commits: list[int] = []
    if database_url.startswith("postgresql"):
        from psycopg2.extras import LoggingConnection

        class Sent:
            def write(self, query: str) -> None:
                statements.append(query.split(None, 1)[0].upper())

        class Logged(LoggingConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.initialize(Sent())

        engine = make_engine(database_url, timeout=5, connect_args={"connection_factory": Logged})
    else:
        engine = make_engine(database_url, timeout=5)
    migrate.upgrade(engine)
    engine.dispose()  # the connections that migrated; the writer's own are observed from here on
    statements.clear()
    if engine.dialect.name == "sqlite":
        event.listen(
            engine, "before_cursor_execute", lambda *args: statements.append(args[2].split(None, 1)[0].upper())
        )
        event.listen(engine, "commit", lambda _: commits.append(1))
    return engine, statements, commits


def _write_rows(engine: Engine, count: int) -> None:
    async def scenario() -> None:
        writer = WebhookWriter(engine, timeout=10, batch_size=500)
        await writer.start()
        await asyncio.gather(*(writer.write(_row()) for _ in range(count)))
        await writer.stop()

    asyncio.run(scenario())


def test_concurrent_writes_share_commits(database_url: str) -> None:
    engine, statements, commits = _observed(database_url)
    _write_rows(engine, 200)
    with engine.connect() as connection:
        assert len(connection.execute(select(webhook_log.c.id)).all()) == 200
    engine.dispose()
    transactions = statements.count("INSERT") if engine.dialect.name == "postgresql" else len(commits)
    assert 1 <= transactions < 20


def test_a_group_is_one_insert(database_url: str) -> None:
    """However many rows a group holds, the database is sent one INSERT for it (and, on PostgreSQL,
    nothing else: the statement commits itself)."""
    engine, statements, _ = _observed(database_url)
    _write_rows(engine, 200)
    engine.dispose()
    inserts = statements.count("INSERT")
    assert 1 <= inserts < 20
    if engine.dialect.name == "postgresql":
        # Besides the groups' INSERTs, only the pool's pre-ping of a fresh connection.
        assert set(statements) - {"SELECT"} == {"INSERT"}, statements
        assert statements.count("SELECT") <= 3, statements


#: Payloads whose text a hand-rendered statement could get wrong: quotes, backslashes, percent signs
#: (placeholders to a driver), a NUL-free control character, non-BMP characters.
TRICKY_PAYLOADS = [
    """{"title": "O'Brien's \\"quoted\\" \\\\ back\\\\slash", "eventType": "Download"}""",
    '{"eventType": "Download", "p": "100% %s %(id)s %% %d"}',
    '{"eventType": "Download", "e": "\\u0007 tab\\t and newline\\n", "emoji": "\u00e9\u6f22\U0001f3ac"}',
]


def test_the_stored_rows_are_the_rows_written(engine: Engine) -> None:
    """Every column as written, whatever the payload's text holds, through the writer's own rendering."""
    rows = [_row() | {"payload": RawJSON(text), "processed_at": None} for text in TRICKY_PAYLOADS]
    rows.append(_row() | {"payload": {"form": "a % b ' c", "eventType": "x"}, "processed_at": utcnow()})

    async def scenario() -> None:
        writer = WebhookWriter(engine, timeout=10, batch_size=500)
        await writer.start()
        await asyncio.gather(*(writer.write(dict(row)) for row in rows))
        await writer.stop()

    asyncio.run(scenario())
    with engine.connect() as connection:
        stored = {r["id"]: r for r in connection.execute(select(webhook_log)).mappings()}
    assert len(stored) == len(rows)
    for row in rows:
        got = stored[row["id"]]
        payload = row["payload"]
        assert got["payload"] == (json.loads(payload) if isinstance(payload, str) else payload)
        for column in ("source", "event_type", "received_at", "status", "processed"):
            assert got[column] == row[column], column
        assert got["processed_at"] == row["processed_at"]


def test_one_bad_row_does_not_fail_its_group(engine: Engine) -> None:
    async def scenario() -> list[object]:
        writer = WebhookWriter(engine, timeout=10, batch_size=500)
        await writer.start()
        rows = [_row() for _ in range(5)]
        rows[2]["source"] = "emby"  # violates the source check
        results = await asyncio.gather(*(writer.write(r) for r in rows), return_exceptions=True)
        await writer.stop()
        return results

    results = asyncio.run(scenario())
    assert [r is None for r in results] == [True, True, False, True, True]
    assert getattr(results[2], "status_code", None) == 422
    with engine.connect() as connection:
        assert len(connection.execute(select(webhook_log.c.id)).all()) == 4


def test_killed_server_loses_nothing_it_acknowledged(database_url: str, engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path),
           "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/webhooks/sonarr?token={WEBHOOK_SECRET}"
    requests, wanted = 1000, 100
    acknowledged: list[str] = []
    # Every request's outcome, counted: "202", another status, or a transport error before or after the
    # kill (the flag is set before the signal is sent: an error seen while it is unset is not the kill's).
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    killed = threading.Event()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60)
        http = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=16))

        def post(_: int) -> None:
            try:
                response = http.post(url, json=BODY)
            except httpx.TransportError as exc:
                when = "after the kill" if killed.is_set() else "before the kill"
                with lock:
                    outcomes[f"{type(exc).__name__} {when}"] += 1
                return
            with lock:
                outcomes[str(response.status_code)] += 1
                if response.status_code == 202:
                    acknowledged.append(response.json()["id"])

        pool = ThreadPoolExecutor(max_workers=16)
        futures = [pool.submit(post, i) for i in range(requests)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < wanted and not all(f.done() for f in futures):
            assert time.monotonic() < deadline, f"not {wanted} acknowledged within 60s: {dict(outcomes)}"
            time.sleep(0.005)
        killed.set()
        server.send_signal(signal.SIGKILL)  # requests are still in flight
        pool.shutdown(wait=True, cancel_futures=True)
        http.close()
    finally:
        server.kill()
        server.wait()

    ran = [f for f in futures if not f.cancelled()]
    assert [f.exception() for f in ran if f.exception() is not None] == []
    assert sum(outcomes.values()) == len(ran), dict(outcomes)
    # A server that is up answers 202; one that was killed gives no answer at all.
    unexpected = {k: n for k, n in outcomes.items() if k != "202" and not k.endswith("after the kill")}
    assert unexpected == {}, dict(outcomes)
    with engine.connect() as connection:
        stored = {str(i) for i in connection.execute(select(webhook_log.c.id)).scalars()}
    assert len(acknowledged) >= wanted, dict(outcomes)
    assert set(acknowledged) <= stored
