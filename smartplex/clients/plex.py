"""Plex Media Server: movies, shows and episodes of every video section."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import utc_window
from smartplex.clients.models import PlexItem, ServerInfo

#: Plex type numbers of the items a sync mirrors, per section type (1 movie, 2 show, 4 episode).
_SYNCED_TYPES: dict[str, tuple[int, ...]] = {"movie": (1,), "show": (2, 4)}
#: Timestamps that mark an item as changed; Plex ANDs filters, so each is its own query.
_CHANGE_FIELDS = ("addedAt", "updatedAt", "lastViewedAt")
#: Stable across runs so the server lists one device, not one per sync.
_CLIENT_IDENTIFIER = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/smartplex-sync"))


class PlexClient(ServiceClient[PlexItem]):
    service = "plex"
    default_page_size = 500

    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        headers = {
            "X-Plex-Token": credential,
            "Accept": "application/json",
            "X-Plex-Client-Identifier": _CLIENT_IDENTIFIER,
            "X-Plex-Product": "SmartPlex Sync",
            "X-Plex-Version": "0.1.0",
        }
        return headers, {}

    def machine_identifier(self) -> str:
        """The server's stable id (``/identity``): what keys its items across renames and moves."""
        return str(self.http.get_json("/identity")["MediaContainer"]["machineIdentifier"])

    def sections(self) -> list[dict[str, Any]]:
        """The video sections (movie and show libraries) as Plex describes them."""
        container = self.http.get_json("/library/sections")["MediaContainer"]
        return [d for d in container.get("Directory", ()) if d.get("type") in _SYNCED_TYPES]

    def iter_all(self) -> Iterator[PlexItem]:
        for section, plex_type in self._section_types():
            yield from self._items(section, plex_type, {})

    def iter_changed(self, start: datetime, end: datetime) -> Iterator[PlexItem]:
        start, end = utc_window(start, end)
        # Epochs are whole seconds: t in [start, end) <=> t > ceil(start) - 1 and t < ceil(end).
        after, before = math.ceil(start.timestamp()) - 1, math.ceil(end.timestamp())
        for section, plex_type in self._section_types():
            seen: set[str] = set()  # one window's changes, not the library
            for field in _CHANGE_FIELDS:
                window = {f"{field}>>": after, f"{field}<<": before}
                for item in self._items(section, plex_type, window):
                    if item.rating_key not in seen:
                        seen.add(item.rating_key)
                        yield item

    def server_info(self) -> ServerInfo:
        root = self.http.get_json("/")["MediaContainer"]
        size = sum(
            self._page(section["key"], plex_type, {}, 0, 0)["totalSize"]
            for section, plex_type in self._section_types()
        )
        return ServerInfo("plex", root.get("friendlyName", ""), root.get("version", ""), size)

    def _section_types(self) -> Iterator[tuple[dict[str, Any], int]]:
        for section in self.sections():
            for plex_type in _SYNCED_TYPES[section["type"]]:
                yield section, plex_type

    def _items(self, section: dict[str, Any], plex_type: int, filters: Params) -> Iterator[PlexItem]:
        key = section["key"]

        def fetch(offset: int) -> tuple[list[PlexItem], int]:
            container = self._page(key, plex_type, filters, offset, self.page_size)
            rows = [PlexItem.from_api(m, key) for m in container.get("Metadata", ())]
            total = container.get("totalSize")
            if total is None:  # a server that does not say: a full page means there may be more
                total = offset + len(rows) + (len(rows) == self.page_size)
            return rows, total

        return self._paginate(fetch)

    def _page(self, key: str, plex_type: int, filters: Params, offset: int, size: int) -> dict[str, Any]:
        # Oldest first: items added while a sync pages through land after the cursor, never before it.
        params = {"type": plex_type, "includeGuids": 1, "sort": "addedAt:asc", **filters}
        headers = {"X-Plex-Container-Start": str(offset), "X-Plex-Container-Size": str(size)}
        body = self.http.get_json(f"/library/sections/{key}/all", params, headers)
        container: dict[str, Any] = body["MediaContainer"]
        return container
