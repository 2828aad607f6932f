"""The catch-up: what each instance's service changed that no webhook brought, found from the service's
own change feeds and synced through the same upserts as a webhook run.

Webhooks are hints; the services are the truth. Every ``catch_up_state.interval_minutes`` (5 by default)
the catch-up sensor asks each instance's service what changed since its **watermark** (less
:data:`OVERLAP`, for clocks that disagree), through the client's ``changes_since`` (see
``smartplex/clients``), and compares what it lists with the table (:func:`look`). Only items that differ
from their rows are changes, so a change seen twice (by webhook and by catch-up, or in two overlapping
polls) is synced once, and an idle poll writes nothing but ``polled_at``. When a count the service
reports disagrees with the table (a Plex section, Overseerr's requests), only a full refresh can say
what went: the catch-up asks for one.

The watermark moves only when what was found is synced: at once for an idle poll (nothing differs up to
the poll's start), else when its run has written the changes (:func:`finish`, called by the run). A
failed or lost run leaves it where it was (:func:`abandon`), so the next poll looks again from there.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smartplex.clients.models import ChangeFeed, Deleted
from smartplex.instances import Instance
from smartplex.schema import catch_up_found, catch_up_state, plex_libraries, webhook_log
from smartplex.sync.hints import item_id
from smartplex.sync.specs import SPECS, Row, Scope

#: How far before the watermark each poll looks: the services' clocks need not agree with ours.
OVERLAP = timedelta(minutes=2)
#: While a sender's health check says our webhook is disabled, every change comes by catch-up: poll
#: this often instead of the instance's interval.
UNHEALTHY_INTERVAL = timedelta(minutes=1)
#: The windows of the "changes no webhook announced" counts.
WINDOWS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
#: Rows compared per statement.
_KEYS_PER_STATEMENT = 500


def _of(instance: Instance) -> ColumnElement[bool]:
    return and_(catch_up_state.c.service == instance.kind.name, catch_up_state.c.instance == instance.name)


def ensure(connection: Connection, instances: Iterable[Instance]) -> None:
    """A row for every instance that has none yet (the defaults: enabled, every 5 minutes)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    for instance in instances:
        connection.execute(
            dialect.insert(catch_up_state)
            .values(service=instance.kind.name, instance=instance.name)
            .on_conflict_do_nothing()
        )


def read(connection: Connection, instance: Instance) -> dict[str, Any] | None:
    row = connection.execute(select(catch_up_state).where(_of(instance))).mappings().first()
    return dict(row) if row is not None else None


def rows(connection: Connection) -> list[dict[str, Any]]:
    """Every instance's row, each with its instance id as ``library``."""
    result = connection.execute(select(catch_up_state).order_by(catch_up_state.c.service, catch_up_state.c.instance))
    return [{**row, "library": Instance.of(row["service"], row["instance"]).id} for row in result.mappings()]


def is_due(row: dict[str, Any], now: datetime, started_at: datetime) -> bool:
    """Enabled, no run in flight, and its interval gone by since the last poll; or it was last polled
    before this process started (the stack was down: everything sent meanwhile was lost)."""
    if not row["enabled"] or row["run_key"] is not None:
        return False
    polled = row["polled_at"]
    if polled is None or polled < started_at:
        return True
    interval = UNHEALTHY_INTERVAL if row["health"] else timedelta(minutes=row["interval_minutes"])
    return bool(now - polled >= interval)


def waiting_webhooks(connection: Connection, instance: Instance) -> bool:
    """Whether webhooks of this instance wait for a sync: the catch-up leaves their changes to it."""
    query = select(webhook_log.c.id).where(
        webhook_log.c.status.in_(("pending", "dispatched")),
        webhook_log.c.source == instance.kind.name,
        webhook_log.c.instance == instance.name,
    )
    return connection.execute(query.limit(1)).first() is not None


