"""A simulator of every service kind (``smartplex.kinds.KINDS``) over one generated media universe.

Start them with :func:`run_simulators` (tests, the demo, sync tests) or ``smartplex simulate``, with
a 4K Sonarr and Radarr if asked (:data:`EXTRA_INSTANCES`);
drive them with :class:`Simulation`'s mutations or the ``/_sim`` endpoints; inject faults with
``simulation.faults[instance_id]`` (``sonarr``, ``sonarr/4k``).
"""

from smartplex_simulators._arr import EXTRA_INSTANCES
from smartplex_simulators.faults import Faults
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation, make_keys
from smartplex_simulators.universe import Universe

__all__ = ["EXTRA_INSTANCES", "Faults", "RunningSimulators", "Simulation", "Universe", "make_keys", "run_simulators"]
