"""Rollups of ``webhook_log`` by hour and by day: the status of any window, 30 days or more, from a few
hundred rows rather than a scan of every webhook in it.

A rollup holds, per source (an instance of a service: ``sonarr``, ``sonarr/4k``) and per hour (or day) of ``received_at``, what ``GET /api/webhooks/status``
and the admin page show: rows by status, the newest row, and a histogram of the seconds from received
to settled; and across sources, a histogram for each stage of a webhook's path
(``smartplex.latency.STAGES``). Buckets are ``PER_OCTAVE`` to a doubling
(each about 9% wide), so a percentile read from them is within one bucket of the exact one; a bucket
also keeps the sum of its seconds and answers with their mean, which is exact when its rows agree.

Triggers on webhook_log (migration 010) mark the hour of every row inserted, changed or deleted as
stale, whoever wrote it. A reader first rebuilds stale hours (for at most ``READER_BUDGET`` seconds,
newest first; one process at a time; a backlog, as after the upgrade, is left to
:func:`catch_up_in_background`), then reads rollups for the clean whole hours and days of its window and scans
the rest: hours still stale, the partial hours at its edges, the current hour. So the counts are always
those of a full scan.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    Text,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from smartplex.instances import DEFAULT_INSTANCE, Instance
from smartplex.latency import STAGES, durations
from smartplex.schema import webhook_log, webhook_rollup, webhook_rollup_stale
from smartplex.sql_time import epoch_bucket

log = logging.getLogger(__name__)

HOUR = 3600
DAY = 86400
_HOURS_PER_DAY = DAY // HOUR
#: Histogram buckets: bucket 0 holds up to ``FLOOR_SECONDS``; bucket k > 0 holds
#: (FLOOR_SECONDS * 2**((k-1)/PER_OCTAVE), FLOOR_SECONDS * 2**(k/PER_OCTAVE)].
FLOOR_SECONDS = 0.001
PER_OCTAVE = 8
_SCALE = PER_OCTAVE / math.log(2)
#: The stage a source's own figures keep: received until settled. The stages within it are kept across
#: sources only, under this name in place of a source: the status reports them so, and it makes a
#: rollup a third the size (the merge of a 30-day window is most of its cost).
WHOLE_PATH = "total"
ALL_SOURCES = "*"
#: A row's sender, as the rollups key it: the instance id (``sonarr``, ``sonarr/4k``).
SENDER = case(
    (webhook_log.c.instance == DEFAULT_INSTANCE, webhook_log.c.source),
    else_=webhook_log.c.source + "/" + webhook_log.c.instance,
).label("source")
#: Hours rebuilt per transaction: each a short scan, well within the statement timeout.
CHUNK_HOURS = 6
#: Seconds a reader spends rebuilding stale hours before it answers (it scans what is still stale).
READER_BUDGET = 0.5
BUSY_PATIENCE = 60.0  # seconds an unbounded rebuild waits, at a stretch, while another holds the lock
_BUSY_PAUSE = 0.1
#: PostgreSQL advisory lock held while rebuilding, so two processes never rebuild the same day at once
#: (keyed by the schema too: databases shared by several installs, or tests, do not wait on each other).
_REBUILD_LOCK = 0x5E7B_0010


#: Rollups are read as text and parsed with orjson, several times faster than the driver's ``json``: they
#: hold only what :meth:`Figures.document` wrote (orjson would turn an integer past 64 bits, which a
#: webhook's payload may hold, into a float, so the engines keep ``json``).
_FIGURES_TEXT = cast(webhook_rollup.c.figures, Text)


def bucket_of(seconds: float) -> int:
    """The histogram bucket of ``seconds`` (the SQL in :func:`_bucket_sql` computes the same)."""
    return 0 if seconds <= FLOOR_SECONDS else math.ceil(math.log(seconds / FLOOR_SECONDS) * _SCALE)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The bucket's lower (exclusive) and upper (inclusive) seconds."""
    if bucket <= 0:
        return -math.inf, FLOOR_SECONDS
    return FLOOR_SECONDS * 2 ** ((bucket - 1) / PER_OCTAVE), FLOOR_SECONDS * 2 ** (bucket / PER_OCTAVE)