@dataclass
class Finding:
    """What one poll found: the ids to sync (or a full refresh), and the state to keep."""

    instance: Instance
    since: datetime
    until: datetime
    #: The ids the run fetches (beside its window's changes).
    ids: list[int | str] = field(default_factory=list)
    #: How many items differ from their rows.
    changes: int = 0
    full: bool = False
    #: With ``full``: only these Plex sections (their counts disagree), else the whole library.
    sections: list[str] = field(default_factory=list)
    #: Of the changes, those no webhook received since ``since`` named.
    unannounced: int = 0
    fingerprint: dict[str, Any] | None = None
    health: str | None = None
    reason: str = ""

    @property
    def idle(self) -> bool:
        return not self.changes and not self.full


def watermark(connection: Connection, instance: Instance, now: datetime) -> datetime:
    """The instance's watermark; the first time, the last time a sync wrote its table (or now, for an
    empty table: its first full refresh fills it)."""
    row = read(connection, instance)
    if row is not None and row["watermark"] is not None:
        return row["watermark"]  # type: ignore[no-any-return]
    table = SPECS[instance.kind.name].table
    last = connection.execute(select(func.max(table.c.synced_at)).where(table.c.instance == instance.name)).scalar()
    return last or now


def look(engine: Engine, client: Any, instance: Instance, now: datetime) -> Finding:
    """Ask the service what changed since the watermark and compare it with the table. Reads only."""
    with engine.connect() as connection:
        mark = watermark(connection, instance, now)
        state = read(connection, instance) or {}
        since = mark - OVERLAP
        kind = instance.kind.name
        scope = _scope(connection, instance)
        if scope is None:
            # Nothing synced yet: its first full refresh fills the table, and the watermark starts now.
            return Finding(instance, since, now, reason="the table is empty: its first full refresh fills it")
        feed: ChangeFeed = client.changes_since(since, state.get("fingerprint"))

        finding = Finding(instance, since, now, fingerprint=feed.fingerprint)
        finding.health = "; ".join(feed.health) or None
        spec = SPECS[kind]
        if feed.listing is None and feed.fingerprint is not None:  # Sonarr/Radarr: items whose digest changed
            ids = _arr_changes(connection, client, instance, scope, feed)
        elif feed.listing is not None:  # Sonarr/Radarr without item digests yet: the listing against the table
            listed = [spec.to_row(item, scope) for item in feed.listing]
            changed, _ = _differing(connection, instance, scope, listed)
            gone = _live_ids(connection, instance, scope) - {row[spec.key[-1]] for row in listed}
            ids = changed | gone
        else:
            ids, new = _differing(connection, instance, scope, [spec.to_row(item, scope) for item in feed.items])
            disagree = _counts_disagree(connection, instance, scope, feed.totals, new) if feed.totals else set()
            if disagree:
                finding.full, finding.reason = (
                    True,
                    f"the service's counts differ from the table's ({', '.join(sorted(disagree))})",
                )
                if kind == "plex":  # a refresh of those sections only
                    finding.sections = sorted({key.split(":")[0] for key in disagree})
        announce = _announce_ids(kind, feed, ids)
        named = _named_since(connection, instance, since)
        finding.unannounced = len({a for a in announce if a not in named})
        finding.changes = len(ids)
        finding.ids = sorted(_hint_ids(kind, feed, ids, since), key=str)
        return finding


#: Up to this many items whose digest changed are fetched and compared with the table by the poll, so
#: that one the table already holds (a webhook's run synced it) starts no run; more go to the run as they are.
_CHECKED_FETCHES = 50


def _arr_changes(connection: Connection, client: Any, instance: Instance, scope: Scope, feed: ChangeFeed) -> set[Any]:
    """Of the Sonarr/Radarr items whose digest changed (or that history touched), those the table does
    not hold as the service has them: fetched by id, a request each, when they are few."""
    ids = set(feed.ids)
    if len(ids) > _CHECKED_FETCHES:
        return ids
    spec = SPECS[instance.kind.name]
    live = _live_ids(connection, instance, scope)
    fetched = list(client.items_by_id(ids))
    gone = {item.id for item in fetched if isinstance(item, Deleted) and item.id in live}
    changed, _ = _differing(
        connection, instance, scope, [spec.to_row(i, scope) for i in fetched if not isinstance(i, Deleted)]
    )
    return changed | gone


