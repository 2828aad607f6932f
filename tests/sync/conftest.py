"""Simulators whose clock is the real clock, so Dagster's daily partitions line up with their data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from smartplex.simulators.serve import RunningSimulators, run_simulators
from smartplex.simulators.simulation import Simulation
from smartplex.simulators.universe import Universe

DAY = 86_400


@pytest.fixture
def sims() -> Iterator[RunningSimulators]:
    with run_simulators(simulation=Simulation(Universe(seed=11, size=400, now=int(time.time())))) as running:
        yield running


@pytest.fixture
def sims_ten_days_ago() -> Iterator[RunningSimulators]:
    """Simulators whose clock starts ten days back: mutations there fall outside a 7-day window."""
    universe = Universe(seed=12, size=400, now=int(time.time()) - 10 * DAY)
    with run_simulators(simulation=Simulation(universe)) as running:
        yield running
