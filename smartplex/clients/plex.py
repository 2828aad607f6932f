"""Plex Media Server: movies, shows and episodes of every video section."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import utc_window
from smartplex.clients.errors import NotFound
from smartplex.clients.models import ChangeFeed, Deleted, PlexItem, ServerInfo

#: Plex type numbers of the items a sync mirrors, per section type (1 movie, 2 show, 4 episode).
_SYNCED_TYPES: dict[str, tuple[int, ...]] = {"movie": (1,), "show": (2, 4)}
#: Plex types a sync mirrors (a season is read only to reach its show and episodes).
_ITEM_TYPES = ("movie", "show", "episode")
#: ratingKeys asked for in one ``/library/metadata`` request.
_METADATA_CHUNK = 100
#: Timestamps that mark an item as changed; Plex ANDs filters, so each is its own query.
_CHANGE_FIELDS = ("addedAt", "updatedAt", "lastViewedAt")
#: The type a section's count check and change feed read: its leaves (a new show arrives with episodes).
_LEAF_TYPES: dict[str, tuple[int, str]] = {"movie": (1, "movie"), "show": (4, "episode")}
#: Items read per page by the catch-up's look at the most recently viewed.
_RECENTLY_VIEWED_PAGE = 20
#: Stable across runs so the server lists one device, not one per sync.
_CLIENT_IDENTIFIER = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/smartplex-sync"))


class PlexClient(ServiceClient[PlexItem]):
    kind = "plex"
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

    def iter_part(self, part: Mapping[str, Any]) -> Iterator[PlexItem]:
        """Every item of one section (``{"section_id": "1"}``): a refresh of that section alone."""
        for section, plex_type in self._section_types():
            if str(section["key"]) == str(part["section_id"]):
                yield from self._items(section, plex_type, {})

    def iter_changed(self, start: datetime, end: datetime, also: Iterable[Any] = ()) -> Iterator[PlexItem | Deleted]:
        start, end = utc_window(start, end)
        # Epochs are whole seconds: t in [start, end) <=> t > ceil(start) - 1 and t < ceil(end).
        after, before = math.ceil(start.timestamp()) - 1, math.ceil(end.timestamp())
        seen: set[str] = set()  # one window's changes, not the library
        for section, plex_type in self._section_types():
            for field in _CHANGE_FIELDS:
                window = {f"{field}>>": after, f"{field}<<": before}
                for item in self._items(section, plex_type, window):
                    if item.rating_key not in seen:
                        seen.add(item.rating_key)
                        yield item
        yield from self._named([str(key) for key in also], seen)

    def changes_since(self, since: datetime, known: Mapping[str, Any] | None = None) -> ChangeFeed:
        """The catch-up's poll: per video section, two requests on its leaves (movies, episodes). One
        lists what was added or edited since ``since`` (``updatedAt>>=``: Plex sets updatedAt when it
        adds an item too); the other lists the most recently viewed, newest first, until one was viewed
        before ``since`` (plays, which Plex does not always announce), and its ``totalSize`` is the
        section's count, which finds removals (Plex records none)."""
        after = math.ceil(since.timestamp()) - 1
        items: dict[str, PlexItem] = {}
        totals: dict[str, int] = {}
        for section in self.sections():
            plex_type, type_name = _LEAF_TYPES[section["type"]]
            for item in self._items(section, plex_type, {"updatedAt>>": after}):
                items[item.rating_key] = item
            offset = 0
            while True:
                container = self._page(
                    section["key"], plex_type, {"sort": "lastViewedAt:desc"}, offset, _RECENTLY_VIEWED_PAGE
                )
                self.stats.pages += 1
                totals[f"{section['key']}:{type_name}"] = int(container.get("totalSize", 0))
                page = [PlexItem.from_api(m, section["key"]) for m in container.get("Metadata", ())]
                viewed = [i for i in page if i.last_viewed_at is not None and i.last_viewed_at.timestamp() > after]
                for item in viewed:
                    items.setdefault(item.rating_key, item)
                if len(viewed) < len(page) or len(page) < _RECENTLY_VIEWED_PAGE:
                    break
                offset += len(page)
        return ChangeFeed(items=list(items.values()), totals=totals)

    def _named(self, keys: list[str], seen: set[str]) -> Iterator[PlexItem | Deleted]:
        """Items by ratingKey, with what a sync needs around them: an episode's show, and a show's
        (or season's) episodes. A key the server does not return is :class:`Deleted`."""
        shows: set[str] = set()
        for item in self._metadata([k for k in dict.fromkeys(keys) if k not in seen], missing_deleted=True):
            if isinstance(item, Deleted):
                yield item
                continue
            if item.type == "episode" and item.grandparent_rating_key:
                shows.add(str(item.grandparent_rating_key))
            elif item.type == "show":
                shows.add(item.rating_key)
            elif item.type == "season" and item.parent_rating_key:
                shows.add(str(item.parent_rating_key))
            if item.type in _ITEM_TYPES and item.rating_key not in seen:
                seen.add(item.rating_key)
                yield item
        for item in self._metadata([k for k in sorted(shows) if k not in seen], missing_deleted=False):
            if isinstance(item, PlexItem):
                seen.add(item.rating_key)
                yield item
        for show in sorted(shows):
            for episode in self._leaves(show):
                if episode.rating_key not in seen:
                    seen.add(episode.rating_key)
                    yield episode

    def _metadata(self, keys: list[str], *, missing_deleted: bool) -> Iterator[PlexItem | Deleted]:
        """``/library/metadata/{k1,k2,...}`` in chunks: the server answers with the ones it has."""
        for start in range(0, len(keys), _METADATA_CHUNK):
            chunk = keys[start : start + _METADATA_CHUNK]
            try:
                container = self.http.get_json(f"/library/metadata/{','.join(chunk)}", {"includeGuids": 1})
            except NotFound:
                container = {"MediaContainer": {}}
            self.stats.pages += 1
            found = container["MediaContainer"].get("Metadata", ())
            section = str(container["MediaContainer"].get("librarySectionID", ""))
            returned = set()
            for data in found:
                item = PlexItem.from_api(data, section)
                returned.add(item.rating_key)
                self.stats.items += 1
                yield item
            if missing_deleted:
                for key in chunk:
                    if key not in returned:
                        yield Deleted("plexItem", key)

    def _leaves(self, show: str) -> Iterator[PlexItem]:
        def fetch(offset: int) -> tuple[list[PlexItem], int]:
            headers = {"X-Plex-Container-Start": str(offset), "X-Plex-Container-Size": str(self.page_size)}
            try:
                body = self.http.get_json(f"/library/metadata/{show}/allLeaves", {"includeGuids": 1}, headers)
            except NotFound:  # the show went away since it was read
                return [], 0
            container = body["MediaContainer"]
            section = str(container.get("librarySectionID", ""))
            rows = [PlexItem.from_api(m, section) for m in container.get("Metadata", ())]
            return rows, int(container.get("totalSize", offset + len(rows)))

        return self._paginate(fetch)

    def server_info(self) -> ServerInfo:
        root = self.http.get_json("/")["MediaContainer"]
        size = sum(
            self._page(section["key"], plex_type, {}, 0, 0)["totalSize"] for section, plex_type in self._section_types()
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