def follows(connection: Connection, instance: Instance) -> bool:
    """Whether the catch-up follows the instance: its table has rows (a first sync has filled it)."""
    return _scope(connection, instance) is not None


def _scope(connection: Connection, instance: Instance) -> Scope | None:
    """What every row of the instance shares (Plex: its server's id), or ``None`` if it has no rows."""
    table = SPECS[instance.kind.name].table
    if instance.kind.name == "plex":
        server = connection.execute(
            select(plex_libraries.c.server_id).where(plex_libraries.c.instance == instance.name).limit(1)
        ).scalar()
        return {"instance": instance.name, "server_id": server} if server is not None else None
    has_rows = connection.execute(select(table.c.instance).where(table.c.instance == instance.name).limit(1)).first()
    return {"instance": instance.name} if has_rows is not None else None


def _scoped(instance: Instance, scope: Scope) -> list[ColumnElement[bool]]:
    table = SPECS[instance.kind.name].table
    return [table.c[k] == v for k, v in scope.items() if k in table.c]


def _differing(
    connection: Connection, instance: Instance, scope: Scope, rows: Sequence[Row]
) -> tuple[set[Any], list[Row]]:
    """The ids (the key's last column) of ``rows`` the table does not hold as they are (new, changed, or
    soft-deleted), and the rows it has no live row for."""
    spec = SPECS[instance.kind.name]
    table, key = spec.table, spec.key[-1]
    by_id = {row[key]: row for row in rows}
    differing: set[Any] = set()
    new: list[Row] = []
    ids = list(by_id)
    for start in range(0, len(ids), _KEYS_PER_STATEMENT):
        chunk = ids[start : start + _KEYS_PER_STATEMENT]
        stored = {
            r[key]: r
            for r in connection.execute(
                select(table).where(table.c[key].in_(chunk), *_scoped(instance, scope))
            ).mappings()
        }
        for item_key in chunk:
            row, have = by_id[item_key], stored.get(item_key)
            if have is None or have["deleted_at"] is not None:
                differing.add(item_key)
                new.append(row)
            elif any(have[c] != v for c, v in row.items()):
                differing.add(item_key)
    return differing, new


def _live_ids(connection: Connection, instance: Instance, scope: Scope) -> set[Any]:
    spec = SPECS[instance.kind.name]
    table = spec.table
    query = select(table.c[spec.key[-1]]).where(table.c.deleted_at.is_(None), *_scoped(instance, scope))
    return set(connection.execute(query).scalars())


def _counts_disagree(
    connection: Connection, instance: Instance, scope: Scope, totals: dict[str, int], new: list[Row]
) -> set[str]:
    """The scopes (``1:movie``, ``requests``) where what the service counts differs from the table's live
    rows plus the ``new`` ones the poll found: something went that no feed records."""
    table = SPECS[instance.kind.name].table
    live = and_(table.c.deleted_at.is_(None), *_scoped(instance, scope))
    if instance.kind.name == "plex":  # per section and type of leaf: "1:movie", "2:episode"
        query = (
            select(table.c.section_id, table.c.type, func.count())
            .where(live, table.c.type.in_(("movie", "episode")))
            .group_by(table.c.section_id, table.c.type)
        )
        counted = Counter({f"{section}:{kind}": n for section, kind, n in connection.execute(query)})
        counted.update(f"{row['section_id']}:{row['type']}" for row in new if row["type"] in ("movie", "episode"))
    else:
        counted = Counter(
            {
                "requests": connection.execute(select(func.count()).select_from(table).where(live)).scalar_one()
                + len(new)
            }
        )
    return {k for k in totals.keys() | counted.keys() if counted.get(k, 0) != totals.get(k, 0)}


def _announce_ids(kind: str, feed: ChangeFeed, ids: set[Any]) -> set[str]:
    """The id a webhook would have named for each change: a Tautulli play's ratingKey, else the item's."""
    if kind == "tautulli":
        return {str(play.rating_key) for play in feed.items if play.row_id in ids}
    return {str(i) for i in ids}


