"""Derived assets: recomputed whole from the synced tables whenever an upstream sync lands."""

import dagster as dg

from smartplex.settings import get_settings
from smartplex.sync import recompute_media_catalog, recompute_watch_stats
from smartplex_dagster.defs.library import OWNERS, asset_key
from smartplex_dagster.defs.resources import DatabaseResource

#: Below this share of Plex movies and shows matched to Sonarr/Radarr, the catalog check warns.
MIN_MATCH_RATE = 0.5

#: Recompute once after any upstream materializes (a sync run, incremental or full), unless a
#: recompute is already under way. Not ``eager()``: it also waits until no upstream partition is
#: missing, and a library's syncs only ever materialize its latest weeks; nor until no upstream is
#: in progress, which a steady flow of webhooks never allows. Each recompute reads the tables whole.
RECOMPUTE = dg.AutomationCondition.any_deps_updated().since_last_handled() & ~dg.AutomationCondition.in_progress()


def _libraries(*kinds: str) -> list[dg.AssetKey]:
    """The library assets of every instance of ``kinds``."""
    return [asset_key(i) for i in get_settings().service_instances if i.kind.name in kinds]


@dg.asset(
    key=dg.AssetKey(["derived", "watch_stats"]),
    description="Per item: plays, complete plays, users, last watched and total watch time, from the *whole* "
    "Tautulli history (shows sum their episodes). Table `watch_stats`.",
    group_name="derived",
    deps=_libraries("tautulli"),
    automation_condition=RECOMPUTE,
    kinds={"sql"},
    owners=OWNERS,
)
def watch_stats(database: DatabaseResource) -> dg.MaterializeResult:
    rows = recompute_watch_stats(database.engine)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows})


@dg.asset(
    key=dg.AssetKey(["derived", "media_catalog"]),
    description="Plex movies and shows joined to Sonarr/Radarr by tvdb/tmdb/imdb ids, to the Overseerr request "
    "that asked for them, and to their watch statistics. Table `media_catalog`; every Sonarr and Radarr instance "
    "that has a title (the HD and the 4K one) in `media_catalog_copies`.",
    group_name="derived",
    deps=[*_libraries("plex", "sonarr", "radarr", "overseerr"), watch_stats.key],
    automation_condition=RECOMPUTE,
    kinds={"sql"},
    owners=OWNERS,
    check_specs=[
        dg.AssetCheckSpec(
            "match_rate",
            asset=dg.AssetKey(["derived", "media_catalog"]),
            description=f"Share of Plex movies and shows found in Sonarr or Radarr (warns below {MIN_MATCH_RATE:.0%}).",
        )
    ],
)
def media_catalog(database: DatabaseResource):  # type: ignore[no-untyped-def]
    figures = recompute_media_catalog(database.engine)
    rate = figures["matched"] / figures["rows"] if figures["rows"] else 0.0
    yield dg.MaterializeResult(
        metadata={"dagster/row_count": figures["rows"], "matched": figures["matched"], "match_rate": round(rate, 4)}
    )
    yield dg.AssetCheckResult(
        check_name="match_rate",
        passed=rate >= MIN_MATCH_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"match_rate": round(rate, 4), "matched": figures["matched"], "rows": figures["rows"]},
    )


derived_automation = dg.AutomationConditionSensorDefinition(
    "derived_automation",
    target=[watch_stats, media_catalog],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Recomputes watch statistics and the catalog after their upstream syncs land.",
)
