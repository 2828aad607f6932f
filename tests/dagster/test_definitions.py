"""Every Dagster definition loads, with no service configured."""

from __future__ import annotations

import dagster as dg

from smartplex_dagster.definitions import defs


def test_definitions_load() -> None:
    # Loading reads Dagster's definitions state from the current instance: give it a live one (a
    # sensor evaluated in-process by an earlier test can leave a closed one behind).
    with dg.instance_for_test():
        dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey(["webhooks", "webhook_log"]) in graph.get_all_asset_keys()


LIBRARY = ("libraries", ["webhooks/webhook_log"], "weekly", ["has_rows", "no_duplicate_ids"])
#: The asset graph as the Dagster UI draws it, written out: a change to the lineage is a reviewed change.
#: key -> (group, upstream keys, partitions, checks); library assets also run in pool smartplex_<service>.
GRAPH = {
    "webhooks/webhook_log": ("webhooks", [], None, []),
    "plex/library_items": LIBRARY,
    "tautulli/watch_history": LIBRARY,
    "sonarr/series": LIBRARY,
    "radarr/movies": LIBRARY,
    "overseerr/requests": LIBRARY,
    "derived/watch_stats": ("derived", ["tautulli/watch_history"], None, []),
    "derived/media_catalog": (
        "derived",
        ["derived/watch_stats", "overseerr/requests", "plex/library_items", "radarr/movies", "sonarr/series"],
        None,
        ["match_rate"],
    ),
}


def test_the_asset_graph_is_the_reviewed_one() -> None:
    graph = defs.resolve_asset_graph()
    found = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        partitions = node.partitions_def
        found[key.to_user_string()] = (
            node.group_name,
            sorted(parent.to_user_string() for parent in node.parent_keys),
            "weekly" if isinstance(partitions, dg.WeeklyPartitionsDefinition) else partitions,
            sorted(check.name for check in node.check_keys),
        )
        if found[key.to_user_string()][0] == "libraries":
            assert node.pools == {f"smartplex_{key.path[0]}"}, key
    assert found == GRAPH
