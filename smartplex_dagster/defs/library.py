"""The asset factory: one weekly-partitioned library asset (and its checks) per instance, from its kind's
sync spec: ``sonarr/series`` for the default Sonarr, ``sonarr_4k/series`` for ``sonarr/4k``."""

import warnings
from datetime import datetime, timedelta

import dagster as dg
from dagster import AssetExecutionContext
from sqlalchemy import and_, func, select

from smartplex import catch_up, webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import (
    CATCH_UP_TRIGGER,
    DATABASE_RESOURCE,
    RUN_KEY_TAG,
    TRIGGER_TAG,
    WEBHOOK_TRIGGER,
    instance_tags,
    pool,
    resource_key,
)
from smartplex.instances import Instance
from smartplex.settings import get_settings
from smartplex.sync import SPECS, SyncSpec, run_sync
from smartplex.sync.hints import NamedItem, ids_of, named_items
from smartplex_dagster.defs.partitions import PARTITIONS, fetch_window, is_full_refresh
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.webhook_log import webhook_log_asset
from smartplex_dagster.runtime.orphans import record_worker

OWNERS = ["team:smartplex"]


def asset_key(instance: Instance) -> dg.AssetKey:
    """The library asset of an instance: ``sonarr/series``, ``sonarr_4k/series``."""
    return dg.AssetKey(instance.library_asset.split("/"))


def library_asset(instance: Instance) -> dg.AssetsDefinition:
    spec = SPECS[instance.kind.name]
    key = asset_key(instance)
    natural_ids = instance.kind.natural_ids
    checks = [
        # Catches duplicates the primary key cannot: the same media twice under different keys.
        dg.AssetCheckSpec("no_duplicate_ids", asset=key, description=f"No two live rows share {natural_ids}."),
        dg.AssetCheckSpec("has_rows", asset=key, description="The table is not empty after the sync."),
    ]

    # single_run() is still marked beta; said once here rather than in every run's log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)

        # A multi-asset of one asset, for can_subset: a webhook run syncs a few rows and leaves the
        # checks out (they read the whole table, and store four events and two rows a run); a full
        # refresh, which rebuilds the table, runs them.
        @dg.multi_asset(
            name=key.to_python_identifier(),  # the step key an @asset would have: plex__library_items
            specs=[
                dg.AssetSpec(
                    key,
                    description=f"{instance.title}: {spec.description} Table `{spec.table.name}`; a run over every partition is the full refresh.",
                    group_name="libraries",  # one group per layer: webhooks, libraries, derived
                    deps=[webhook_log_asset.key],
                    partitions_def=PARTITIONS,
                    kinds={instance.kind.name, "sql"},
                    owners=OWNERS,
                    freshness_policy=dg.FreshnessPolicy.time_window(
                        fail_window=timedelta(hours=get_settings().freshness_hours)
                    ),
                    tags=instance_tags(instance),
                    metadata={
                        "table": spec.table.name,
                        "key": ", ".join(spec.table_key),
                        "service": instance.title,
                        "instance": instance.id,
                    },
                )
            ],
            check_specs=checks,
            can_subset=True,
            backfill_policy=dg.BackfillPolicy.single_run(),
            retry_policy=dg.RetryPolicy(max_retries=1, delay=2),  # the clients retry first; this covers the rest
            required_resource_keys={resource_key(instance), DATABASE_RESOURCE},
            pool=pool(instance),
        )
        def sync(context: AssetExecutionContext):  # type: ignore[no-untyped-def]
            # Where this run's worker process runs, so the reconciling passes can tell if it dies mid-sync.
            try:
                record_worker(context.instance, context.run.run_id)
            except Exception as error:  # noqa: BLE001 - the sync does not depend on it
                context.log.warning("could not record the run's worker process: %s", error)
            database: DatabaseResource = context.resources.database
            full = is_full_refresh(context.run.tags, context.partition_key_range)
            window = None if full else fetch_window(context.run.tags, context.partition_time_window)
            if window is None:
                context.log.info("%s full refresh", instance.title)
            else:
                context.log.info("%s incremental sync of %s .. %s", instance.title, *window)
            catching_up = context.run.tags.get(TRIGGER_TAG) == CATCH_UP_TRIGGER
            named = [] if window is None or catching_up else _named_items(context, database, instance, window)
            claim = _catch_up_claim(context, database, instance) if catching_up else None
            hints = ids_of(named) if claim is None else claim.ids
            # A catch-up's refresh of the Plex sections whose counts disagreed, not of the whole library.
            parts = [{"section_id": s} for s in claim.sections] if claim is not None and window is None else []
            with getattr(context.resources, resource_key(instance)).client() as client:
                result = run_sync(
                    database.engine, client, spec, window, hinted_ids=hints, instance=instance, parts=parts
                )
            _report_missing(context, database, named, result.not_found, instance.title)
            if catching_up:
                _finish_catch_up(
                    context, database, instance, result.counts.inserted + result.counts.updated + result.deleted
                )
            yield dg.MaterializeResult(asset_key=key, metadata=result.metadata())
            selected = {check.name for check in context.selected_asset_check_keys}
            yield from _checks(database, spec, instance, result.row_count, selected)

    return sync


