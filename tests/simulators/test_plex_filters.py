"""Plex time-window filters answer exactly what a scan would, whatever the operator or the sort."""

from __future__ import annotations

import httpx
import pytest

from smartplex_simulators import run_simulators

CASES = [(">>", lambda v, b: v > b), ("<<", lambda v, b: v < b), (">", lambda v, b: v >= b), ("<", lambda v, b: v <= b)]


@pytest.mark.parametrize("sort", ["addedAt:asc", "titleSort"])
def test_window_filters_match_a_scan(sort: str) -> None:
    with run_simulators(size=1500, kinds=["plex"]) as sims:
        episodes = [i for i in sims.universe.plex.values() if i.kind == "episode"]
        added = sorted(e.plex_added for e in episodes)
        middle, later = added[len(added) // 2], added[3 * len(added) // 4]
        headers = {"X-Plex-Token": sims.keys["plex"], "Accept": "application/json"}
        with httpx.Client(base_url=sims.urls["plex"], headers=headers) as client:

            def keys(filters: dict[str, int]) -> set[str]:
                params = {"type": 4, "sort": sort, **filters}
                paging = {"X-Plex-Container-Start": "0", "X-Plex-Container-Size": "100000"}
                body = client.get("/library/sections/2/all", params=params, headers=paging).json()
                return {m["ratingKey"] for m in body["MediaContainer"].get("Metadata", [])}

            for op, test in CASES:
                expected = {str(e.rating_key) for e in episodes if test(e.plex_added, middle)}
                assert keys({f"addedAt{op}": middle}) == expected, op
            window = {str(e.rating_key) for e in episodes if middle <= e.plex_added < later}
            assert window and keys({"addedAt>": middle, "addedAt<<": later}) == window
            # The same window again, after a change: the index follows the universe's revision.
            sims.simulation.add_show(seasons=1, episodes_per_season=2)
            assert keys({"addedAt>": middle, "addedAt<<": later}) == window
