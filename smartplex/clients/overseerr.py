"""Overseerr: media requests, with the ids of what was requested."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import utc_window
from smartplex.clients.models import OverseerrRequest, ServerInfo


class OverseerrClient(ServiceClient[OverseerrRequest]):
    service = "overseerr"
    default_page_size = 100

    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        return {"X-Api-Key": credential}, {}

    def iter_all(self) -> Iterator[OverseerrRequest]:
        return self._requests("added")

    def iter_changed(self, start: datetime, end: datetime) -> Iterator[OverseerrRequest]:
        start, end = utc_window(start, end)
        for request in self._requests("modified"):  # newest change first
            if request.updated_at is None or request.updated_at >= end:
                continue
            if request.updated_at < start:
                return
            yield request

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
