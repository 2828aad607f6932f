from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartplex_simulators import RunningSimulators, run_simulators


@pytest.fixture(scope="session")
def sims() -> Iterator[RunningSimulators]:
    """Every kind's simulator over real sockets, shared by the read-only tests of this suite."""
    with run_simulators(size=1500, seed=11) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(sims: RunningSimulators) -> Iterator[None]:
    yield
    for faults in sims.simulation.faults.values():
        faults.clear()
