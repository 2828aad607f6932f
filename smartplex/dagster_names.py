"""The names SmartPlex gives things in Dagster, in one place: the code location, jobs, schedules,
pools, resources and run tags.

The code location (``smartplex_dagster``) defines what these name; the command line starts Dagster's
processes with them, and the webhook API's admin page links into the Dagster UI with them. So they
live in the core, which imports no Dagster.

In Dagster an instance is written as its slug (``sonarr_4k``, the default instance's is its kind:
``sonarr``): asset keys, asset tags and definition names cannot hold the ``/`` of its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from smartplex.instances import Instance

#: The code location's name, as the Dagster UI shows it and its URLs carry it.
CODE_LOCATION: Final = "smartplex"
#: The module that defines it (``workspace.yaml``, the code server, the workers).
DEFINITIONS_MODULE: Final = "smartplex_dagster.definitions"

#: Incremental syncs of one library, started by the webhook sensor.
WEBHOOK_JOB: Final = "webhook_sync"
#: Full refreshes of one library, started by its schedule or "sync now".
REFRESH_JOB: Final = "full_refresh"
#: Catch-up syncs of one library: what its service changed that no webhook brought (catch_up_sensor).
CATCH_UP_JOB: Final = "catch_up"
#: The daily housekeeping of webhook rows and Dagster's runs.
RETENTION_JOB: Final = "webhook_retention"
#: The product database's resource.
DATABASE_RESOURCE: Final = "database"

# Run tags. A user filters runs by the first three in the Dagster UI.
#: Why a run was made: :data:`WEBHOOK_TRIGGER`, :data:`CATCH_UP_TRIGGER` or :data:`SCHEDULE_TRIGGER`.
TRIGGER_TAG: Final = "smartplex/trigger"
#: A run the webhook sensor asked for: an incremental sync of the webhooks it claimed.
WEBHOOK_TRIGGER: Final = "webhook"
#: A run the catch-up sensor asked for: the changes a poll of the service found (or a full refresh).
CATCH_UP_TRIGGER: Final = "catch_up"
#: A run a schedule or "sync now" asked for: a full refresh.
SCHEDULE_TRIGGER: Final = "schedule"
#: The kind of service a run (or asset) syncs: ``sonarr``.
KIND_TAG: Final = "smartplex/kind"
#: The instance a run (or asset) syncs, as its slug: ``sonarr``, ``sonarr_4k``.
INSTANCE_TAG: Final = "smartplex/instance"
#: How many webhooks a webhook run covers.
WEBHOOKS_TAG: Final = "smartplex/webhooks"
#: Where an incremental sync's fetch window starts (ISO 8601); its partitions only bound it.
WINDOW_START_TAG: Final = "smartplex/window_start"
#: A run of any partition that reads the whole library and soft-deletes what vanished.
FULL_REFRESH_TAG: Final = "smartplex/full_refresh"
#: On a catch-up's refresh of some Plex sections only: their keys, comma-separated.
SECTIONS_TAG: Final = "smartplex/sections"
#: Where a run's worker process runs (host, boot, pid namespace, pid, start ticks), as JSON.
WORKER_TAG: Final = "smartplex/worker"
#: On a failed run awaiting its retry: when the retry daemon was first seen running after the failure.
RETRY_DAEMON_SEEN_TAG: Final = "smartplex/retry_daemon_seen_at"
#: On a run a stop canceled: its work is given back at the next start.
STOPPED_TAG: Final = "smartplex/stopped"
#: Before the kind/instance tags, runs carried the instance's id (``sonarr/4k``) here. A start adds the
#: current tags to such runs (``smartplex_dagster.runtime.orphans``), and every reader falls back to it.
LEGACY_SERVICE_TAG: Final = "smartplex/service"


def instance_tags(instance: Instance) -> dict[str, str]:
    """The tags naming ``instance`` on its asset and its runs."""
    return {KIND_TAG: instance.kind.name, INSTANCE_TAG: instance.slug}


def tagged_instance(tags: Mapping[str, str]) -> Instance | None:
    """The instance a run's tags name, current or legacy; ``None`` when they name none we know."""
    try:
        if INSTANCE_TAG in tags:
            return Instance.from_slug(tags[INSTANCE_TAG])
        if LEGACY_SERVICE_TAG in tags:
            return Instance.parse(tags[LEGACY_SERVICE_TAG])
    except ValueError:
        pass
    return None


def schedule_name(instance: Instance) -> str:
    """The full-refresh schedule of an instance: ``sonarr_4k_full_refresh``."""
    return f"{instance.slug}_full_refresh"


def pool(instance: Instance) -> str:
    """The pool the syncs of one instance share; ``dagster.yaml`` limits each pool (default 1)."""
    return f"smartplex_{instance.slug}"


def resource_key(instance: Instance) -> str:
    """The API resource of an instance: ``sonarr_api``, ``sonarr_4k_api``."""
    return f"{instance.slug}_api"


# Dagster's own run tags that SmartPlex reads or writes.
#: The key a sensor or schedule gave its run request: a key seen before is not run again.
RUN_KEY_TAG: Final = "dagster/run_key"
#: On a failed run: whether Dagster's run retries will retry it.
WILL_RETRY_TAG: Final = "dagster/will_retry"
#: A run over a range of partitions (``RunRequest`` has no argument for it).
PARTITION_RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG: Final = "dagster/asset_partition_range_end"
