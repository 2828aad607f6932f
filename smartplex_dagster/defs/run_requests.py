"""The run requests SmartPlex makes: a library asset over a partition range, tagged with why; and the jobs
they run in."""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg

from smartplex.dagster_names import (
    CATCH_UP_JOB,
    CATCH_UP_TRIGGER,
    REFRESH_JOB,
    SCHEDULE_TRIGGER,
    SECTIONS_TAG,
    TRIGGER_TAG,
    WEBHOOK_JOB,
    WEBHOOK_TRIGGER,
    WEBHOOKS_TAG,
    instance_tags,
)
from smartplex.instances import Instance
from smartplex.settings import get_settings
from smartplex_dagster.defs.library import asset_key
from smartplex_dagster.defs.partitions import full_refresh_tags, incremental_tags, window_tags
from smartplex_dagster.defs.settle import settle_webhooks

#: A webhook run syncs one library: one step, without the library's checks (a full refresh runs them). The in-process executor runs it in the run's own process
#: instead of starting (and importing everything in) a second one for it.
_EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}

webhook_job = dg.define_asset_job(
    WEBHOOK_JOB,
    selection=dg.AssetSelection.assets(*(asset_key(i) for i in get_settings().service_instances)).without_checks(),
    description="An incremental sync of one library, for the webhooks that made it stale (webhook_sensor).",
    executor_def=_EXECUTORS[get_settings().webhook_run_executor],
    hooks={settle_webhooks},
)

#: Full refreshes, from the schedules or "sync now": one step too, in the run's own process as well.
refresh_job = dg.define_asset_job(
    REFRESH_JOB,
    selection=dg.AssetSelection.assets(*(asset_key(i) for i in get_settings().service_instances)),
    description="A full refresh of one library: everything the service lists; soft-deletes what vanished.",
    executor_def=_EXECUTORS[get_settings().webhook_run_executor],
)

#: What the catch-up found: the changed items by id (one step, no checks), or everything.
catch_up_job = dg.define_asset_job(
    CATCH_UP_JOB,
    selection=dg.AssetSelection.assets(*(asset_key(i) for i in get_settings().service_instances)).without_checks(),
    description="A sync of what one library's service changed that no webhook brought (catch_up_sensor).",
    executor_def=_EXECUTORS[get_settings().webhook_run_executor],
)


def webhook_run(library: Instance, run_key: str, webhooks: int, oldest: datetime) -> dg.RunRequest:
    """An incremental sync of the last 7 days, for ``webhooks`` coalesced webhooks; reaching further back
    when the oldest of them (a replayed one, say) arrived earlier than that."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=WEBHOOK_JOB,
        asset_selection=[asset_key(library)],
        asset_check_keys=[],
        tags={
            **incremental_tags(oldest),
            TRIGGER_TAG: WEBHOOK_TRIGGER,
            **instance_tags(library),
            WEBHOOKS_TAG: str(webhooks),
        },
    )


def full_refresh_run(library: Instance, run_key: str) -> dg.RunRequest:
    """A full refresh: everything the service lists, which is what lets the sync soft-delete what vanished."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=REFRESH_JOB,
        asset_selection=[asset_key(library)],
        tags={**full_refresh_tags(), TRIGGER_TAG: SCHEDULE_TRIGGER, **instance_tags(library)},
    )


def catch_up_run(
    library: Instance, run_key: str, since: datetime, full: bool, sections: Sequence[str] = ()
) -> dg.RunRequest:
    """The changes a catch-up poll found since ``since`` (its watermark), or a refresh when the service's
    counts disagree with the table's (a removal no change feed records): of those Plex ``sections``, or
    of the whole library."""
    tags = full_refresh_tags() if full else window_tags(since)
    if sections:
        tags[SECTIONS_TAG] = ",".join(sections)
    return dg.RunRequest(
        run_key=run_key,
        job_name=CATCH_UP_JOB,
        asset_selection=[asset_key(library)],
        asset_check_keys=[],
        tags={**tags, TRIGGER_TAG: CATCH_UP_TRIGGER, **instance_tags(library)},
    )
