"""A running simulation: the universe, each simulator's faults and keys, and mutations that notify.

Each mutation changes the universe and, when a webhook target is set for a service, sends that
service's real webhook for it (see :mod:`webhooks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from smartplex.services import SERVICE_NAMES
from smartplex_simulators import webhooks
from smartplex_simulators.faults import Faults
from smartplex_simulators.universe import Episode, Movie, Play, Request, Show, Universe


def make_keys(seed: int) -> dict[str, str]:
    """Credentials derived from the seed: stable for a seed, different between seeds."""
    keys = {}
    for name in SERVICE_NAMES:
        digest = hashlib.sha256(f"smartplex-simulator:{seed}:{name}".encode()).hexdigest()
        keys[name] = digest[:20] if name == "plex" else digest[:32]
    return keys


class Simulation:
    def __init__(
        self,
        universe: Universe,
        *,
        keys: Mapping[str, str] | None = None,
        webhook_targets: Mapping[str, str] | None = None,
    ) -> None:
        self.universe = universe
        self.keys = dict(keys or make_keys(universe.seed))
        self.faults = {name: Faults(seed=universe.seed) for name in SERVICE_NAMES}
        self.webhooks = webhooks.WebhookSender(webhook_targets or {})

    def add_movie(self, title: str | None = None, *, with_file: bool = True) -> Movie:
        movie = self.universe.add_movie(title, with_file=with_file)
        self.webhooks.send("radarr", webhooks.radarr_movie_added(movie))
        if with_file:
            self.webhooks.send("radarr", webhooks.radarr_download(movie))
            self._library_new(movie)
        return movie

    def add_show(self, title: str | None = None, *, seasons: int = 1, episodes_per_season: int = 8) -> Show:
        show = self.universe.add_show(title, seasons=seasons, episodes_per_season=episodes_per_season)
        self.webhooks.send("sonarr", webhooks.sonarr_series_add(show))
        for episode in show.episodes:
            self.webhooks.send("sonarr", webhooks.sonarr_download(episode))
        self._library_new(show)
        return show

    def update_movie(self, movie_id: int, *, title: str) -> Movie:
        """A metadata edit: no service sends a webhook for it; syncs see it by ``updatedAt``."""
        return self.universe.update_movie(movie_id, title=title)

    def delete_movie(self, movie_id: int) -> Movie:
        movie = self.universe.movies[movie_id]
        folder_size = movie.size if movie.file_id is not None else 0
        self.universe.delete_movie(movie_id)
        self.webhooks.send("radarr", webhooks.radarr_movie_delete(movie, folder_size))
        return movie

    def delete_movie_file(self, movie_id: int) -> Movie:
        file_payload = webhooks.radarr_movie_file(self.universe.movies[movie_id])
        movie = self.universe.delete_movie_file(movie_id)
        self.webhooks.send("radarr", webhooks.radarr_movie_file_delete(movie, file_payload))
        return movie

    def delete_series(self, series_id: int) -> Show:
        show = self.universe.delete_series(series_id)
        self.webhooks.send("sonarr", webhooks.sonarr_series_delete(show))
        return show

    def delete_episode_file(self, episode_id: int) -> Episode:
        file_payload = webhooks.sonarr_episode_file(self.universe.episodes[episode_id])
        episode = self.universe.delete_episode_file(episode_id)
        self.webhooks.send("sonarr", webhooks.sonarr_episode_file_delete(episode, file_payload))
        return episode

    def record_play(self, rating_key: int, *, user_id: int = 1, percent: int = 100, minutes: int = 45) -> Play:
        play = self.universe.record_play(rating_key, user_id=user_id, percent=percent, minutes=minutes)
        watched = percent >= 90
        self.webhooks.send(
            "plex",
            webhooks.plex_event(
                "media.scrobble" if watched else "media.stop", play.item, self.universe, play.user, play=play
            ),
        )
        self.webhooks.send(
            "tautulli", webhooks.tautulli_playback("watched" if watched else "stop", play, self.universe)
        )
        return play

    def request_media(self, *, movie_id: int | None = None, series_id: int | None = None, user_id: int = 2) -> Request:
        target: Movie | Show
        if movie_id is not None and series_id is None:
            target = self.universe.movies[movie_id]
        elif series_id is not None and movie_id is None:
            target = self.universe.shows[series_id]
        else:
            raise ValueError("request exactly one of movie_id and series_id")
        request = self.universe.request_media(target, user_id=user_id)
        self.webhooks.send("overseerr", webhooks.overseerr_notification("MEDIA_PENDING", request))
        return request

    def approve_request(self, request_id: int, *, approve: bool = True) -> Request:
        request = self.universe.approve_request(request_id, approve=approve)
        kind = "MEDIA_APPROVED" if approve else "MEDIA_DECLINED"
        self.webhooks.send("overseerr", webhooks.overseerr_notification(kind, request))
        return request

    def advance_clock(self, seconds: int) -> int:
        return self.universe.advance(seconds)

    def _library_new(self, item: Movie | Show) -> None:
        self.webhooks.send("plex", webhooks.plex_event("library.new", item, self.universe, self.universe.users[0]))
        self.webhooks.send("tautulli", webhooks.tautulli_created(item, self.universe))
