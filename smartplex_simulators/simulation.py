"""A running simulation: the universe, each simulator's faults and keys, and mutations that notify.

Each mutation changes the universe and, when a webhook target is set for an instance, sends that
instance's real webhook for it (see :mod:`webhooks`). Ids are the default instances'; a change to a
title the 4K library holds (:meth:`Universe.enable_4k`) sends the 4K Sonarr's or Radarr's webhook too,
about its copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from smartplex.instances import Instance
from smartplex.kinds import get_kind
from smartplex_simulators import webhooks
from smartplex_simulators._arr import INSTANCE_IDS, WEBHOOK_CONNECTION
from smartplex_simulators.faults import Faults
from smartplex_simulators.universe import Episode, Movie, Play, Request, Show, Universe


def make_keys(seed: int) -> dict[str, str]:
    """Credentials by instance id, derived from the seed: stable for a seed, different between seeds."""
    keys = {}
    for instance_id in INSTANCE_IDS:
        digest = hashlib.sha256(f"smartplex-simulator:{seed}:{instance_id}".encode()).hexdigest()
        # A Plex token is 20 characters, an API key 32.
        keys[instance_id] = digest[:20] if Instance.parse(instance_id).kind.name == "plex" else digest[:32]
    return keys


def _instance(item: Movie | Show | Episode) -> str:
    """The id of the Radarr or Sonarr instance whose item this is: ``radarr``, or ``radarr/4k`` for a 4K copy."""
    if isinstance(item, Movie):
        return Instance(get_kind("radarr"), item.instance).id
    return Instance(get_kind("sonarr"), (item.show if isinstance(item, Episode) else item).instance).id


class Simulation:
    def __init__(
        self,
        universe: Universe,
        *,
        keys: Mapping[str, str] | None = None,
        webhook_targets: Mapping[str, str] | None = None,
        connections: Sequence[str] = (WEBHOOK_CONNECTION,),
    ) -> None:
        if WEBHOOK_CONNECTION not in connections:
            raise ValueError(f"connections must include {WEBHOOK_CONNECTION!r}, the one that posts the webhooks")
        self.universe = universe
        self.keys = {**make_keys(universe.seed), **(keys or {})}
        self.faults = {instance_id: Faults(seed=universe.seed) for instance_id in INSTANCE_IDS}
        #: Each Sonarr's and Radarr's connections (Settings > Connect), by name: the one posting the webhooks,
        #: whose failures :attr:`webhooks` counts, and any others, which stand for connections that never fail.
        self.connections = tuple(connections)
        self.webhooks = webhooks.WebhookSender(webhook_targets or {}, clock=self.clock, seed=universe.seed)

    def clock(self) -> datetime:
        """The universe's time: a sender on this clock backs off in simulated time, which ``advance_clock`` moves."""
        return datetime.fromtimestamp(self.universe.now, UTC)

    def add_movie(self, title: str | None = None, *, with_file: bool = True) -> Movie:
        movie = self.universe.add_movie(title, with_file=with_file)
        for held in self.universe.copies(movie):
            self.webhooks.send(_instance(held), webhooks.radarr_movie_added(held))
            if with_file:
                self.webhooks.send(_instance(held), webhooks.radarr_download(held))
        if with_file:
            self._library_new(movie)
        return movie

    def add_show(self, title: str | None = None, *, seasons: int = 1, episodes_per_season: int = 8) -> Show:
        show = self.universe.add_show(title, seasons=seasons, episodes_per_season=episodes_per_season)
        for held in self.universe.copies(show):
            self.webhooks.send(_instance(held), webhooks.sonarr_series_add(held))
            for episode in held.episodes:
                self.webhooks.send(_instance(held), webhooks.sonarr_download(episode))
        self._library_new(show)
        return show

    def update_movie(self, movie_id: int, *, title: str) -> Movie:
        """A metadata edit: no service sends a webhook for it; syncs see it by ``updatedAt``."""
        return self.universe.update_movie(movie_id, title=title)

    # Deletions: what each instance's webhook tells is taken before the universe forgets it.

    def delete_movie(self, movie_id: int) -> Movie:
        movie = self.universe.movies[movie_id]
        held = [(m, m.size if m.file_id is not None else 0) for m in self.universe.copies(movie)]
        self.universe.delete_movie(movie_id)
        for copy, folder_size in held:
            self.webhooks.send(_instance(copy), webhooks.radarr_movie_delete(copy, folder_size))
        return movie

    def delete_movie_file(self, movie_id: int) -> Movie:
        movie = self.universe.movies[movie_id]
        files = [(m, webhooks.radarr_movie_file(m)) for m in self.universe.copies(movie) if m.file_id is not None]
        self.universe.delete_movie_file(movie_id)
        for copy, file_payload in files:
            self.webhooks.send(_instance(copy), webhooks.radarr_movie_file_delete(copy, file_payload))
        return movie

    def delete_series(self, series_id: int) -> Show:
        show = self.universe.shows[series_id]
        held = self.universe.copies(show)
        self.universe.delete_series(series_id)
        for copy in held:
            self.webhooks.send(_instance(copy), webhooks.sonarr_series_delete(copy))
        return show

    def delete_episode_file(self, episode_id: int) -> Episode:
        episode = self.universe.episodes[episode_id]
        files = [(e, webhooks.sonarr_episode_file(e)) for e in self.universe.copies(episode) if e.file_id is not None]
        self.universe.delete_episode_file(episode_id)
        for copy, file_payload in files:
            self.webhooks.send(_instance(copy), webhooks.sonarr_episode_file_delete(copy, file_payload))
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