def _bucket_sql(seconds: ColumnElement[Any]) -> ColumnElement[int]:
    floor: ColumnElement[float] = literal_column(repr(FLOOR_SECONDS))
    # In floating point: PostgreSQL's seconds are numeric, whose ln() is many times slower.
    scaled = func.ln(cast(seconds, Float) / floor) * literal_column(repr(_SCALE))
    return case((seconds <= floor, 0), else_=cast(func.ceil(scaled), Integer))


@dataclass
class Figures:
    """What a stretch of ``webhook_log`` adds up to, for one source."""

    statuses: Counter[str] = field(default_factory=Counter)
    #: stage -> bucket -> (rows, their seconds summed)
    stages: dict[str, dict[int, tuple[int, float]]] = field(default_factory=dict)
    #: The newest row: when it was received, its event type.
    last: tuple[datetime, str] | None = None

    @property
    def received(self) -> int:
        return sum(self.statuses.values())

    def add(self, other: Figures) -> None:
        self.statuses.update(other.statuses)
        for stage, buckets in other.stages.items():
            self._add_cells(stage, buckets.items())
        self._newer(other.last)

    def add_document(self, document: dict[str, Any]) -> None:
        """Add a stored rollup (:meth:`document`) without building its :class:`Figures` first: a
        30-day window merges a few hundred of them."""
        self.statuses.update(document["statuses"])
        for stage, cells in document["stages"].items():
            self._add_cells(stage, ((b, (rows, seconds)) for b, rows, seconds in cells))
        last = document["last"]
        if last is not None:
            self._newer((datetime.fromisoformat(last[0]), last[1]))

    def _add_cells(self, stage: str, cells: Iterable[tuple[int, tuple[int, float]]]) -> None:
        mine = self.stages.setdefault(stage, {})
        for bucket, (rows, seconds) in cells:
            cell = mine.get(bucket)
            mine[bucket] = (rows, seconds) if cell is None else (cell[0] + rows, cell[1] + seconds)

    def _newer(self, last: tuple[datetime, str] | None) -> None:
        if last is not None and (self.last is None or last[0] > self.last[0]):
            self.last = last

    def rows(self, stage: str) -> int:
        return sum(rows for rows, _ in self.stages.get(stage, {}).values())

    def quantile(self, stage: str, q: float) -> float | None:
        """Nearest rank: the mean of the bucket holding the ceil(q * n)-th smallest duration."""
        buckets = self.stages.get(stage, {})
        total = self.rows(stage)
        if not total:
            return None
        rank, seen = max(1, math.ceil(q * total - 1e-9)), 0
        for bucket in sorted(buckets):
            rows, seconds = buckets[bucket]
            seen += rows
            if seen >= rank:
                return seconds / rows
        raise AssertionError("unreachable: the ranks add up to the total")

    def document(self) -> dict[str, Any]:
        return {
            "statuses": dict(self.statuses),
            "stages": {
                stage: [[b, rows, seconds] for b, (rows, seconds) in sorted(cells.items())]
                for stage, cells in self.stages.items()
            },
            "last": None if self.last is None else [self.last[0].isoformat(), self.last[1]],
        }


@dataclass(frozen=True)
class Piece:
    """Figures of one source over a stretch of time that starts at ``start`` (Unix seconds): scanned
    (``figures``) or read from a rollup (``document``)."""

    start: int
    source: str
    figures: Figures | None = None
    document: dict[str, Any] | None = None

    def add_to(self, total: Figures) -> None:
        if self.figures is not None:
            total.add(self.figures)
        elif self.document is not None:
            total.add_document(self.document)

    @property
    def statuses(self) -> dict[str, int]:
        if self.figures is not None:
            return self.figures.statuses
        return self.document["statuses"] if self.document is not None else {}


# --- reading ------------------------------------------------------------------------------------


def window(connection: Connection, since: datetime, now: datetime) -> dict[str, Figures]:
    """Per source (and ``ALL_SOURCES``), the figures of every row received at or after ``since``."""
    merged: dict[str, Figures] = defaultdict(Figures)
    for piece in pieces(connection, since, now):
        piece.add_to(merged[piece.source])
    return merged


