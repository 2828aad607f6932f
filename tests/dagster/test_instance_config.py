"""The production dagster.yaml, loaded as written, with its storage on the CI's PostgreSQL."""

import os
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent
from dagster._core.instance.config import PoolGranularity
from dagster._core.op_concurrency_limits_counter import GlobalOpConcurrencyLimitsCounter
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from smartplex_cli import dagster_home
from smartplex_dagster.runtime.dagster_internals import SqliteRunStorage

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def test_production_dagster_yaml_runs_on_postgres(postgres_dagster_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(postgres_dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity == PoolGranularity.RUN
        assert config.run_queue_config.tag_concurrency_limits[0]["key"] == "smartplex/instance"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled

        @dg.asset
        def probe() -> int:
            return 1

        result = dg.materialize([probe], instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None


def test_embedded_home_is_the_production_file_without_postgres(tmp_path: Path) -> None:
    home = dagster_home.prepare(tmp_path)
    assert dagster_home.embedded_config(home)["storage"]["custom"]["config"] == {"base_dir": str(home)}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        # Skipped sensor ticks (most of the webhook sensor's) are kept a day.
        sensor_ticks = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        assert sensor_ticks[TickStatus.SKIPPED] == 1 and sensor_ticks[TickStatus.SUCCESS] == 7
        # No per-step capture of stdout and stderr into files: it cost each run about 0.1 s.
        assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"
        assert dg.materialize([_probe], instance=instance).success
    assert os.path.exists(home / "dagster.yaml")
    assert not list((home / "storage").rglob("*.out")) and not list((home / "storage").rglob("*.err"))


@dg.asset
def _probe() -> int:
    print("a step that prints")
    return 1


def test_runs_write_info_not_debug_to_the_console(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A run worker writes into the daemon's log: with the instance's ``python_logs`` at INFO, a run's
    own log lines get there and its per-event DEBUG lines (ten a run) do not."""

    @dg.asset
    def probe(context: dg.AssetExecutionContext) -> int:
        context.log.info("probe synced")
        return 1

    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        assert dg.materialize([probe], instance=instance).success
    written = capfd.readouterr()
    console = written.out + written.err
    assert "probe synced" in console
    assert " - DEBUG - " not in console and "STEP_START" not in console


@dg.asset(pool="smartplex_probe")
def _pooled(context: dg.AssetExecutionContext) -> int:
    info = context.instance.event_log_storage.get_concurrency_info("smartplex_probe")
    return len(info.claimed_slots) + len(info.pending_steps)


def _queue_holds(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run queue holds ``run`` back for its pools, asked as the queue daemon asks."""
    in_progress = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    counter = GlobalOpConcurrencyLimitsCounter(
        instance, [run], in_progress,
        concurrency_keys=instance.event_log_storage.get_concurrency_keys(),
        pool_limits=instance.event_log_storage.get_pool_limits(),
        pool_granularity=instance.get_concurrency_config().pool_config.pool_granularity,
    )  # fmt: skip
    return counter.is_blocked(run)


def _event(kind: dg.DagsterEventType, run: dg.DagsterRun) -> DagsterEvent:
    return DagsterEvent(kind.value, run.job_name)


def test_pools_are_enforced_by_the_run_queue_and_steps_take_no_slot(tmp_path: Path) -> None:
    """A sync waits in the queue while another run of its pool is in progress; once started, its step
    does not claim a slot (two writes to the event storage fewer, none to leak if its process dies)."""
    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        assert instance.get_concurrency_config().pool_config.pool_granularity == PoolGranularity.RUN
        result = dg.materialize([_pooled], instance=instance)
        assert result.success and result.output_for_node("_pooled") == 0  # no slot held during the step

        job = dg.Definitions(assets=[_pooled], jobs=[dg.define_asset_job("pooled")]).resolve_job_def("pooled")
        first, second = (instance.create_run_for_job(job) for _ in range(2))
        assert not _queue_holds(instance, first)
        instance.handle_run_event(first.run_id, _event(dg.DagsterEventType.RUN_START, first))
        assert _queue_holds(instance, second)
        instance.handle_run_event(first.run_id, _event(dg.DagsterEventType.RUN_SUCCESS, first))
        assert not _queue_holds(instance, second)
