"""What each client puts on the wire: credentials, paging and filters, as each API expects them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from smartplex.clients import CLIENTS

START, END = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)


def _recorder(answer: Callable[[httpx.Request], Any]) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer(request))

    return seen, httpx.MockTransport(handle)


def _plex_answer(request: httpx.Request) -> Any:
    if request.url.path == "/library/sections":
        return {"MediaContainer": {"Directory": [{"key": "7", "type": "movie"}, {"key": "8", "type": "artist"}]}}
    if request.url.path == "/identity":
        return {"MediaContainer": {"machineIdentifier": "abc123"}}
    return {"MediaContainer": {"size": 0, "totalSize": 0, "Metadata": []}}


def test_plex_sends_token_json_and_identity_headers_and_window_filters() -> None:
    seen, transport = _recorder(_plex_answer)
    with CLIENTS["plex"]("http://plex.test:32400", "tok", transport=transport, page_size=50) as client:
        assert client.machine_identifier() == "abc123"
        list(client.iter_changed(START, END))
    listing = [r for r in seen if r.url.path == "/library/sections/7/all"]
    assert {r.headers["x-plex-token"] for r in seen} == {"tok"}
    assert all(r.headers["accept"] == "application/json" and r.headers["x-plex-client-identifier"] for r in seen)
    assert not any("/sections/8/" in r.url.path for r in seen)  # music is not synced
    first = listing[0]
    assert (first.headers["x-plex-container-start"], first.headers["x-plex-container-size"]) == ("0", "50")
    # [12:00:00.5, next midnight): whole epoch seconds > 12:00:00 and < midnight.
    assert first.url.params["addedAt>>"] == str(int(START.timestamp()))
    assert first.url.params["addedAt<<"] == str(int(END.timestamp()))
    assert [r.url.params["type"] for r in listing] == ["1", "1", "1"]
    assert sorted(k for r in listing for k in r.url.params if k.endswith(">>")) == [
        "addedAt>>",
        "lastViewedAt>>",
        "updatedAt>>",
    ]
    assert "tok" not in str(first.url)  # the token travels in a header, never in URLs that get logged


def test_plex_without_total_size_pages_until_a_short_page() -> None:
    pages = iter(
        [
            [{"ratingKey": "1", "type": "movie"}, {"ratingKey": "2", "type": "movie"}],
            [{"ratingKey": "3", "type": "movie"}],
        ]
    )

    def answer(request: httpx.Request) -> Any:
        if request.url.path == "/library/sections":
            return {"MediaContainer": {"Directory": [{"key": "1", "type": "movie"}]}}
        return {"MediaContainer": {"size": 0, "Metadata": next(pages)}}

    _, transport = _recorder(answer)
    with CLIENTS["plex"]("http://plex.test", "tok", transport=transport, page_size=2) as client:
        assert [i.rating_key for i in client.iter_all()] == ["1", "2", "3"]


def test_tautulli_asks_for_ungrouped_rows_with_a_padded_date_range() -> None:
    seen, transport = _recorder(
        lambda r: {"response": {"result": "success", "data": {"recordsFiltered": 0, "recordsTotal": 0, "data": []}}}
    )
    with CLIENTS["tautulli"]("http://tautulli.test:8181", "k" * 32, transport=transport) as client:
        list(client.iter_changed(START, END))
    params = seen[0].url.params
    assert (params["apikey"], params["cmd"], params["grouping"]) == ("k" * 32, "get_history", "0")
    assert (params["after"], params["before"]) == ("2026-02-28", "2026-03-03")


def test_arrs_send_the_api_key_header_and_page_history_newest_first() -> None:
    def answer(request: httpx.Request) -> Any:
        if request.url.path.endswith("/history"):
            return {"page": 1, "pageSize": 250, "totalRecords": 0, "records": []}
        return {"id": 7, "tmdbId": 11, "title": "Named by a webhook"}

    for name in ("sonarr", "radarr"):
        seen, transport = _recorder(answer)
        with CLIENTS[name]("http://arr.test/base", "key", transport=transport) as client:
            changed = list(client.iter_changed(START, END, also=[7]))
        assert [item.id for item in changed] == [7]
        # History, then the one item a webhook named, fetched on its own (no library listing).
        assert [r.url.path for r in seen] == ["/base/api/v3/history", f"/base/api/v3/{client.resource}/7"]
        assert {r.headers["x-api-key"] for r in seen} == {"key"}
        history = seen[0].url.params
        assert (history["sortKey"], history["sortDirection"], history["page"]) == ("date", "descending", "1")


def test_overseerr_pages_with_take_and_skip_sorted_by_modification() -> None:
    seen, transport = _recorder(lambda r: {"pageInfo": {"results": 0}, "results": []})
    with CLIENTS["overseerr"]("http://overseerr.test:5055", "key", transport=transport, page_size=25) as client:
        list(client.iter_changed(START, END))
    params = seen[0].url.params
    assert (params["take"], params["skip"], params["sort"], params["filter"]) == ("25", "0", "modified", "all")
    assert seen[0].headers["x-api-key"] == "key"
