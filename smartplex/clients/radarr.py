"""Radarr: the movie library."""

from __future__ import annotations

from typing import Any

from smartplex.clients._arr import ArrClient
from smartplex.clients.models import RadarrMovie


class RadarrClient(ArrClient[RadarrMovie]):
    kind = "radarr"
    resource = "movie"
    history_id_field = "movieId"
    file_deleted_event = "movieFileDeleted"
    file_kind = "movieFile"

    def _parse(self, row: dict[str, Any]) -> RadarrMovie:
        return RadarrMovie.from_api(row)
