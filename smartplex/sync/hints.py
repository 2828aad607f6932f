"""The library items webhooks name, so an incremental sync fetches them by id rather than trusting
timestamps.

A service's clock need not agree with ours, an item's timestamps need not be when its webhook was
sent, and a replayed or delayed webhook may name something older than the sync's window: each item
a webhook names is fetched by its id (a Sonarr series, a Radarr movie, a Plex ratingKey, an Overseerr
request, the plays of a Tautulli ratingKey). The time window still covers what no webhook names.

Sonarr and Radarr also purge an item's history when it is deleted, and write none when an item is
added without a file: the webhook is the only news of those. A 404 marks the item deleted, so a
webhook alone never deletes a row: the service confirms it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, select, tuple_

from smartplex.instances import Instance
from smartplex.kinds import KINDS, ItemReference
from smartplex.routing import routes, stale_libraries
from smartplex.schema import webhook_log
from smartplex.settings import get_settings


def _int_id(value: Any) -> int | None:
    """Sonarr/Radarr send numbers; Overseerr's template sends them as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _key(value: Any) -> str | None:
    """A ratingKey: digits, sent as a string (Plex, Tautulli) or a number."""
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, int | str) else ""
    return text if text.isdigit() else None


_PARSERS: Final[dict[str, Callable[[Any], int | str | None]]] = {"int": _int_id, "key": _key}
#: source -> where its webhooks name an item (``Kind.item``). A payload without the field names
#: nothing (a Tautulli template without ``rating_key``, an Overseerr notification without a request).
ITEM_REFERENCES: Final[dict[str, ItemReference]] = {s.name: s.item for s in KINDS if s.item is not None}
#: Events announcing a deletion: the service not having the item is what they promise.
DELETIONS: Final[frozenset[tuple[str, str]]] = frozenset((s.name, e) for s in KINDS for e in s.deletion_events)


@dataclass(frozen=True)
class NamedItem:
    """One webhook row and the item it names."""

    row_id: uuid.UUID
    source: str
    event_type: str
    item_id: int | str

    @property
    def expects_gone(self) -> bool:
        return (self.source, self.event_type) in DELETIONS

    def note(self, service_title: str) -> str:
        return f"{service_title} has no {ITEM_REFERENCES[self.source].noun} {self.item_id}"


def item_id(source: str, payload: Any) -> int | str | None:
    """The id of the library item a webhook's payload names, or ``None``."""
    reference = ITEM_REFERENCES.get(source)
    if reference is None:
        return None
    value: Any = payload
    for step in reference.path:
        value = value.get(step) if isinstance(value, dict) else None
    return _PARSERS[reference.id_type](value) if value is not None else None


def _routed_events(library: Instance) -> list[tuple[str, str, str]]:
    """The (source, instance, event_type) of the rows that make ``library`` stale."""
    return sorted(
        (sender.kind.name, sender.name, event)
        for sender, event, target in routes(get_settings().service_instances)
        if target == library
    )


def named_items(
    connection: Connection,
    library: Instance,
    *,
    run_key: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> list[NamedItem]:
    """Items named by the rows a webhook run was asked for (``run_key``: rows still dispatched to it),
    or else by every webhook received in ``window`` that makes ``library`` (an instance's) stale (a run
    started by hand over a few partitions)."""
    columns = (
        webhook_log.c.id,
        webhook_log.c.source,
        webhook_log.c.instance,
        webhook_log.c.event_type,
        webhook_log.c.payload,
    )
    if run_key is not None:
        condition = and_(webhook_log.c.run_key == run_key, webhook_log.c.status == "dispatched")
    elif window is not None:
        condition = and_(
            webhook_log.c.received_at >= window[0],
            webhook_log.c.received_at < window[1],
            tuple_(webhook_log.c.source, webhook_log.c.instance, webhook_log.c.event_type).in_(_routed_events(library)),
        )
    else:
        return []
    named = []
    for row_id, source, instance, event_type, payload in connection.execute(select(*columns).where(condition)):
        # The routing decides which library a row concerns; a routing change since the row was
        # claimed must not hand it another library's id.
        if library not in stale_libraries(Instance.of(source, instance), event_type):
            continue
        found = item_id(source, payload)
        if found is not None:
            named.append(NamedItem(row_id, source, event_type, found))
    return named


def ids_of(items: Iterable[NamedItem]) -> list[int | str]:
    """The distinct ids, in a stable order."""
    return sorted({item.item_id for item in items}, key=str)


__all__ = ["DELETIONS", "ITEM_REFERENCES", "NamedItem", "ids_of", "item_id", "named_items"]
