"""Timestamps as the services write them, and the ``[start, end)`` window every sync asks for."""

from __future__ import annotations

from datetime import UTC, datetime


def from_epoch(value: int | str | None) -> datetime | None:
    """Plex and Tautulli epoch seconds (int or string, empty meaning none) as aware UTC."""
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value), UTC)


def from_iso(value: str | None) -> datetime | None:
    """The *arrs' and Overseerr's ISO-8601 UTC strings (``Z``, with or without fractions)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def utc_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Validate an incremental window and return it in UTC; naive datetimes are ambiguous, so refused."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end < start:
        raise ValueError(f"window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return start, end


def in_window(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end
