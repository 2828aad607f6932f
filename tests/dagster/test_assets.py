"""The Dagster assets over partition ranges: full refresh, 30-day backfill as one run, failures."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import Engine, func, select

from smartplex.column_types import utcnow
from smartplex.dagster_names import resource_key
from smartplex.instances import Instance
from smartplex.schema import media_catalog, radarr_movies, sonarr_series, watch_stats
from smartplex_dagster.definitions import library_assets
from smartplex_dagster.defs.derived import media_catalog as catalog_asset
from smartplex_dagster.defs.derived import watch_stats as stats_asset
from smartplex_dagster.defs.library import asset_key
from smartplex_dagster.defs.partitions import PARTITIONS, covering, full_refresh_tags, incremental_tags, range_tags
from smartplex_dagster.defs.resources import DatabaseResource, ServiceResource
from smartplex_dagster.defs.run_requests import (
    REFRESH_JOB,
    WEBHOOK_JOB,
    full_refresh_run,
    refresh_job,
    webhook_job,
    webhook_run,
)
from smartplex_simulators.serve import RunningSimulators

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")


def _materializations(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> list[dg.AssetMaterialization]:
    return [e.event_specific_data.materialization for e in result.get_asset_materialization_events()
            if e.event_specific_data.materialization.asset_key == key]  # fmt: skip


def _count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*(
            [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []))).scalar_one()  # fmt: skip


def test_full_refresh_of_every_asset_then_derived(resources: dict, engine: Engine, sims: RunningSimulators) -> None:
    everything = [*library_assets, stats_asset, catalog_asset]
    result = dg.materialize(
        everything, resources=resources, tags=full_refresh_tags(), selection=[a.key for a in library_assets]
    )
    assert result.success
    radarr = _materializations(result, asset_key(Instance.parse("radarr")))
    # One run, one step, one materialization: not one per partition since the history start.
    assert len(radarr) == 1
    assert radarr[-1].metadata["full_refresh"].value is True
    assert radarr[-1].metadata["dagster/row_count"].value == len(sims.universe.movies) == _count(engine, radarr_movies)

    derived = dg.materialize(everything, resources=resources, selection=[stats_asset.key, catalog_asset.key])
    assert derived.success
    assert _count(engine, watch_stats) > 0 and _count(engine, media_catalog) > 0
    check = next(e for e in derived.get_asset_check_evaluations() if e.check_name == "match_rate")
    assert check.passed and check.metadata["match_rate"].value > 0.5


def test_backfill_of_thirty_days_is_one_run(resources: dict, engine: Engine, sims: RunningSimulators) -> None:
    sonarr = next(a for a in library_assets if a.key == asset_key(Instance.parse("sonarr")))
    thirty = covering(utcnow() - timedelta(days=30))
    result = dg.materialize([sonarr], resources=resources, tags=range_tags(thirty))
    assert result.success
    events = _materializations(result, sonarr.key)
    assert sorted(e.partition for e in events) == PARTITIONS.get_partition_keys_in_range(thirty)
    assert len({e.metadata["window_start"].value for e in events}) == 1  # one window, one sync
    assert events[0].metadata["full_refresh"].value is False
    step_starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert len(step_starts) == 1


def _as_requested(request: dg.RunRequest, resources: dict) -> dg.ExecuteInProcessResult:
    """Executes a sensor's run request in its job, with the asset and check selection it names."""
    defs = dg.Definitions(assets=library_assets, jobs=[webhook_job, refresh_job], resources=resources)
    assert request.job_name is not None and request.asset_selection is not None
    checks = None if request.asset_check_keys is None else set(request.asset_check_keys)
    job = defs.resolve_job_def(request.job_name).get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=checks
    )
    return job.execute_in_process(tags=request.tags, raise_on_error=False)


