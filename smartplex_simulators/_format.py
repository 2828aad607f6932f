"""Dates as each service writes them, from the universe's epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_seconds(epoch: int) -> str:
    """Sonarr/Radarr REST: whole seconds, ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(epoch: int) -> str:
    """Overseerr: milliseconds, ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def iso_ticks(epoch: int) -> str:
    """Sonarr/Radarr webhooks: .NET's seven fractional digits."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def parse_iso(value: str) -> int:
    """An ISO-8601 date or datetime (``Z`` or offset; naive means UTC) as epoch seconds."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
