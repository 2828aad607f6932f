"""What Sonarr and Radarr share: the same API v3, differing only in their resource's name."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import from_iso, in_window, utc_window
from smartplex.clients.models import ArrItem, Deleted, DeletedKind, ServerInfo

Item = TypeVar("Item", bound=ArrItem)


class ArrClient(ServiceClient[Item], Generic[Item]):
    """A Sonarr-style API: an unpaged library array plus paged history."""

    default_page_size = 250
    #: ``series`` or ``movie``: the library endpoint, and the kind of a :class:`Deleted` marker.
    resource: ClassVar[DeletedKind]
    #: History's reference to the resource (``seriesId`` / ``movieId``).
    history_id_field: ClassVar[str]
    #: History's file-removal event (``episodeFileDeleted`` / ``movieFileDeleted``) and its marker kind.
    file_deleted_event: ClassVar[str]
    file_kind: ClassVar[DeletedKind]

    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        return {"X-Api-Key": credential}, {}

    def iter_all(self) -> Iterator[Item]:
        # The API does not page this endpoint; streaming the array keeps memory flat regardless.
        self.stats.pages += 1
        for row in self.http.iter_array(f"/api/v3/{self.resource}"):
            self.stats.items += 1
            yield self._parse(row)

    def iter_changed(self, start: datetime, end: datetime) -> Iterator[Item | Deleted]:
        """Items added in the window or touched by its history; file removals; vanished items.

        Sonarr and Radarr purge an item's history when the item itself is deleted, so a deleted
        series or movie shows up here only if it was touched in the window; the full refresh
        (or the SeriesDelete/MovieDelete webhook) catches the rest.
        """
        start, end = utc_window(start, end)
        touched: set[int] = set()
        for record in self._history_since(start):
            when = from_iso(record["date"])
            if not in_window(when, start, end):
                continue
            item_id = int(record[self.history_id_field])
            touched.add(item_id)
            if record["eventType"] == self.file_deleted_event:
                yield Deleted(self.file_kind, item_id, at=when, path=record.get("sourceTitle"),
                              episode_id=record.get("episodeId"))
        for item in self.iter_all():
            if item.id in touched or in_window(item.added, start, end):
                touched.discard(item.id)
                yield item
        for item_id in sorted(touched):
            yield Deleted(self.resource, item_id)

    @abstractmethod
    def _parse(self, row: dict[str, Any]) -> Item:
        """One element of the library array as a typed item."""

    def server_info(self) -> ServerInfo:
        status = self.http.get_json("/api/v3/system/status")
        size = sum(1 for _ in self.http.iter_array(f"/api/v3/{self.resource}"))
        name = status.get("instanceName") or status.get("appName", "")
        return ServerInfo(self.service, name, status.get("version", ""), size)

    def _history_since(self, start: datetime) -> Iterator[dict[str, Any]]:
        """History newest first, stopping at the first record older than ``start``."""

        def fetch(offset: int) -> tuple[list[dict[str, Any]], int]:
            params: Params = {
                "page": offset // self.page_size + 1,
                "pageSize": self.page_size,
                "sortKey": "date",
                "sortDirection": "descending",
            }
            page = self.http.get_json("/api/v3/history", params)
            return page["records"], int(page["totalRecords"])

        for record in self._paginate(fetch):
            when = from_iso(record["date"])
            if when is not None and when < start:
                return
            yield record
