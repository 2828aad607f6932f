"""Writing what the clients fetch into the synced tables: upserts, soft deletes, derived tables.

Independent of Dagster: the assets call :func:`run_sync` and :func:`recompute_watch_stats` /
:func:`recompute_media_catalog`; benchmarks and tests can call them directly.
"""

from smartplex.sync.derived import recompute_media_catalog, recompute_watch_stats
from smartplex.sync.engine import SyncResult, run_sync
from smartplex.sync.specs import SPECS, SyncSpec

__all__ = ["SPECS", "SyncResult", "SyncSpec", "recompute_media_catalog", "recompute_watch_stats", "run_sync"]
