"""Housekeeping: delete old ignored and processed webhook rows, daily, in batches."""

import dagster as dg

from smartplex import queue
from smartplex.settings import get_settings
from smartplex.types import utcnow
from smartplex_dagster.resources import DatabaseResource


class RetentionConfig(dg.Config):
    ignored_days: int = get_settings().retention_ignored_days
    processed_days: int = get_settings().retention_processed_days


@dg.op(description="Delete ignored and processed webhook rows past their retention; never pending or failed ones.")
def purge_webhooks(context: dg.OpExecutionContext, config: RetentionConfig, database: DatabaseResource) -> None:
    removed = queue.purge(
        database.engine, utcnow(), ignored_days=config.ignored_days, processed_days=config.processed_days
    )
    context.add_output_metadata({f"{status}_deleted": count for status, count in removed.items()})
    context.log.info("retention removed %s", removed)


@dg.job(description="Delete old ignored and processed webhook rows.")
def webhook_retention() -> None:
    purge_webhooks()


retention_schedule = dg.ScheduleDefinition(
    job=webhook_retention,
    cron_schedule="17 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
