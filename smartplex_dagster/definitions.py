"""The code location's root: it only assembles what the other modules define."""

from __future__ import annotations

import dagster as dg

from smartplex.sync import SPECS
from smartplex_dagster.derived import media_catalog, watch_stats
from smartplex_dagster.library import library_asset
from smartplex_dagster.resources import build_resources
from smartplex_dagster.webhooks import webhook_log_asset

library_assets = [library_asset(spec) for spec in SPECS.values()]

defs = dg.Definitions(
    assets=[webhook_log_asset, *library_assets, watch_stats, media_catalog],
    resources=build_resources(),
)
