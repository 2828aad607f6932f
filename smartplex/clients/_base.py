"""What every service client shares: construction, the sync contract, and offset paging."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

import httpx

from smartplex.clients._http import FetchStats, HttpSession, Params, RetryPolicy
from smartplex.clients.models import ChangeFeed, Deleted, Missing, ServerInfo
from smartplex.instances import Instance
from smartplex.kinds import get_kind

Item = TypeVar("Item")


class ServiceClient(ABC, Generic[Item]):
    """One service's API. Subclasses say how to authenticate and implement the three reads."""

    #: The kind of service it speaks to (``sonarr``).
    kind: ClassVar[str]
    #: Items asked for per page; subclasses pick what suits their API.
    default_page_size: ClassVar[int] = 200

    def __init__(
        self,
        url: str,
        credential: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        page_size: int | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        instance: Instance | None = None,
    ) -> None:
        headers, params = self._auth(credential)
        self.page_size = page_size or self.default_page_size
        #: The instance its errors name, with the variables to check (default: the kind's default instance).
        self.instance = instance or Instance(get_kind(self.kind))
        self.http = HttpSession(
            self.instance,
            url,
            headers=headers,
            params=params,
            timeout=timeout,
            retry=retry,
            transport=transport,
            **({"sleep": sleep} if sleep is not None else {}),
        )

    @property
    def stats(self) -> FetchStats:
        """Requests, retries, pages and items since this client was made."""
        return self.http.stats

    @abstractmethod
    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        """Headers and query parameters that carry the credential."""

    @abstractmethod
    def iter_all(self) -> Iterator[Item]:
        """Every item, page by page (the full refresh)."""

    @abstractmethod
    def iter_changed(
        self, start: datetime, end: datetime, also: Iterable[Any] = ()
    ) -> Iterator[Item | Deleted | Missing]:
        """Items added, changed or removed in ``[start, end)`` (aware datetimes; the incremental sync),
        and the items ``also`` names by id, whenever they changed."""

    @abstractmethod
    def changes_since(self, since: datetime, known: Mapping[str, Any] | None = None) -> ChangeFeed:
        """What the service's own change feeds say changed since ``since`` (the catch-up's poll), in a
        request or two when nothing did. ``known``: what the last poll kept of the feed (its fingerprint)."""

    @abstractmethod
    def server_info(self) -> ServerInfo:
        """Name, version and library size; proves the URL and credential work."""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _paginate(self, fetch_page: Callable[[int], tuple[Sequence[Any], int]]) -> Iterator[Any]:
        """Walk an offset-paged listing: ``fetch_page(offset)`` returns ``(rows, total)``."""
        offset = 0
        while True:
            rows, total = fetch_page(offset)
            self.stats.pages += 1
            self.stats.items += len(rows)
            yield from rows
            offset += len(rows)
            if not rows or offset >= total:
                return
