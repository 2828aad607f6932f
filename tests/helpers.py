"""Small helpers the tests share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from smartplex.schema import sync_schedule, webhook_log


def webhook_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(webhook_log).order_by(webhook_log.c.received_at)).mappings()]


def webhook_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(webhook_log)).scalar_one()


def snapshot(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both tables' full contents, to prove a rejected request changed nothing."""
    with engine.connect() as connection:
        hooks = [dict(r) for r in connection.execute(select(webhook_log).order_by(webhook_log.c.id)).mappings()]
        plans = [dict(r) for r in connection.execute(select(sync_schedule).order_by(sync_schedule.c.service)).mappings()]
    return hooks, plans
