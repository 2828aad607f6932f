"""Items an incremental Sonarr/Radarr sync learns about from webhooks rather than from history.

Sonarr and Radarr purge an item's history when the item is deleted, and write none when an item is
added without a file. Their webhooks name those items (``SeriesDelete``, ``MovieAdded``, ...): an
incremental sync fetches every id the window's webhooks named, beside the ids its history names. A
404 then marks the item deleted, so a webhook alone never deletes a row: the service confirms it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, select

from smartplex.routing import STALE_LIBRARIES
from smartplex.schema import webhook_log

#: service -> where its webhooks put the id of the library item they concern.
WEBHOOK_ITEM_ID: dict[str, tuple[str, str]] = {"sonarr": ("series", "id"), "radarr": ("movie", "id")}


def ids_from_webhooks(engine: Engine, service: str, start: datetime, end: datetime) -> list[int]:
    """Library ids that webhooks received in ``[start, end)`` named, for events that make it stale."""
    if service not in WEBHOOK_ITEM_ID:
        return []
    outer, inner = WEBHOOK_ITEM_ID[service]
    events = [event for event, services in STALE_LIBRARIES[service].items() if service in services]
    query = select(webhook_log.c.payload).where(
        and_(
            webhook_log.c.source == service,
            webhook_log.c.event_type.in_(events),
            webhook_log.c.received_at >= start,
            webhook_log.c.received_at < end,
        )
    )
    ids: set[int] = set()
    with engine.connect() as connection:
        for (payload,) in connection.execute(query):
            item = payload.get(outer)
            value = item.get(inner) if isinstance(item, dict) else None
            # A payload that does not look like the service's (a hand-made test, say) is no hint.
            if isinstance(value, int) and not isinstance(value, bool):
                ids.add(value)
    return sorted(ids)
