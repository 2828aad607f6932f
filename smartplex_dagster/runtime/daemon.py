"""``smartplex-dagster-daemon``: Dagster's daemon (``dagster-daemon``, same arguments), with its sensor
loop at :data:`SENSOR_LOOP_SECONDS` instead of Dagster's 5 seconds, and without the INFO lines it
repeats for every run and tick (:data:`ROUTINE`).

Dagster's sensor daemon evaluates its sensors on a fixed 5-second loop, whatever their minimum
interval; a webhook whose library's run was settled just after a tick then waits for the next loop.
With a 1-second loop each sensor runs as often as its own ``minimum_interval_seconds`` allows
(``SMARTPLEX_SENSOR_INTERVAL_SECONDS`` for the webhook sensor), and the loop costs one read of the
sensors' states a second. Everything else is Dagster's daemon unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from smartplex_dagster.runtime.dagster_internals import daemon_main, set_sensor_loop_seconds

#: How often the sensor daemon looks at its sensors.
SENSOR_LOOP_SECONDS = 1

#: INFO lines Dagster's daemons write for every run or tick, by daemon: with a steady flow of
#: webhooks, about half of the daemon's log, and nothing in them a user acts on. Each run's launch
#: ("Completed launch of run"), its end as the run status sensors see it ("Completed a reaction
#: request for run"), the schedules' lines, skips with a reason and every warning stay.
ROUTINE = {
    "SensorDaemon": (
        "Checking for new runs for sensor: ",
        "Creating new run for ",
        "Launching run for ",
        "skipped: Sensor function returned an empty result",
    ),
    "QueuedRunCoordinatorDaemon": ("Priority sorting and checking tag concurrency limits",),
    "AssetDaemon": ("Prefetching asset records for ", "Done prefetching asset records."),
}


class RoutineLines(logging.Filter):
    """Drops INFO records whose message holds one of ``texts``."""

    def __init__(self, texts: Iterable[str]) -> None:
        super().__init__()
        self.texts = tuple(texts)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        return not any(text in message for text in self.texts)


def drop_routine_lines() -> None:
    for daemon, texts in ROUTINE.items():
        logging.getLogger(f"dagster.daemon.{daemon}").addFilter(RoutineLines(texts))


def main() -> None:
    set_sensor_loop_seconds(SENSOR_LOOP_SECONDS)
    drop_routine_lines()
    daemon_main()


if __name__ == "__main__":
    main()
