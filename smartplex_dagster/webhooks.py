"""``webhook_log`` as an external source asset, so the lineage graph starts at the webhooks."""

from __future__ import annotations

import dagster as dg

webhook_log_asset = dg.AssetSpec(
    key=dg.AssetKey(["webhooks", "webhook_log"]),
    description=(
        "Webhooks from Plex, Tautulli, Sonarr, Radarr and Overseerr, written by the webhook API. "
        "Rows that make a library stale start incremental syncs."
    ),
    group_name="webhooks",
    kinds={"sql", "fastapi"},
    metadata={"table": "webhook_log"},
)
