"""Time arithmetic in each dialect's SQL: ``seconds_between(a, b)``, the seconds from timestamp ``a``
to ``b``; ``epoch_bucket(ts, n)``, which ``n``-second slot of Unix time ``ts`` falls in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class seconds_between(GenericFunction[float]):  # noqa: N801 - reads as a SQL function
    type = Float()
    inherit_cache = True


@compiles(seconds_between, "postgresql")
def _pg(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "sqlite")
def _sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


class epoch_bucket(GenericFunction[int]):  # noqa: N801 - reads as a SQL function
    """``epoch_bucket(ts, n)``: the Unix seconds of ``ts`` divided by ``n``, rounded down.

    ``n`` is given as ``literal_column``: PostgreSQL matches GROUP BY expressions by their text, and
    a literal is also part of the statement's cache key, where a bound value would not be.
    """

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_bucket, "postgresql")
def _pg_bucket(element: epoch_bucket, compiler: Any, **kw: Any) -> str:
    column, size = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) / {size}) AS BIGINT)"


@compiles(epoch_bucket, "sqlite")
def _sqlite_bucket(element: epoch_bucket, compiler: Any, **kw: Any) -> str:
    column, size = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / {size})"
