"""The code location's root: it only assembles what the other modules define."""

import dagster as dg

from smartplex.settings import get_settings
from smartplex_dagster.defs.catch_up import catch_up_sensor
from smartplex_dagster.defs.derived import derived_automation, media_catalog, watch_stats
from smartplex_dagster.defs.library import library_asset
from smartplex_dagster.defs.resources import build_resources
from smartplex_dagster.defs.retention import retention_schedule, webhook_retention
from smartplex_dagster.defs.run_requests import catch_up_job, refresh_job, webhook_job
from smartplex_dagster.defs.schedules import schedules
from smartplex_dagster.defs.status_sensors import sync_failed, sync_succeeded
from smartplex_dagster.defs.webhook_log import webhook_log_asset
from smartplex_dagster.defs.webhook_sensor import webhook_sensor

library_assets = [library_asset(instance) for instance in get_settings().service_instances]

defs = dg.Definitions(
    assets=[webhook_log_asset, *library_assets, watch_stats, media_catalog],
    jobs=[webhook_retention, webhook_job, refresh_job, catch_up_job],
    schedules=[*schedules, retention_schedule],
    sensors=[webhook_sensor, catch_up_sensor, sync_succeeded, sync_failed, derived_automation],
    resources=build_resources(),
)
