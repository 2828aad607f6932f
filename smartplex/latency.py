"""The stages of a webhook's path, timed from its ``webhook_log`` row, in SQL on either engine.

received_at -> dispatched_at (claimed by the sensor) -> run_created_at -> run_started_at ->
sync_started_at -> sync_finished_at -> processed_at (settled). The run's four moments are copied from
Dagster's records when the row is settled (migration 009), so neither the API nor anything else has
to ask Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, select, union_all

from smartplex.schema import webhook_log
from smartplex.sql_time import seconds_between

#: Outcomes a sync run wrote: only these rows went the whole path.
HANDLED_BY_RUN = ("processed", "failed", "missing")


@dataclass(frozen=True)
class Stage:
    name: str
    start: str  # webhook_log column
    end: str
    description: str
    statuses: tuple[str, ...] = HANDLED_BY_RUN


STAGES: tuple[Stage, ...] = (
    Stage("claim", "received_at", "dispatched_at", "received, until the webhook sensor claimed it"),
    Stage("create", "dispatched_at", "run_created_at", "claimed, until the daemon created its run"),
    Stage(
        "start",
        "run_created_at",
        "run_started_at",
        "run created, until it started: the run queue, the run worker's process, the code location",
    ),
    Stage("prepare", "run_started_at", "sync_started_at", "run started, until its sync step started"),
    Stage("sync", "sync_started_at", "sync_finished_at", "the sync step, from its start to its success or failure"),
    # A 'missing' row is finished by the sync itself, before the step ends: it has no settle stage.
    Stage(
        "settle",
        "sync_finished_at",
        "processed_at",
        "sync finished, until the row's outcome was written",
        ("processed", "failed"),
    ),
    Stage("total", "received_at", "processed_at", "received, until its outcome was written: the whole path"),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def durations(where: ColumnElement[bool], stages: tuple[Stage, ...] = STAGES, *also: ColumnElement[Any]) -> Any:
    """(stage, seconds, *also) for every row matching ``where`` that has both ends of a stage."""
    parts = []
    for stage in stages:
        start, end = webhook_log.c[stage.start], webhook_log.c[stage.end]
        parts.append(
            select(literal(stage.name).label("stage"), seconds_between(start, end).label("seconds"), *also).where(
                and_(where, webhook_log.c.status.in_(stage.statuses), start.is_not(None), end.is_not(None))
            )
        )
    return union_all(*parts).subquery()


def percentiles(
    connection: Connection,
    where: ColumnElement[bool],
    quantiles: tuple[float, ...] = (0.5, 0.95),
    stages: tuple[Stage, ...] = STAGES,
) -> dict[str, dict[Any, Any]]:
    """Per stage: how many rows, and the nearest-rank percentile of its seconds for each quantile
    (``None`` without rows)."""
    rows = durations(where, stages)
    ranked = select(
        rows.c.stage,
        rows.c.seconds,
        func.row_number().over(partition_by=rows.c.stage, order_by=rows.c.seconds).label("rank"),
        func.count().over(partition_by=rows.c.stage).label("n"),
    ).subquery()
    # The smallest duration whose rank reaches q*n is the nearest-rank percentile.
    query = select(
        ranked.c.stage,
        func.max(ranked.c.n),
        *(func.min(case((ranked.c.rank >= ranked.c.n * q, ranked.c.seconds))) for q in quantiles),
    ).group_by(ranked.c.stage)
    figures: dict[str, dict[Any, Any]] = {s.name: {"rows": 0, **dict.fromkeys(quantiles)} for s in stages}
    for stage, rows, *values in connection.execute(query):
        figures[stage] = {"rows": rows, **dict(zip(quantiles, values, strict=True))}
    return figures


def histogram(
    connection: Connection, where: ColumnElement[bool], bounds: tuple[float, ...], stages: tuple[Stage, ...] = STAGES
) -> dict[str, tuple[list[int], int, float]]:
    """Per stage: how many rows took at most each bound (cumulative), how many in all, and their sum."""
    rows = durations(where, stages)
    query = select(
        rows.c.stage,
        func.count(),
        func.coalesce(func.sum(rows.c.seconds), 0.0),
        *(func.count(case((rows.c.seconds <= bound, 1))) for bound in bounds),
    ).group_by(rows.c.stage)
    figures = {s.name: ([0] * len(bounds), 0, 0.0) for s in stages}
    for stage, count, total, *buckets in connection.execute(query):
        figures[stage] = (list(buckets), count, float(total))
    return figures


__all__ = ["HANDLED_BY_RUN", "STAGES", "STAGE_NAMES", "Stage", "durations", "histogram", "percentiles"]
