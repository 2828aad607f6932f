from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartplex_simulators import RunningSimulators, run_simulators


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    """Every kind's simulator and the 4K Sonarr and Radarr over real sockets; module-scoped so mutations
    stay within a module."""
    with run_simulators(size=800, seed=5, extra_instances=("sonarr/4k", "radarr/4k")) as running:
        yield running
