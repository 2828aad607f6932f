"""The daemon's log: Dagster's per-run and per-tick INFO lines are dropped, and nothing else."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from smartplex_dagster.runtime import daemon


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logs() -> Iterator[dict[str, _Collect]]:
    loggers = {name: logging.getLogger(f"dagster.daemon.{name}") for name in daemon.ROUTINE}
    saved = {name: (logger.filters[:], logger.level) for name, logger in loggers.items()}
    handlers = {name: _Collect() for name in loggers}
    for name, logger in loggers.items():
        logger.addHandler(handlers[name])
        logger.setLevel(logging.INFO)
    daemon.drop_routine_lines()
    yield handlers
    for name, logger in loggers.items():
        logger.removeHandler(handlers[name])
        logger.filters[:], level = saved[name]
        logger.setLevel(level)


def test_routine_lines_are_dropped_and_the_rest_kept(logs: dict[str, _Collect]) -> None:
    sensors = logging.getLogger("dagster.daemon.SensorDaemon")
    sensors.info("Checking for new runs for sensor: sync_succeeded")
    sensors.info("Creating new run for webhook_sensor")
    sensors.info("Launching run for webhook_sensor")
    sensors.info("Sensor sync_failed skipped: Sensor function returned an empty result")
    sensors.info("Completed launch of run 1234 for webhook_sensor")
    sensors.info("Sensor webhook_sensor skipped: no pending webhooks")
    sensors.info("Completed a reaction request for run 1234: Sensor sync_succeeded completed")
    sensors.warning("Creating new run for webhook_sensor took 40 s")
    logging.getLogger("dagster.daemon.QueuedRunCoordinatorDaemon").info(
        "Priority sorting and checking tag concurrency limits for queued runs."
    )
    logging.getLogger("dagster.daemon.QueuedRunCoordinatorDaemon").info("Launched 2 runs.")
    logging.getLogger("dagster.daemon.AssetDaemon").info("Prefetching asset records for 2 records.")
    logging.getLogger("dagster.daemon.AssetDaemon").info("Done prefetching asset records.")
    logging.getLogger("dagster.daemon.AssetDaemon").info("Tick produced 1 runs and 2 asset evaluations")
    assert logs["SensorDaemon"].messages == [
        "Completed launch of run 1234 for webhook_sensor",
        "Sensor webhook_sensor skipped: no pending webhooks",
        "Completed a reaction request for run 1234: Sensor sync_succeeded completed",
        "Creating new run for webhook_sensor took 40 s",
    ]
    assert logs["QueuedRunCoordinatorDaemon"].messages == ["Launched 2 runs."]
    assert logs["AssetDaemon"].messages == ["Tick produced 1 runs and 2 asset evaluations"]


def test_dagster_still_writes_the_lines_dropped() -> None:
    """Each text is still in Dagster's source; an upgrade that rewords one fails here, by name."""
    source = "\n".join(p.read_text() for p in Path(dg.__file__).parent.rglob("*.py"))
    for texts in daemon.ROUTINE.values():
        for text in texts:
            probe = text.split(": ")[-1] if text.startswith("skipped") else text
            assert probe.rstrip(". ") in source, f"Dagster {dg.__version__} no longer logs {text!r}; update ROUTINE"