def test_a_webhook_run_leaves_the_checks_to_the_full_refresh(
    resources: dict, engine: Engine, sims: RunningSimulators
) -> None:
    """The checks read the whole table: a webhook run (a few rows) skips them, a full refresh runs them."""
    webhook = _as_requested(webhook_run(Instance.parse("sonarr"), "key-1", 1, utcnow()), resources)
    assert webhook.success and webhook.dagster_run.job_name == WEBHOOK_JOB
    weeks = PARTITIONS.get_partition_keys_in_range(covering(utcnow() - timedelta(days=7)))
    assert [m.partition for m in _materializations(webhook, asset_key(Instance.parse("sonarr")))] == weeks
    assert webhook.get_asset_check_evaluations() == []
    planned = [e for e in webhook.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
    assert planned == []

    refresh = _as_requested(full_refresh_run(Instance.parse("sonarr"), "key-2"), resources)
    assert refresh.success and refresh.dagster_run.job_name == REFRESH_JOB
    checks = {e.check_name: e for e in refresh.get_asset_check_evaluations()}
    assert set(checks) == {"has_rows", "no_duplicate_ids"}
    assert checks["has_rows"].passed and checks["has_rows"].metadata["rows"].value == len(sims.universe.shows)
    assert checks["no_duplicate_ids"].passed and checks["no_duplicate_ids"].metadata["duplicated_ids"].value == 0


def test_a_run_for_an_unconfigured_service_fails_clearly(database_url: str, engine: Engine) -> None:
    radarr = next(a for a in library_assets if a.key == asset_key(Instance.parse("radarr")))
    resources = {
        "database": DatabaseResource(url=database_url),
        resource_key(Instance.parse("radarr")): ServiceResource(instance="radarr"),
    }
    result = dg.materialize([radarr], resources=resources, tags=incremental_tags(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "SMARTPLEX_RADARR_URL" in str(failure.event_specific_data.error)


def test_a_failing_service_fails_the_run_with_a_readable_error(
    resources: dict, engine: Engine, sims: RunningSimulators
) -> None:
    sims.simulation.faults["sonarr"].update(error_rate=1.0, error_status=500)
    sonarr = next(a for a in library_assets if a.key == asset_key(Instance.parse("sonarr")))
    result = dg.materialize([sonarr], resources=resources, tags=incremental_tags(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "500" in str(failure.event_specific_data.error)
    assert _count(engine, sonarr_series) == 0


def test_a_backfill_of_every_partition_is_still_a_full_refresh(
    resources: dict, engine: Engine, sims: RunningSimulators
) -> None:
    radarr = next(a for a in library_assets if a.key == asset_key(Instance.parse("radarr")))
    assert dg.materialize([radarr], resources=resources, tags=full_refresh_tags()).success
    gone = next(iter(sims.universe.movies))
    sims.simulation.delete_movie(gone)  # no webhook reaches this test: only a full refresh can see it
    everything = dg.PartitionKeyRange(PARTITIONS.get_first_partition_key(), PARTITIONS.get_last_partition_key())
    result = dg.materialize([radarr], resources=resources, tags=range_tags(everything))
    assert result.success
    events = _materializations(result, radarr.key)
    assert events[-1].metadata["full_refresh"].value is True and events[-1].metadata["deleted"].value == 1


def test_each_ended_run_is_one_line_in_the_daemon_log(
    instance: dg.DagsterInstance, resources: dict, sims: RunningSimulators
) -> None:
    from smartplex_dagster.defs.status_sensors import summary

    radarr = next(a for a in library_assets if a.key == asset_key(Instance.parse("radarr")))
    tags = {**full_refresh_tags(), "smartplex/trigger": "schedule", "smartplex/service": "radarr"}
    result = dg.materialize([radarr], resources=resources, instance=instance, tags=tags)
    line = summary(instance, instance.get_run_by_id(result.run_id))
    assert line.startswith(f"radarr schedule run {result.run_id[:8]} success: {len(sims.universe.movies)} rows, ")
    assert line.endswith(" s")
