"""The product database's engine on SQLite: two writers at once wait for each other, neither fails."""

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, func, insert, select

from smartplex.db import make_engine

METADATA = MetaData()
ITEMS = Table("items", METADATA, Column("id", Integer, primary_key=True))
SEEN = Table("seen_items", MetaData(), Column("id", Integer, primary_key=True), prefixes=["TEMPORARY"])


def test_a_transaction_that_reads_before_it_writes_waits_for_another_writer_instead_of_failing(
    tmp_path: Path,
) -> None:
    """A full refresh's batch, as two services' refreshes run side by side in two processes: the batch
    writes a temporary table, reads the synced table, then writes to it, while another
    process writes to the same database file. The other writer waits for the batch's lock; with
    SQLite's deferred ``BEGIN`` it would commit in between and the batch's write would fail at once
    with "database is locked"."""
    path = tmp_path / "smartplex.db"
    url = f"sqlite:///{path}"
    refresh, other = make_engine(url, timeout=10), make_engine(url, timeout=10)
    METADATA.create_all(refresh)
    outcome: list[BaseException | None] = []
    # Set when the other writer sends its first statement that needs the write lock (its BEGIN IMMEDIATE,
    # or with a deferred BEGIN its INSERT): from then on it waits for the lock, or gets in.
    attempting = threading.Event()

    @event.listens_for(other, "connect")
    def trace(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        def sent(statement: str) -> None:
            if statement.upper().startswith(("BEGIN", "INSERT")):
                attempting.set()

        dbapi_connection.set_trace_callback(sent)

    def write_elsewhere() -> None:
        try:
            with other.begin() as connection:
                connection.execute(insert(ITEMS).values(id=2))
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - reported to the test's thread
            outcome.append(error)

    with refresh.connect() as connection:
        with connection.begin():
            SEEN.create(connection)
        with connection.begin():
            connection.execute(insert(SEEN).values(id=1))
            assert connection.scalar(select(func.count()).select_from(ITEMS)) == 0
            # The batch holds the database's write lock from its first write: a writer that does not wait
            # is refused at once.
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
            probe.close()
            writer = threading.Thread(target=write_elsewhere)
            writer.start()
            assert attempting.wait(10), "the other writer never tried to write"
            connection.execute(insert(ITEMS).values(id=1))
            # Still waiting once this transaction has written too: the lock is this transaction's until it ends.
            assert writer.is_alive() and outcome == []
        writer.join(10)
    assert outcome == [None]
    with refresh.connect() as connection:
        assert connection.scalars(select(ITEMS.c.id).order_by(ITEMS.c.id)).all() == [1, 2]
    refresh.dispose()
    other.dispose()


def test_reads_outside_a_write_take_no_lock(tmp_path: Path) -> None:
    """Only writes begin a transaction: a reader never holds up a writer, as WAL promises."""
    url = f"sqlite:///{tmp_path / 'smartplex.db'}"
    reader, writer = make_engine(url, timeout=1), make_engine(url, timeout=1)
    METADATA.create_all(writer)
    with reader.connect() as reading:
        assert reading.scalar(select(func.count()).select_from(ITEMS)) == 0
        with writer.begin() as writing:  # would wait out the 1 s timeout and fail if the reader held a lock
            writing.execute(insert(ITEMS).values(id=1))
        assert reading.scalar(select(func.count()).select_from(ITEMS)) == 1
    reader.dispose()
    writer.dispose()