def _hint_ids(kind: str, feed: ChangeFeed, ids: set[Any], since: datetime) -> set[Any]:
    """The ids the run fetches beside its window's changes. A Tautulli play is found by its start, so
    the window has those that started since ``since``; one that started before is fetched by its
    ratingKey (with every other play of that item)."""
    if kind == "tautulli":
        return {str(play.rating_key) for play in feed.items if play.row_id in ids and play.started < since}
    return ids


def _named_since(connection: Connection, instance: Instance, since: datetime) -> set[str]:
    """The ids this instance's webhooks received since ``since`` named."""
    query = select(webhook_log.c.payload).where(
        webhook_log.c.source == instance.kind.name,
        webhook_log.c.instance == instance.name,
        webhook_log.c.received_at >= since,
    )
    named = (item_id(instance.kind.name, payload) for payload in connection.execute(query).scalars())
    return {str(i) for i in named if i is not None}


# --- writing the state --------------------------------------------------------------------------


def record_poll(connection: Connection, finding: Finding, now: datetime, run_key: str | None) -> None:
    """Keep what a poll learnt. Idle: the watermark moves to the poll's start. Else the run's key, the
    ids it syncs and the watermark it moves to once it has."""
    values: dict[str, Any] = {"polled_at": now, "last_error": None}
    values |= _health(connection, finding.instance, finding.health, now)
    if run_key is None:
        values["watermark"] = finding.until
        if finding.fingerprint is not None:
            values["fingerprint"] = finding.fingerprint
    else:
        # The listing's digest, like the watermark, is kept once the run has synced what differs: were
        # the run to fail, the next poll must not find the same listing "unchanged".
        found = {
            "ids": finding.ids,
            "full": finding.full,
            "sections": finding.sections,
            "fingerprint": finding.fingerprint,
        }
        values |= {
            "run_key": run_key,
            "run_until": finding.until,
            "run_ids": found,
            "run_unannounced": finding.unannounced,
        }
    connection.execute(update(catch_up_state).where(_of(finding.instance)).values(**values))


def _health(connection: Connection, instance: Instance, health: str | None, now: datetime) -> dict[str, Any]:
    row = read(connection, instance) or {}
    if health is None:
        return {"health": None, "health_at": None}
    return {"health": health, "health_at": row.get("health_at") if row.get("health") else now}


def change(
    connection: Connection, instance: Instance, *, enabled: bool | None = None, interval_minutes: int | None = None
) -> dict[str, Any]:
    """Turn an instance's catch-up on or off and/or change its interval (the admin page and API)."""
    ensure(connection, [instance])
    values: dict[str, Any] = {}
    if enabled is not None:
        values["enabled"] = enabled
    if interval_minutes is not None:
        values["interval_minutes"] = interval_minutes
    if values:
        connection.execute(update(catch_up_state).where(_of(instance)).values(**values))
    row = read(connection, instance)
    assert row is not None  # ensured above
    return {**row, "library": instance.id}


def poll_soon(connection: Connection) -> int:
    """Make every instance due at the sensor's next tick: the webhook API has just started, and whatever
    the senders posted while it was down is lost."""
    return connection.execute(
        update(catch_up_state).where(catch_up_state.c.run_key.is_(None)).values(polled_at=None)
    ).rowcount


def record_health(connection: Connection, instance: Instance, health: str, now: datetime) -> None:
    """The sender's health check has just said our webhook is disabled: poll it at once."""
    values = _health(connection, instance, health, now)
    connection.execute(update(catch_up_state).where(_of(instance)).values(**values, polled_at=None))


def record_error(connection: Connection, instance: Instance, error: str, now: datetime) -> None:
    """A poll that could not read the service: the watermark stays; the next poll is an interval away."""
    connection.execute(update(catch_up_state).where(_of(instance)).values(polled_at=now, last_error=error))


@dataclass(frozen=True)
class Claimed:
    """What a catch-up run syncs: from ``since``, the ``ids`` its poll found; or everything (``full``), or
    with ``full`` only these Plex ``sections``."""

    since: datetime
    ids: list[int | str]
    full: bool
    sections: list[str] = field(default_factory=list)


