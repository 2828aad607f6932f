"""Small helpers the tests share."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Engine, func, select

from smartplex.schema import sync_schedule, webhook_log


def webhook_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(webhook_log).order_by(webhook_log.c.received_at)).mappings()]


def webhook_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(webhook_log)).scalar_one()


def statuses(engine: Engine) -> dict[str, int]:
    """How many ``webhook_log`` rows are in each status."""
    with engine.connect() as connection:
        query = select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)
        return dict(connection.execute(query).all())


def basic_auth(password: str | bytes, user: str | bytes = "sonarr") -> dict[str, str]:
    """An ``Authorization: Basic`` header; bytes are sent as they are (not UTF-8, say)."""
    raw = b":".join(part if isinstance(part, bytes) else part.encode() for part in (user, password))
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def snapshot(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both tables' full contents, to prove a rejected request changed nothing."""
    with engine.connect() as connection:
        hooks = [dict(r) for r in connection.execute(select(webhook_log).order_by(webhook_log.c.id)).mappings()]
        plans = [
            dict(r) for r in connection.execute(select(sync_schedule).order_by(sync_schedule.c.service)).mappings()
        ]
    return hooks, plans


def live_rows(engine: Engine, kind: str) -> dict[Any, dict[str, Any]]:
    """A kind's live rows (of every instance), by the item's own id."""
    from smartplex.sync import SPECS

    spec = SPECS[kind]
    with engine.connect() as connection:
        rows = connection.execute(select(spec.table).where(spec.table.c.deleted_at.is_(None))).mappings()
        return {r[spec.key[-1]]: dict(r) for r in rows}


def service_rows(sims: Any, kind: str) -> dict[Any, dict[str, Any]]:
    """The rows a full refresh would write from the simulated service, by the item's own id."""
    from smartplex.sync import SPECS

    spec = SPECS[kind]
    scope = {"server_id": sims.universe.machine_id} if kind == "plex" else {}
    with sims.client(kind) as client:
        return {row[spec.key[-1]]: row for row in (spec.to_row(i, scope) for i in client.iter_all())}


def rows_behind(engine: Engine, sims: Any, kind: str) -> tuple[list[Any], list[Any]]:
    """The ids whose row is missing or differs from the service's, and those the service no longer has."""
    table, service = live_rows(engine, kind), service_rows(sims, kind)
    differ = [k for k, row in service.items() if k not in table or any(table[k][c] != v for c, v in row.items())]
    return differ, sorted(table.keys() - service.keys(), key=str)
