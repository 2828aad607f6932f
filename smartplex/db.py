"""Engine creation for the product database: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from smartplex.column_types import json_serializer


def make_engine(url: str, *, timeout: float = 5.0, **kwargs: Any) -> Engine:
    """An engine whose every wait (connect, lock, statement, pool) is bounded by ``timeout`` seconds."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": timeout}, pool_timeout=timeout, json_serializer=json_serializer, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas(timeout))
        event.listen(engine, "checkout", _writes_begin_immediate)
        return engine
    timeouts = f"-c statement_timeout={int(timeout * 1000)} -c lock_timeout={int(timeout * 1000)}"
    connect_args = {
        "connect_timeout": max(1, math.ceil(timeout)),
        # Keep any options given in the URL (a search_path, say) beside ours.
        "options": " ".join(filter(None, [_one(parsed.query.get("options")), timeouts])),
        # Notice a dead server within seconds rather than the kernel's minutes.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
    }
    connect_args.update(kwargs.pop("connect_args", {}))
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_timeout=timeout,
        json_serializer=json_serializer,
        **kwargs,
    )


def _sqlite_pragmas(timeout: float) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the API write while Dagster reads; FULL syncs every commit, so an acknowledged
        # webhook survives a power cut too (group commit keeps that affordable).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _writes_begin_immediate(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A transaction takes the database's write lock when it begins (``BEGIN IMMEDIATE``, which the
    driver sends before a transaction's first write), waiting up to the busy timeout for another writer.

    With the driver's default ``BEGIN`` (deferred), a transaction that reads the database before it
    writes holds a snapshot; another process's commit makes it stale, and the transaction's first
    write then fails at once with "database is locked" (SQLite cannot wait that out). Full refreshes of
    two services at once failed so: each batch counts its rows in the synced table, then writes them.
    Reads outside a write transaction take no lock.
    Set at every checkout: a connection lent in autocommit comes back with the driver's default.
    """
    if dbapi_connection.isolation_level is not None:
        dbapi_connection.isolation_level = "IMMEDIATE"


def _one(value: str | tuple[str, ...] | None) -> str | None:
    """A URL query parameter given once (a repeated one keeps its last value)."""
    return value[-1] if isinstance(value, tuple) else value
