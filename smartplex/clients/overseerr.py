"""Overseerr: media requests, with the ids of what was requested."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import utc_window
from smartplex.clients.errors import NotFound
from smartplex.clients.models import ChangeFeed, Deleted, OverseerrRequest, ServerInfo


class OverseerrClient(ServiceClient[OverseerrRequest]):
    kind = "overseerr"
    default_page_size = 100

    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        return {"X-Api-Key": credential}, {}

    def iter_all(self) -> Iterator[OverseerrRequest]:
        return self._requests("added")

    def iter_changed(
        self, start: datetime, end: datetime, also: Iterable[Any] = ()
    ) -> Iterator[OverseerrRequest | Deleted]:
        start, end = utc_window(start, end)
        seen: set[int] = set()
        for request in self._requests("modified"):  # newest change first
            if request.updated_at is None or request.updated_at >= end:
                continue
            if request.updated_at < start:
                break
            seen.add(request.id)
            yield request
        for request_id in dict.fromkeys(int(i) for i in also):
            if request_id in seen:
                continue
            try:
                data = self.http.get_json(f"/api/v1/request/{request_id}")
            except NotFound:  # deleted in Overseerr since the webhook was sent
                yield Deleted("request", request_id)
                continue
            self.stats.items += 1
            yield OverseerrRequest.from_api(data)

    def changes_since(self, since: datetime, known: Mapping[str, Any] | None = None) -> ChangeFeed:
        """The catch-up's poll: requests by last modification, newest first, paged until one older than
        ``since`` (one request when idle). Its ``pageInfo.results`` counts every request, which finds
        deletions (Overseerr records none)."""
        since = since.astimezone(UTC)
        changed: list[OverseerrRequest] = []
        total = 0
        offset = 0
        while True:
            params: Params = {"take": self.page_size, "skip": offset, "filter": "all", "sort": "modified"}
            page = self.http.get_json("/api/v1/request", params)
            self.stats.pages += 1
            total = int(page["pageInfo"]["results"])
            requests = [OverseerrRequest.from_api(r) for r in page["results"]]
            changed += [r for r in requests if r.updated_at is not None and r.updated_at >= since]
            offset += len(requests)
            if (
                not requests
                or offset >= total
                or any(r.updated_at is not None and r.updated_at < since for r in requests)
            ):
                return ChangeFeed(items=changed, totals={"requests": total})

    def server_info(self) -> ServerInfo:
        status = self.http.get_json("/api/v1/status")
        page = self.http.get_json("/api/v1/request", {"take": 1, "skip": 0, "filter": "all"})
        return ServerInfo("overseerr", "Overseerr", status.get("version", ""), int(page["pageInfo"]["results"]))

    def _requests(self, sort: str) -> Iterator[OverseerrRequest]:
        def fetch(offset: int) -> tuple[list[OverseerrRequest], int]:
            params: Params = {"take": self.page_size, "skip": offset, "filter": "all", "sort": sort}
            page = self.http.get_json("/api/v1/request", params)
            return [OverseerrRequest.from_api(r) for r in page["results"]], int(page["pageInfo"]["results"])

        return self._paginate(fetch)