def _named_items(
    context: AssetExecutionContext, database: DatabaseResource, library: Instance, window: tuple[datetime, datetime]
) -> list[NamedItem]:
    """What this run's webhooks name; a run started by hand takes what the window's webhooks name."""
    run_key = context.run.tags.get(RUN_KEY_TAG) if context.run.tags.get(TRIGGER_TAG) == WEBHOOK_TRIGGER else None
    with database.engine.connect() as connection:
        return named_items(connection, library, run_key=run_key, window=window)


def _catch_up_claim(
    context: AssetExecutionContext, database: DatabaseResource, library: Instance
) -> catch_up.Claimed | None:
    """What the catch-up's poll found: the ids changed (its window's changes are read beside them), or
    the Plex sections to refresh."""
    with database.engine.connect() as connection:
        claim = catch_up.claimed(connection, library, context.run.tags.get(RUN_KEY_TAG, ""))
    if claim is None:
        context.log.warning("%s: this catch-up is no longer the one in flight; syncing its window only", library.id)
        return None
    what = f"sections {', '.join(claim.sections)}" if claim.sections else f"{len(claim.ids)} changed items"
    context.log.info("%s catch-up of %s since %s", library.id, what, claim.since.isoformat())
    return claim


def _finish_catch_up(
    context: AssetExecutionContext, database: DatabaseResource, library: Instance, changes: int
) -> None:
    """What the poll found is synced: the watermark moves past it."""
    with database.engine.begin() as connection:
        catch_up.finish(
            connection, library, context.run.tags.get(RUN_KEY_TAG, ""), context.run.run_id, changes, utcnow()
        )


def _report_missing(
    context: AssetExecutionContext, database: DatabaseResource, named: list[NamedItem], not_found: set[str], title: str
) -> None:
    """Rows whose named item the service does not have are finished as ``missing``, with a note; a
    deletion webhook whose item is gone got what it announced."""
    notes = {n.row_id: n.note(title) for n in named if str(n.item_id) in not_found and not n.expects_gone}
    if not notes:
        return
    with database.engine.begin() as connection:
        webhook_queue.mark_missing(connection, notes, context.run.run_id, utcnow())
    context.log.warning(
        "%d webhooks named items %s does not have: %s", len(notes), title, "; ".join(sorted(set(notes.values()))[:10])
    )


def _checks(database: DatabaseResource, spec: SyncSpec, instance: Instance, row_count: int, selected: set[str]):  # type: ignore[no-untyped-def]
    """The results of the ``selected`` checks."""
    if "no_duplicate_ids" in selected:
        yield _no_duplicate_ids(database, spec, instance)
    if "has_rows" in selected:
        yield dg.AssetCheckResult(
            asset_key=asset_key(instance),
            check_name="has_rows",
            passed=row_count > 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": row_count},
        )


def _no_duplicate_ids(database: DatabaseResource, spec: SyncSpec, instance: Instance) -> dg.AssetCheckResult:
    table = spec.table
    natural = [table.c[c] for c in instance.kind.natural_ids]
    duplicates = (
        select(*natural, func.count().label("n"))
        .where(
            and_(
                table.c.deleted_at.is_(None),
                table.c.instance == instance.name,
                *(c.is_not(None) for c in natural),
            )
        )
        .group_by(*natural)
        .having(func.count() > 1)
        .subquery()
    )
    with database.engine.connect() as connection:
        duplicated = connection.execute(select(func.count()).select_from(duplicates)).scalar_one()
    return dg.AssetCheckResult(
        asset_key=asset_key(instance),
        check_name="no_duplicate_ids",
        passed=duplicated == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"duplicated_ids": duplicated},
    )