def pieces(connection: Connection, since: datetime, now: datetime, *, largest: int = DAY) -> list[Piece]:
    """The rows received at or after ``since``, as pieces no longer than ``largest`` (``HOUR`` or
    ``DAY``) that never overlap: rollups for the clean whole hours (and days) before ``now``'s hour,
    scans for everything else."""
    rebuild(connection.engine, now)
    first = -(-int(since.timestamp()) // HOUR)  # the first whole hour
    current = int(now.timestamp()) // HOUR
    if first >= current:
        return _scanned(connection, [(since, None)])
    stale = set(
        connection.execute(
            select(webhook_rollup_stale.c.hour).where(
                webhook_rollup_stale.c.hour >= first, webhook_rollup_stale.c.hour < current
            )
        ).scalars()
    )
    days = []
    if largest == DAY:
        days = [
            day
            for day in range(-(-first // _HOURS_PER_DAY), current // _HOURS_PER_DAY)
            if not any(hour in stale for hour in _hours_of(day))
        ]
    in_days = {hour for day in days for hour in _hours_of(day)}
    hours = [hour for hour in range(first, current) if hour not in stale and hour not in in_days]
    scans: list[tuple[datetime, datetime | None]] = [(_at(a), _at(b)) for a, b in _runs(sorted(stale))]
    if since < _at(first):
        scans.append((since, _at(first)))
    scans.append((_at(current), None))
    found = _scanned(connection, scans)
    stored = or_(
        and_(webhook_rollup.c.span == DAY, _slot_in(days)),
        and_(webhook_rollup.c.span == HOUR, _slot_in(hours)),
    )
    query = select(webhook_rollup.c.span, webhook_rollup.c.slot, webhook_rollup.c.source, _FIGURES_TEXT)
    for span, slot, source, text in connection.execute(query.where(stored)):
        found.append(Piece(slot * span, source, document=orjson.loads(text)))
    return found


def _scanned(connection: Connection, ranges: list[tuple[datetime, datetime | None]]) -> list[Piece]:
    return [Piece(hour * HOUR, source, figures=f) for (hour, source), f in scan(connection, ranges).items()]


def scan(connection: Connection, ranges: Iterable[tuple[datetime, datetime | None]]) -> dict[tuple[int, str], Figures]:
    """Per hour and source, the figures of the rows received in any of ``ranges`` ([start, end), no end:
    open), straight from ``webhook_log``."""
    received = webhook_log.c.received_at
    where = or_(false(), *(received >= a if b is None else and_(received >= a, received < b) for a, b in ranges))
    hour = epoch_bucket(received, literal_column(str(HOUR))).label("hour")
    found: dict[tuple[int, str], Figures] = defaultdict(Figures)

    rows = select(hour, SENDER, webhook_log.c.status, received).where(where).subquery()
    counted = select(rows.c.hour, rows.c.source, rows.c.status, func.count(), func.max(rows.c.received_at)).group_by(
        rows.c.hour, rows.c.source, rows.c.status
    )
    newest: dict[tuple[int, str], datetime] = {}
    for slot, source, status, count, latest in connection.execute(counted):
        key = (int(slot), source)
        found[key].statuses[status] = int(count)
        newest[key] = max(latest, newest.get(key, latest))
    # The newest row's event type: looked up by its time (indexed), rather than ranking every row.
    pairs = list({(Instance.parse(sender).kind.name, at) for (_, sender), at in newest.items()})
    events: dict[tuple[str, datetime], str] = {}
    for start in range(0, len(pairs), 500):
        lookup = select(
            webhook_log.c.source, webhook_log.c.instance, webhook_log.c.received_at, webhook_log.c.event_type
        ).where(tuple_(webhook_log.c.source, webhook_log.c.received_at).in_(pairs[start : start + 500]))
        for source, instance, at, event_type in connection.execute(lookup):
            events[(Instance.of(source, instance).id, _aware(at))] = event_type
    for key, at in newest.items():
        found[key].last = (_aware(at), events.get((key[1], _aware(at)), ""))

    timed = durations(where, STAGES, hour, SENDER)
    bucketed = select(
        timed.c.hour, timed.c.source, timed.c.stage, _bucket_sql(timed.c.seconds).label("bucket"), timed.c.seconds
    ).subquery()
    query = select(
        bucketed.c.hour,
        bucketed.c.source,
        bucketed.c.stage,
        bucketed.c.bucket,
        func.count(),
        func.sum(bucketed.c.seconds),
    ).group_by(bucketed.c.hour, bucketed.c.source, bucketed.c.stage, bucketed.c.bucket)
    for slot, source, stage, bucket, count, seconds in connection.execute(query):
        # The whole path per source; the stages within it across sources (see ALL_SOURCES).
        key = (int(slot), source if stage == WHOLE_PATH else ALL_SOURCES)
        cells = found[key].stages.setdefault(stage, {})
        before = cells.get(int(bucket), (0, 0.0))
        cells[int(bucket)] = (before[0] + int(count), before[1] + float(seconds))
    return found


# --- rebuilding ---------------------------------------------------------------------------------


def rebuild(engine: Engine, now: datetime, *, budget: float | None = READER_BUDGET, limit: int | None = None) -> int:
    """Rebuild stale hours before ``now``'s hour, newest first, and the days they are in:
    ``CHUNK_HOURS`` per transaction, until none is left, ``budget`` seconds have passed or ``limit``
    hours are done (``None``: no bound). Returns how many hours were rebuilt. When another rebuild is
    at it or the database is busy, a bounded rebuild stops (readers scan what is stale, so rebuilding
    only makes them faster) and an unbounded one waits for its turn."""
    current = int(now.timestamp()) // HOUR
    began, done, busy_since = time.monotonic(), 0, None
    _compact_marks(engine)
    while limit is None or done < limit:
        if budget is not None and time.monotonic() - began >= budget:
            break
        size = CHUNK_HOURS if limit is None else min(CHUNK_HOURS, limit - done)
        rebuilt = _rebuild_chunk(engine, current, size)
        if rebuilt is None:
            break  # nothing stale is left
        if rebuilt == _BUSY:
            # A reader gives up at once: it scans what is stale. An unbounded rebuild waits its turn
            # (readers rebuild in short bursts), up to BUSY_PATIENCE at a stretch.
            busy_since = busy_since or time.monotonic()
            if budget is not None or time.monotonic() - busy_since > BUSY_PATIENCE:
                break
            time.sleep(_BUSY_PAUSE)
            continue
        busy_since = None
        done += rebuilt
    return done


def _lock(connection: Connection) -> bool:
    """Whether this transaction may rebuild (on PostgreSQL, nobody else is at it); held until it ends."""
    if connection.dialect.name != "postgresql":
        return True  # SQLite: the rebuild's first write takes the database's one write lock
    key = func.pg_try_advisory_xact_lock(func.hashtext(func.current_schema()), _REBUILD_LOCK)
    return bool(connection.scalar(select(key)))


def _compact_marks(engine: Engine) -> None:
    """Keep one mark per stale hour. On PostgreSQL every transaction marks the hours it touched (the
    current one above all) with a row of its own: without this, a day of webhooks would leave a row per
    commit. Under the rebuild's lock, so that no rebuild is between taking an hour's marks and storing it."""
    if engine.dialect.name != "postgresql":
        return
    marks = webhook_rollup_stale.alias("kept")
    first = select(func.min(marks.c.writer)).where(marks.c.hour == webhook_rollup_stale.c.hour).scalar_subquery()
    try:
        with engine.begin() as connection:
            if _lock(connection):
                connection.execute(delete(webhook_rollup_stale).where(webhook_rollup_stale.c.writer != first))
    except OperationalError as exc:
        log.info("webhook rollup marks not compacted now (%s)", type(exc.orig).__name__)


_BUSY = -1  # another rebuild holds the lock, or the database is busy


def _rebuild_chunk(engine: Engine, current: int, size: int) -> int | None:
    """Rebuild up to ``size`` of the newest stale hours: how many were rebuilt (0 when another rebuild
    took them first), ``_BUSY``, or ``None`` when none is stale."""
    try:
        with engine.connect() as connection:
            hours = list(
                connection.execute(
                    select(webhook_rollup_stale.c.hour)
                    .distinct()
                    .where(webhook_rollup_stale.c.hour < current)
                    .order_by(webhook_rollup_stale.c.hour.desc())
                    .limit(size)
                ).scalars()
            )
        if not hours:
            return None
        with engine.begin() as connection:
            if not _lock(connection):
                return _BUSY
            # The marks this statement sees are taken off before the scan. A change it cannot see yet
            # (uncommitted) keeps its own mark, so its hour is rebuilt again, whether or not the scan
            # below saw the change.
            taken = sorted(
                set(
                    connection.execute(
                        delete(webhook_rollup_stale)
                        .where(webhook_rollup_stale.c.hour.in_(hours))
                        .returning(webhook_rollup_stale.c.hour)
                    ).scalars()
                )
            )
            if taken:
                _store(connection, HOUR, taken, scan(connection, [(_at(a), _at(b)) for a, b in _runs(taken)]))
                _rebuild_days(connection, sorted({hour // _HOURS_PER_DAY for hour in taken}))
            return len(taken)
    except OperationalError as exc:
        log.info("webhook rollups not rebuilt now (%s); the stale hours are scanned", type(exc.orig).__name__)
        return _BUSY


_catching_up: set[str] = set()
_catching_up_lock = threading.Lock()


def catch_up_in_background(engine: Engine) -> bool:
    """Rebuild every stale hour in a thread of this process, unless one is at it already: after an
    upgrade (every existing hour starts stale) or a purge of old rows. Returns whether it started."""
    key = engine.url.render_as_string()
    with _catching_up_lock:
        if key in _catching_up:
            return False
        _catching_up.add(key)

    def work() -> None:
        try:
            rebuilt = rebuild(engine, datetime.now(UTC), budget=None)
            log.info("webhook rollups: %d stale hours rebuilt in the background", rebuilt)
        except SQLAlchemyError as exc:  # readers scan what is left, and start another catch-up
            log.warning("webhook rollups: catching up stopped: %s", exc)
        finally:
            with _catching_up_lock:
                _catching_up.discard(key)

    threading.Thread(target=work, name="webhook-rollups", daemon=True).start()
    return True


def stale_before(connection: Connection, now: datetime) -> int:
    """How many hours before ``now``'s are stale."""
    current = int(now.timestamp()) // HOUR
    query = select(func.count(webhook_rollup_stale.c.hour.distinct())).where(webhook_rollup_stale.c.hour < current)
    return int(connection.scalar(query) or 0)


def _rebuild_days(connection: Connection, days: list[int]) -> None:
    """A day's rollup is the sum of its hours'."""
    merged: dict[tuple[int, str], Figures] = defaultdict(Figures)
    hours = [hour for day in days for hour in _hours_of(day)]
    query = select(webhook_rollup.c.slot, webhook_rollup.c.source, _FIGURES_TEXT).where(
        webhook_rollup.c.span == HOUR, _slot_in(hours)
    )
    for slot, source, text in connection.execute(query):
        merged[(slot // _HOURS_PER_DAY, source)].add_document(orjson.loads(text))
    _store(connection, DAY, days, merged)


def _store(connection: Connection, span: int, slots: list[int], figures: dict[tuple[int, str], Figures]) -> None:
    connection.execute(delete(webhook_rollup).where(webhook_rollup.c.span == span, _slot_in(slots)))
    rows = [
        {"span": span, "slot": slot, "source": source, "figures": f.document()} for (slot, source), f in figures.items()
    ]
    if rows:
        connection.execute(insert(webhook_rollup), rows)


# --- hours as numbers ---------------------------------------------------------------------------


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR, UTC)


def _aware(value: datetime) -> datetime:
    """SQLite gives the text of a timestamp back as naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hours_of(day: int) -> range:
    return range(day * _HOURS_PER_DAY, (day + 1) * _HOURS_PER_DAY)


def _runs(slots: list[int]) -> Iterator[tuple[int, int]]:
    """Sorted slots as [start, end) runs of consecutive numbers."""
    start = previous = None
    for slot in slots:
        if start is None or previous is None:
            start = previous = slot
        elif slot == previous + 1:
            previous = slot
        else:
            yield start, previous + 1
            start = previous = slot
    if start is not None and previous is not None:
        yield start, previous + 1


def _slot_in(slots: list[int]) -> ColumnElement[bool]:
    slot = webhook_rollup.c.slot
    return or_(false(), *(and_(slot >= a, slot < b) for a, b in _runs(slots)))


__all__ = [
    "ALL_SOURCES",
    "DAY",
    "HOUR",
    "WHOLE_PATH",
    "Figures",
    "Piece",
    "bucket_bounds",
    "bucket_of",
    "pieces",
    "rebuild",
    "scan",
    "window",
]
