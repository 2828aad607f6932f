"""The derived assets' automation: a sync of one library, over the last partitions only, makes what
depends on it recompute, once."""

from __future__ import annotations

import dagster as dg
import pytest

from smartplex.instances import Instance
from smartplex_dagster.definitions import library_assets
from smartplex_dagster.defs.derived import media_catalog, watch_stats
from smartplex_dagster.defs.library import asset_key
from smartplex_dagster.defs.partitions import incremental_tags
from smartplex_simulators.serve import RunningSimulators

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")

EVERYTHING = [*library_assets, watch_stats, media_catalog]


def _sync(service: str, resources: dict, instance: dg.DagsterInstance) -> None:
    """A webhook run's sync: the partitions of the last 7 days, never the weeks since the history start."""
    library = next(a for a in library_assets if a.key == asset_key(Instance.parse(service)))
    assert dg.materialize([library], resources=resources, instance=instance, tags=incremental_tags()).success


def test_a_sync_of_one_library_recomputes_what_depends_on_it_once(
    resources: dict, sims: RunningSimulators, tmp_path
) -> None:
    defs = dg.Definitions(assets=EVERYTHING, resources=resources)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert tick.total_requested == 0  # nothing synced yet

        _sync("sonarr", resources, instance)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert tick.get_num_requested(media_catalog.key) == 1
        assert tick.get_num_requested(watch_stats.key) == 0  # Tautulli did not change

        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert tick.total_requested == 0  # asked for once

        _sync("tautulli", resources, instance)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert tick.get_num_requested(watch_stats.key) == 1
        assert tick.get_num_requested(media_catalog.key) == 1  # after watch_stats, in the same run
