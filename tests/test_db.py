"""The product database's engine on SQLite: two writers at once wait for each other, neither fails."""

import threading
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

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
    url = f"sqlite:///{tmp_path / 'smartplex.db'}"
    refresh, other = make_engine(url, timeout=10), make_engine(url, timeout=10)
    METADATA.create_all(refresh)
    outcome: list[BaseException | None] = []

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
            writer = threading.Thread(target=write_elsewhere)
            writer.start()
            writer.join(0.5)
            assert writer.is_alive() and outcome == []  # waiting for this transaction's lock
            connection.execute(insert(ITEMS).values(id=1))
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
