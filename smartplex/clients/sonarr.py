"""Sonarr: the TV series library."""

from __future__ import annotations

from typing import Any

from smartplex.clients._arr import ArrClient
from smartplex.clients.models import SonarrSeries


class SonarrClient(ArrClient[SonarrSeries]):
    kind = "sonarr"
    resource = "series"
    history_id_field = "seriesId"
    file_deleted_event = "episodeFileDeleted"
    file_kind = "episodeFile"

    def _parse(self, row: dict[str, Any]) -> SonarrSeries:
        return SonarrSeries.from_api(row)
