"""The lineage opens on three groups, one per layer: the webhooks, the service libraries, what is derived."""

from __future__ import annotations

import dagster as dg

from smartplex.instances import Instance
from smartplex.kinds import KINDS
from smartplex_dagster.definitions import defs
from smartplex_dagster.defs.library import asset_key


def test_one_group_per_layer() -> None:
    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert groups == {
        "webhooks": {"webhooks/webhook_log"},
        "libraries": {asset_key(Instance.parse(s.name)).to_user_string() for s in KINDS},
        "derived": {"derived/watch_stats", "derived/media_catalog"},
    }
    assert dg.AssetKey(["radarr", "movies"]).to_user_string() in groups["libraries"]
