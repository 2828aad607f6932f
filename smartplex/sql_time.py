"""``seconds_between(a, b)``: the seconds from timestamp ``a`` to ``b``, in each dialect's SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
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
