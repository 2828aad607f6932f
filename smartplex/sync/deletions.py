"""Deletions an incremental sync cannot read from the service's history, taken from its webhooks.

Sonarr and Radarr purge an item's history when the item is deleted, so ``/history/since`` never
shows a deleted series or movie. Their ``SeriesDelete`` / ``MovieDelete`` webhooks do: an incremental
sync soft-deletes the ids those webhooks named in its window, once the service confirms (404) that
the item is gone. File deletions need none of this: the item stays, its history records the
deletion, and the refreshed row shows the file gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select

from smartplex.clients import NotFound
from smartplex.schema import webhook_log

#: service -> (deletion event, path to the deleted item's id in its payload)
DELETION_WEBHOOKS: dict[str, tuple[str, tuple[str, str]]] = {
    "sonarr": ("SeriesDelete", ("series", "id")),
    "radarr": ("MovieDelete", ("movie", "id")),
}


def deleted_ids_from_webhooks(engine: Engine, service: str, start: datetime, end: datetime) -> list[int]:
    """Ids that deletion webhooks received in ``[start, end)`` named."""
    if service not in DELETION_WEBHOOKS:
        return []
    event, (outer, inner) = DELETION_WEBHOOKS[service]
    query = select(webhook_log.c.payload).where(
        and_(
            webhook_log.c.source == service,
            webhook_log.c.event_type == event,
            webhook_log.c.received_at >= start,
            webhook_log.c.received_at < end,
        )
    )
    ids: set[int] = set()
    with engine.connect() as connection:
        for (payload,) in connection.execute(query):
            value = (payload.get(outer) or {}).get(inner)
            if isinstance(value, int):
                ids.add(value)
    return sorted(ids)


def confirmed_gone(client: Any, item_ids: list[int]) -> list[int]:
    """The ids the service answers 404 for: a webhook alone never deletes a row."""
    gone = []
    for item_id in item_ids:
        try:
            client.http.get_json(f"/api/v3/{client.resource}/{item_id}")
        except NotFound:
            gone.append(item_id)
    return gone
