"""``webhook_log`` as an external source asset, so the lineage graph starts at the webhooks."""

from __future__ import annotations

import dagster as dg

webhook_log_asset = dg.AssetSpec(
    key=dg.AssetKey(["webhooks", "webhook_log"]),
    description=(
        "Webhooks from Plex, Tautulli, Sonarr, Radarr and Overseerr, written by the webhook API. "
        "Rows that make a library stale start incremental syncs. The webhook sensor observes it at most "
        "once a minute (rows pending and dispatched, webhooks received per source, webhook-to-processed "
        "p50/p95 seconds): the plots on this page."
    ),
    group_name="webhooks",
    kinds={"sql", "fastapi"},
    metadata={"table": "webhook_log"},
)
