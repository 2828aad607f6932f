"""The code location's root: it only assembles what the per-service modules define."""

from __future__ import annotations

import dagster as dg

from smartplex_dagster.webhooks import webhook_log_asset

defs = dg.Definitions(assets=[webhook_log_asset])
