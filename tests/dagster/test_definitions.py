"""Every Dagster definition loads, with no service configured."""

from __future__ import annotations

import dagster as dg

from smartplex_dagster.definitions import defs


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey(["webhooks", "webhook_log"]) in graph.get_all_asset_keys()
