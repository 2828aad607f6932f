"""``smartplex-dagster-daemon``: Dagster's daemon (``dagster-daemon``, same arguments), with its sensor
loop at :data:`SENSOR_LOOP_SECONDS` instead of Dagster's 5 seconds.

Dagster's sensor daemon evaluates its sensors on a fixed 5-second loop, whatever their minimum
interval; a webhook whose library's run was settled just after a tick then waits for the next loop.
With a 1-second loop each sensor runs as often as its own ``minimum_interval_seconds`` allows
(``SMARTPLEX_SENSOR_INTERVAL_SECONDS`` for the webhook sensor), and the loop costs one read of the
sensors' states a second. Everything else is Dagster's daemon unchanged.
"""

from __future__ import annotations

from smartplex_dagster.dagster_internals import daemon_main, set_sensor_loop_seconds

#: How often the sensor daemon looks at its sensors.
SENSOR_LOOP_SECONDS = 1


def main() -> None:
    set_sensor_loop_seconds(SENSOR_LOOP_SECONDS)
    daemon_main()


if __name__ == "__main__":
    main()
