"""Tautulli: the watch history (one row per play)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from smartplex.clients._base import ServiceClient
from smartplex.clients._http import Params
from smartplex.clients._time import in_window, utc_window
from smartplex.clients.errors import BadResponse, Unauthorized
from smartplex.clients.models import ChangeFeed, Missing, ServerInfo, TautulliPlay

#: Tautulli's ``after``/``before`` compare whole days in the server's own time zone, which we do
#: not know; a day either side covers every zone, and rows are then filtered on exact epochs.
_ZONE_SLACK = timedelta(days=1)

logger = logging.getLogger(__name__)


class TautulliClient(ServiceClient[TautulliPlay]):
    kind = "tautulli"
    default_page_size = 1000

    def _auth(self, credential: str) -> tuple[Mapping[str, str], Params]:
        return {}, {"apikey": credential}

    def iter_all(self) -> Iterator[TautulliPlay]:
        return self._history({})

    def iter_changed(
        self, start: datetime, end: datetime, also: Iterable[Any] = ()
    ) -> Iterator[TautulliPlay | Missing]:
        start, end = utc_window(start, end)
        params = {
            "after": (start - _ZONE_SLACK).date().isoformat(),
            "before": (end + _ZONE_SLACK).date().isoformat(),
        }
        seen: set[int] = set()
        for play in self._history(params):
            if in_window(play.started, start, end):
                seen.add(play.row_id)
                yield play
        # A webhook's ratingKey: every play of that item, however long ago Tautulli dates it.
        for rating_key in dict.fromkeys(str(k) for k in also):
            found = False
            for play in self._history({"rating_key": rating_key}):
                found = True
                if play.row_id not in seen:
                    seen.add(play.row_id)
                    yield play
            if not found:
                yield Missing(rating_key)

    def changes_since(self, since: datetime, known: Mapping[str, Any] | None = None) -> ChangeFeed:
        """The catch-up's poll: the plays recorded from the day before ``since`` (``after`` compares days
        in the server's zone), newest first; one request unless more than a page of plays ended since.
        A play is recorded when it stops, so one that started before ``since`` counts if it stopped after."""
        since = since.astimezone(UTC)
        params: Params = {"after": (since - _ZONE_SLACK).date().isoformat(), "order_dir": "desc"}
        return ChangeFeed(items=[play for play in self._history(params) if (play.stopped or play.started) >= since])

    def server_info(self) -> ServerInfo:
        info = self._command("get_tautulli_info")
        history = self._command("get_history", {"start": 0, "length": 1})
        return ServerInfo("tautulli", "Tautulli", info.get("tautulli_version", ""), int(history.get("recordsTotal", 0)))

    def _history(self, params: Params) -> Iterator[TautulliPlay]:
        # One row per play (grouping=0: resumed sessions are not merged), oldest first so plays
        # recorded during the sync append behind the cursor. Without include_activity=0 Tautulli
        # also lists what is playing now, as rows with no id: those are not history yet.
        fixed: Params = {"grouping": 0, "order_column": "date", "order_dir": "asc", "include_activity": 0}

        def fetch(offset: int) -> tuple[list[dict[str, Any]], int]:
            data = self._command("get_history", {**fixed, **params, "start": offset, "length": self.page_size})
            return data["data"], int(data["recordsFiltered"])

        for row in self._paginate(fetch):
            if row.get("id") is None:
                logger.debug("skipped a Tautulli history row with no id (a play in progress)")
                continue
            yield TautulliPlay.from_api(row)

    def _command(self, cmd: str, params: Params | None = None) -> Any:
        """Run one API command and unwrap Tautulli's ``{"response": {...}}`` envelope."""
        try:
            body = self.http.get_json("/api/v2", {"cmd": cmd, **(params or {})})
        except BadResponse as error:
            # Tautulli refuses a bad API key with HTTP 400 and "Invalid apikey" in its usual envelope.
            if error.status_code == 400 and "invalid apikey" in error.detail.lower():
                raise Unauthorized(
                    self.instance,
                    self.http.base_url,
                    f"Tautulli refused the API key (HTTP 400, Invalid apikey); check {self.instance.env_names[1]}",
                ) from None
            raise
        response = body.get("response", {}) if isinstance(body, dict) else {}
        if response.get("result") == "success":
            return response.get("data")
        message = response.get("message") or "no message"
        if "apikey" in message.lower():
            raise Unauthorized(self.instance, self.http.base_url, f"{message}; check {self.instance.env_names[1]}")
        raise BadResponse(self.instance, self.http.base_url, f"command {cmd} failed: {message}")