def claimed(connection: Connection, instance: Instance, run_key: str) -> Claimed | None:
    row = read(connection, instance)
    if row is None or row["run_key"] != run_key:
        return None
    mark = row["watermark"] or row["run_until"]
    found = row["run_ids"] or {}
    return Claimed(mark - OVERLAP, list(found.get("ids", [])), bool(found.get("full")), list(found.get("sections", [])))


def finish(connection: Connection, instance: Instance, run_key: str, run_id: str, changes: int, now: datetime) -> bool:
    """The run synced what its poll found: move the watermark and count what it found. ``False`` if the
    run is not the one in flight (a retry after another finished it)."""
    row = read(connection, instance)
    if row is None or row["run_key"] != run_key:
        return False
    found = row["run_ids"] or {}
    unannounced = changes if found.get("full") else min(row["run_unannounced"] or 0, changes)
    connection.execute(
        update(catch_up_state)
        .where(_of(instance))
        .values(
            watermark=row["run_until"],
            run_key=None,
            run_until=None,
            run_ids=None,
            run_unannounced=None,
            **({"fingerprint": found["fingerprint"]} if found.get("fingerprint") is not None else {}),
        )
    )
    if changes:
        connection.execute(
            catch_up_found.insert().values(id=uuid.uuid4(), service=instance.kind.name, instance=instance.name,
                                           found_at=now, changes=changes, unannounced=unannounced, run_id=run_id)
        )  # fmt: skip
    return True


def abandon(connection: Connection, instance: Instance, run_key: str, error: str | None) -> None:
    """The run failed or was lost: the watermark stays, and the next poll looks again from there."""
    connection.execute(
        update(catch_up_state)
        .where(_of(instance), catch_up_state.c.run_key == run_key)
        .values(run_key=None, run_until=None, run_ids=None, run_unannounced=None, last_error=error)
    )


def in_flight(connection: Connection) -> list[tuple[Instance, str]]:
    query = select(catch_up_state.c.service, catch_up_state.c.instance, catch_up_state.c.run_key).where(
        catch_up_state.c.run_key.is_not(None)
    )
    return [(Instance.of(s, i), k) for s, i, k in connection.execute(query)]


# --- what the status and the admin page show ------------------------------------------------------


def unannounced_counts(connection: Connection, now: datetime) -> dict[str, dict[str, int]]:
    """Per instance id, the changes the catch-up synced that no webhook announced, over each window."""
    counts: dict[str, dict[str, int]] = {}
    for name, span in WINDOWS.items():
        query = (
            select(catch_up_found.c.service, catch_up_found.c.instance, func.sum(catch_up_found.c.unannounced))
            .where(catch_up_found.c.found_at >= now - span)
            .group_by(catch_up_found.c.service, catch_up_found.c.instance)
        )
        for service, instance, total in connection.execute(query):
            counts.setdefault(Instance.of(service, instance).id, dict.fromkeys(WINDOWS, 0))[name] = int(total or 0)
    return counts


def unhealthy(connection: Connection) -> dict[str, tuple[str, datetime]]:
    """Per instance id, its sender's health message naming our webhook as disabled, and since when."""
    query = select(catch_up_state.c.service, catch_up_state.c.instance, catch_up_state.c.health,
                   catch_up_state.c.health_at).where(catch_up_state.c.health.is_not(None))  # fmt: skip
    return {Instance.of(s, i).id: (h, at) for s, i, h, at in connection.execute(query)}


def purge(connection: Connection, before: datetime) -> int:
    """Forget what catch-ups found before ``before`` (the retention job; the counts need 7 days)."""
    return connection.execute(catch_up_found.delete().where(catch_up_found.c.found_at < before)).rowcount


__all__ = [
    "OVERLAP",
    "Claimed",
    "Finding",
    "abandon",
    "change",
    "claimed",
    "ensure",
    "finish",
    "follows",
    "in_flight",
    "is_due",
    "look",
    "poll_soon",
    "purge",
    "record_error",
    "record_health",
    "record_poll",
    "rows",
    "unannounced_counts",
    "unhealthy",
    "waiting_webhooks",
]
