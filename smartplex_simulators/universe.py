"""One seeded, deterministic media universe that every simulator serves.

The same movies and shows appear in Plex, Sonarr/Radarr, Overseerr requests and Tautulli history,
with consistent ids: a Plex item's ``Guid`` carries its Radarr movie's tmdb id, a Tautulli row's
``rating_key`` is a Plex ratingKey, an Overseerr request's media points at both. Timestamps are
epoch seconds spread over years before ``now``: the real clock (``now=None``, what ``smartplex
simulate`` and ``smartplex demo`` use), or a fixed one that only :meth:`Universe.advance` moves
(the default, which keeps generated libraries identical run to run).

The universe is also the library of the default Sonarr and Radarr. :meth:`Universe.enable_4k` adds a
second one, for a 4K Sonarr and Radarr: a seeded third of the shows and movies, under ids of their
own (see :class:`Library4K`).
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from smartplex.instances import DEFAULT_INSTANCE

#: 2026-01-01T00:00:00Z: a fixed default "now" keeps generated libraries identical run to run.
DEFAULT_NOW = 1_767_225_600
DAY = 86_400
#: The name of the extra Sonarr and Radarr instances the simulators can run (``sonarr/4k``, ``radarr/4k``).
UHD = "4k"
#: Generated imports end this long before "now", so every generated play has finished by then.
_LATEST_IMPORT = 4 * 3600

_ADJECTIVES = (
    "Silent Broken Crimson Hidden Last Golden Endless Frozen Midnight Distant Burning Hollow Iron "
    "Wild Lost Secret Final Fallen Electric Savage Quiet Northern Paper Glass Velvet Bitter"
).split()
_NOUNS = (
    "River Empire Garden Signal Harbor Protocol Kingdom Orchard Frontier Voyage Machine Circus "
    "Horizon Archive Lantern Meridian Canyon Station Mirror Compass Theory Tide Paradox Citadel"
).split()
_GENRES = ("Drama", "Comedy", "Thriller", "Science Fiction", "Adventure", "Crime", "Documentary")
_STUDIOS = ("Legendary Pictures", "Syncopy", "A24", "Pixar", "Warner Bros.", "Neon", "Focus Features")
_NETWORKS = ("AMC", "HBO", "BBC One", "Netflix", "FX", "Apple TV+", "NBC")


@dataclass(slots=True)
class User:
    """A person across services: Overseerr user ``id``, plex.tv account ``plex_id``."""

    id: int
    plex_id: int
    username: str
    email: str
    created: int


@dataclass(slots=True, eq=False, kw_only=True)
class InPlex:
    """An item's life in Plex: a ratingKey while it is there (movies: while they have a file), watch state."""

    rating_key: int | None = None
    plex_added: int = 0
    plex_updated: int = 0
    view_count: int = 0
    last_viewed: int | None = None


@dataclass(slots=True, eq=False)
class Movie(InPlex):
    id: int  # Radarr movie id
    tmdb_id: int
    imdb_id: str
    title: str
    year: int
    genre: str
    studio: str
    guid_hex: str
    added: int  # added to Radarr
    file_id: int | None
    file_added: int | None
    size: int
    monitored: bool = True
    #: The Radarr instance whose movie this is: the default one, or the 4K one's copy.
    instance: str = DEFAULT_INSTANCE

    kind: Literal["movie"] = "movie"


@dataclass(slots=True, eq=False)
class Show(InPlex):
    id: int  # Sonarr series id
    tvdb_id: int
    tmdb_id: int
    imdb_id: str
    title: str
    year: int
    genre: str
    network: str
    guid_hex: str
    added: int
    episodes: list[Episode] = field(default_factory=list)
    season_keys: dict[int, int] = field(default_factory=dict)  # season number -> Plex ratingKey
    monitored: bool = True
    #: The Sonarr instance whose series this is (its episodes' too): the default one, or the 4K one's copy.
    instance: str = DEFAULT_INSTANCE

    kind: Literal["show"] = "show"


@dataclass(slots=True, eq=False)
class Episode(InPlex):
    id: int  # Sonarr episode id
    show: Show
    season: int
    number: int
    title: str
    tvdb_id: int
    guid_hex: str
    air_date: int
    file_id: int | None
    file_added: int | None
    size: int

    kind: Literal["episode"] = "episode"


PlexLeaf = Movie | Episode


@dataclass(slots=True)
class Play:
    """One play: a Tautulli history row and a Plex history entry."""

    id: int
    item: PlexLeaf
    rating_key: int  # kept after the item leaves Plex, as Tautulli keeps its history
    user: User
    started: int
    stopped: int
    percent: int
    #: An episode's season and show ratingKeys when it was played (kept likewise).
    parent_rating_key: int | None = None
    grandparent_rating_key: int | None = None


@dataclass(slots=True)
class ArrEvent:
    """A Sonarr or Radarr history record (``target`` is the series or movie id)."""

    id: int
    date: int
    event: str
    target: int
    episode_id: int | None
    file_id: int | None
    download_id: str
    source_title: str


@dataclass(slots=True, eq=False)
class Request:
    """An Overseerr request; ``media_id`` is Overseerr's own id for the requested title."""

    id: int
    media_id: int
    target: Movie | Show
    user: User
    status: int  # 1 pending, 2 approved, 3 declined
    created: int
    updated: int
    modified_by: User | None = None


Item = TypeVar("Item", Movie, Show, Episode)


class ArrLibrary:
    """What one Sonarr and one Radarr instance hold, under ids of their own: series with their episodes,
    movies, their files, and the history of both. The universe is the default instances' library;
    :class:`Library4K` the 4K instances'."""

    def __init__(self, name: str, rng: random.Random, lock: threading.RLock) -> None:
        self.name = name
        self.lock = lock
        self.movies: dict[int, Movie] = {}
        self.shows: dict[int, Show] = {}
        self.episodes: dict[int, Episode] = {}
        self.sonarr_history: list[ArrEvent] = []  # by date, ascending
        self.radarr_history: list[ArrEvent] = []
        self._next: dict[str, int] = {}
        self._rng = rng
        self._generating = True

    @property
    def now(self) -> int:
        raise NotImplementedError

    def _id(self, sequence: str) -> int:
        self._next[sequence] = self._next.get(sequence, 0) + 1
        return self._next[sequence]

    def _import_movie(self, movie: Movie, at: int) -> None:
        movie.file_id = self._id("moviefile")
        movie.file_added = at
        download = f"{self._rng.getrandbits(160):040X}"
        release = f"{movie.title}.{movie.year}.{quality(movie)[0]}-SIM".replace(" ", ".")
        self._arr_event(self.radarr_history, "grabbed", movie.id, None, None, release, at - 600, download)
        self._arr_event(
            self.radarr_history, "downloadFolderImported", movie.id, None, movie.file_id, release, at, download
        )

    def _import_episode(self, episode: Episode, at: int) -> None:
        episode.file_id = self._id("episodefile")
        episode.file_added = at
        download = f"SABnzbd_nzo_{self._rng.getrandbits(40):010x}"
        title = f"{episode.show.title}.S{episode.season:02d}E{episode.number:02d}.{quality(episode)[0]}-SIM"
        title = title.replace(" ", ".")
        self._arr_event(self.sonarr_history, "grabbed", episode.show.id, episode.id, None, title, at - 600, download)
        self._arr_event(
            self.sonarr_history,
            "downloadFolderImported",
            episode.show.id,
            episode.id,
            episode.file_id,
            title,
            at,
            download,
        )

    def _arr_event(
        self,
        history: list[ArrEvent],
        event: str,
        target: int,
        episode_id: int | None,
        file_id: int | None,
        source_title: str,
        at: int | None = None,
        download: str = "",
    ) -> None:
        sequence = "sonarr_event" if history is self.sonarr_history else "radarr_event"
        history.append(
            ArrEvent(
                self._id(sequence),
                self.now if at is None else at,
                event,
                target,
                episode_id,
                file_id,
                download,
                source_title,
            )
        )
        if not self._generating:
            # A grab is dated before its import; keep the history in date order (nearly sorted: cheap).
            history.sort(key=lambda e: (e.date, e.id))

    def _settle_history(self) -> None:
        """Generated events were made out of date order; real ids ascend with time."""
        for sequence, history in (("sonarr_event", self.sonarr_history), ("radarr_event", self.radarr_history)):
            history.sort(key=lambda e: e.date)
            for n, event in enumerate(history, start=1):
                event.id = n
            self._next[sequence] = len(history)

    # Removals, as the services do them; the universe adds what Plex does.

    def _drop_movie(self, movie: Movie) -> None:
        """Like Radarr, deleting a movie purges its history."""
        del self.movies[movie.id]
        self.radarr_history = [e for e in self.radarr_history if e.target != movie.id]

    def _drop_movie_file(self, movie: Movie) -> None:
        self._arr_event(self.radarr_history, "movieFileDeleted", movie.id, None, movie.file_id, movie_file(movie))
        movie.file_id = movie.file_added = None

    def _drop_series(self, show: Show) -> None:
        """Like Sonarr, deleting a series purges its history, and its episodes go with it."""
        del self.shows[show.id]
        self.sonarr_history = [e for e in self.sonarr_history if e.target != show.id]
        for episode in show.episodes:
            del self.episodes[episode.id]

    def _drop_episode_file(self, episode: Episode) -> None:
        self._arr_event(
            self.sonarr_history,
            "episodeFileDeleted",
            episode.show.id,
            episode.id,
            episode.file_id,
            episode_file(episode),
        )
        episode.file_id = episode.file_added = None


class Universe(ArrLibrary):
    """The shared state. Mutations take :attr:`lock`; readers hold it while they build a response."""

    def __init__(
        self,
        *,
        seed: int = 1,
        size: int = 1000,
        now: int | None = DEFAULT_NOW,
        years: float = 5.0,
        movie_share: float = 0.4,
        timezone: str = "America/Los_Angeles",
    ) -> None:
        if size < 0:
            raise ValueError(f"size must be 0 or more, not {size}")
        super().__init__(DEFAULT_INSTANCE, random.Random(seed), threading.RLock())
        self.seed = seed
        #: ``now=None``: the clock follows real time, so what mutations create is stamped when they happen.
        self._real_clock = now is None
        self._start = int(time.time()) if now is None else now
        self._offset = 0  # what advance() added
        #: Tautulli's server zone: its ``after``/``before`` filters compare local dates.
        self.timezone = timezone
        self.machine_id = random.Random(seed).getrandbits(160).to_bytes(20, "big").hex()
        self.users: list[User] = []
        self.plex: dict[int, Movie | Show | Episode] = {}  # ratingKey -> item
        self.plays: list[Play] = []  # by started, ascending
        self.sessions: list[Play] = []  # playing now: not history yet
        self.requests: dict[int, Request] = {}
        self._media_ids: dict[tuple[str, int], int] = {}  # (kind, arr id) -> Overseerr media id
        self._sections: dict[str, tuple[int, list[Movie | Show | Episode]]] = {}
        self._request_counts: tuple[int, Counter[int]] = (-1, Counter())
        #: Bumped by every change, so readers can cache what they derive from the state.
        self.revision = 0
        #: The 4K Sonarr's and Radarr's library, once :meth:`enable_4k` has made it.
        self.four_k: Library4K | None = None
        self._generate(size, years, movie_share)
        self._generating = False

    # ----- reads ---------------------------------------------------------------------------------

    def plex_section(self, kind: str) -> list[Movie | Show | Episode]:
        """Items of one Plex type in ratingKey order (which is the order they were added)."""
        cached = self._sections.get(kind)
        if cached is None or cached[0] != self.revision:
            cached = (self.revision, [i for i in self.plex.values() if i.kind == kind])
            self._sections[kind] = cached
        return cached[1]

    def request_count(self, user: User) -> int:
        """How many requests ``user`` made (counted once per revision, not once per listed user)."""
        if self._request_counts[0] != self.revision:
            self._request_counts = (self.revision, Counter(r.user.id for r in self.requests.values()))
        return self._request_counts[1][user.id]

    def media_id(self, target: Movie | Show) -> int:
        key = (target.kind, target.id)
        if key not in self._media_ids:
            self._media_ids[key] = self._id("media")
        return self._media_ids[key]

    def user(self, user_id: int) -> User:
        return next(u for u in self.users if u.id == user_id)

    def arr_library(self, instance: str = DEFAULT_INSTANCE) -> ArrLibrary:
        """What a Sonarr or Radarr instance serves: this universe, or (``4k``) its 4K library."""
        if instance == DEFAULT_INSTANCE:
            return self
        if instance == UHD and self.four_k is not None:
            return self.four_k
        raise KeyError(f"no {instance!r} library: call enable_4k() first" if instance == UHD else instance)

    def copies(self, item: Item) -> list[Item]:
        """``item`` (a show, episode or movie) as each library holds it: itself, then its 4K copy if any."""
        return [held for _, held in self._held(item)]

    def _held(self, item: Item) -> list[tuple[ArrLibrary, Item]]:
        held: list[tuple[ArrLibrary, Item]] = [(self, item)]
        if self.four_k is not None and (copy := self.four_k.copy_of(item)) is not None:
            held.append((self.four_k, copy))
        return held

    # ----- mutations -----------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Epoch seconds: fixed (moved only by :meth:`advance`), or the real clock once generated."""
        if self._real_clock and not self._generating:
            return int(time.time()) + self._offset
        return self._start + self._offset

    def advance(self, seconds: int) -> int:
        with self._change():
            self._offset += int(seconds)
            return self.now

    def enable_4k(self) -> Library4K:
        """Make the 4K library (once); from then on it follows every change to a title it holds."""
        with self._change():
            if self.four_k is None:
                self.four_k = Library4K(self)
            return self.four_k

    # Ids are the default instances'; a change to a title the 4K library holds changes its copy too.

    def add_movie(self, title: str | None = None, *, with_file: bool = True) -> Movie:
        with self._change():
            movie = self._new_movie(self.now, title)
            if with_file:
                self._import_movie(movie, self.now)
                self._to_plex(movie, self.now)
            if self.four_k is not None:
                self.four_k.follow(movie)
            return movie

    def add_show(self, title: str | None = None, *, seasons: int = 1, episodes_per_season: int = 8) -> Show:
        with self._change():
            show = self._new_show(self.now, title, seasons, episodes_per_season, import_files=True)
            self._show_to_plex(show)
            if self.four_k is not None:
                self.four_k.follow(show)
            return show

    def update_movie(self, movie_id: int, *, title: str) -> Movie:
        """Edit a movie's metadata, as a Plex refresh would: bumps its ``updatedAt``."""
        with self._change():
            movie = self.movies[movie_id]
            for held in self.copies(movie):
                held.title = title
            movie.plex_updated = self.now
            return movie

    def delete_movie(self, movie_id: int) -> Movie:
        with self._change():
            movie = self.movies[movie_id]
            for library, held in self._held(movie):
                library._drop_movie(held)
            self._from_plex(movie)
            return movie

    def delete_movie_file(self, movie_id: int) -> Movie:
        with self._change():
            movie = self.movies[movie_id]
            if movie.file_id is None:
                raise ValueError(f"movie {movie_id} has no file")
            for library, held in self._held(movie):
                if held.file_id is not None:
                    library._drop_movie_file(held)
            self._from_plex(movie)
            return movie

    def delete_series(self, series_id: int) -> Show:
        with self._change():
            show = self.shows[series_id]
            for library, held in self._held(show):
                library._drop_series(held)
            for episode in show.episodes:
                self._from_plex(episode)
            self._from_plex(show)
            return show

    def delete_episode_file(self, episode_id: int) -> Episode:
        with self._change():
            episode = self.episodes[episode_id]
            if episode.file_id is None:
                raise ValueError(f"episode {episode_id} has no file")
            for library, held in self._held(episode):
                if held.file_id is not None:
                    library._drop_episode_file(held)
            self._from_plex(episode)
            episode.show.plex_updated = self.now
            return episode

    def record_play(self, rating_key: int, *, user_id: int = 1, percent: int = 100, minutes: int = 45) -> Play:
        """A finished play ending now; 90% or more counts as watched, as in Plex."""
        with self._change():
            item = self.plex[rating_key]
            if isinstance(item, Show):
                raise ValueError("plays are of movies or episodes, not shows")
            play = self._play(item, self.user(user_id), self.now - minutes * 60, self.now, percent)
            self.plays.append(play)
            return play

    def start_playing(self, rating_key: int, *, user_id: int = 1, minutes: int = 10) -> Play:
        """A play in progress (started ``minutes`` ago): Tautulli shows it as activity, not history."""
        with self._change():
            item = self.plex[rating_key]
            if isinstance(item, Show):
                raise ValueError("plays are of movies or episodes, not shows")
            session = Play(
                -(len(self.sessions) + 1), item, rating_key, self.user(user_id), self.now - minutes * 60, self.now, 20
            )
            self.sessions.append(session)
            return session

    def request_media(self, target: Movie | Show, *, user_id: int = 2) -> Request:
        with self._change():
            return self._request(target, self.user(user_id), self.now, self.now, 1)

    def approve_request(self, request_id: int, *, approve: bool = True) -> Request:
        with self._change():
            request = self.requests[request_id]
            request.status = 2 if approve else 3
            request.updated = self.now
            request.modified_by = self.users[0]
            return request

    @contextmanager
    def _change(self) -> Iterator[None]:
        """Every mutation runs under the lock and bumps the revision that readers cache against."""
        with self.lock:
            self.revision += 1
            yield

    # ----- generation ----------------------------------------------------------------------------

    def _generate(self, size: int, years: float, movie_share: float) -> None:
        rng = self._rng
        start = self.now - int(years * 365 * DAY)
        for n, name in enumerate(["alice", "bob", *(f"user{i}" for i in range(3, 9))], start=1):
            plex_id = 1 if n == 1 else 28_374_651 + n * 1_009
            self.users.append(User(n, plex_id, name, f"{name}@example.com", start))
        n_movies = round(size * movie_share)
        # Added times ascend with the ids, as in a real library that grew over the years.
        for at in sorted(rng.randrange(start, self.now - DAY) for _ in range(n_movies)):
            movie = self._new_movie(at, None)
            if rng.random() < 0.92:
                self._import_movie(movie, min(self.now - _LATEST_IMPORT, at + rng.randrange(60, 3 * DAY)))
        n_episodes = 0
        shows_added: list[Show] = []
        while n_episodes < size - n_movies:
            at = rng.randrange(start, self.now - DAY)
            show = self._new_show(at, None, rng.randint(1, 6), rng.randint(6, 13), import_files=False)
            shows_added.append(show)
            n_episodes += len(show.episodes)
        for episode in self.episodes.values():
            if rng.random() < 0.9:
                imported = episode.show.added + rng.randrange(0, 400 * DAY)
                self._import_episode(episode, min(self.now - _LATEST_IMPORT, imported))
        self._settle_history()
        self._index_plex(shows_added)
        self._generate_plays(size // 2, rng)
        targets: list[Movie | Show] = [*self.movies.values(), *self.shows.values()]
        for target in rng.sample(targets, min(len(targets), max(10, size // 50))):
            created = rng.randrange(min(target.added, self.now - 2 * DAY), self.now - DAY)
            status = rng.choice((1, 2, 2, 2, 3))
            request = self._request(
                target,
                rng.choice(self.users[1:]),
                created,
                created + rng.randrange(0, 3 * DAY) if status != 1 else created,
                status,
            )
            request.modified_by = self.users[0] if status != 1 else None
        self.requests = dict(sorted(self.requests.items()))

    def _index_plex(self, shows: list[Show]) -> None:
        """Give Plex items ratingKeys in the order Plex would have scanned them in."""
        leaves: list[tuple[int, int, Movie | Episode]] = [
            (m.file_added, 0, m) for m in self.movies.values() if m.file_added is not None
        ]
        leaves += [(e.file_added, 1, e) for e in self.episodes.values() if e.file_added is not None]
        leaves.sort(key=lambda t: (t[0], t[1], t[2].id))
        for at, _, item in leaves:
            if isinstance(item, Episode):
                self._ensure_show_in_plex(item.show, item.season, at)
            self._to_plex(item, at)
        for show in shows:
            if show.rating_key is not None:
                show.plex_updated = max(e.plex_added for e in show.episodes if e.rating_key is not None)

    def _generate_plays(self, count: int, rng: random.Random) -> None:
        leaves = [i for i in self.plex.values() if not isinstance(i, Show)]
        if not leaves:
            return
        plays: list[tuple[int, int, PlexLeaf, User]] = []
        for _ in range(count):
            item = leaves[rng.randrange(len(leaves))]
            minutes = rng.randint(20, 150)
            started = rng.randrange(item.plex_added, self.now - minutes * 60)
            plays.append((started, minutes, item, self.users[rng.randrange(len(self.users))]))
        plays.sort(key=lambda p: p[0])
        for started, minutes, item, user in plays:
            percent = rng.choice((100, 100, 100, 95, 60, 30))
            self.plays.append(self._play(item, user, started, started + minutes * 60, percent))

    # ----- building blocks -----------------------------------------------------------------------

    def _title(self) -> str:
        rng = self._rng
        title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        return title if rng.random() < 0.8 else f"{title} {rng.randint(2, 4)}"

    def _hex(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def _new_movie(self, at: int, title: str | None) -> Movie:
        rng = self._rng
        movie_id = self._id("movie")
        movie = Movie(
            movie_id,
            100_000 + movie_id,
            f"tt{1_000_000 + movie_id:07d}",
            title or self._title(),
            rng.randint(1960, 2025),
            rng.choice(_GENRES),
            rng.choice(_STUDIOS),
            self._hex(),
            at,
            None,
            None,
            rng.randrange(700_000_000, 60_000_000_000),
        )
        self.movies[movie_id] = movie
        return movie

    def _new_show(self, at: int, title: str | None, seasons: int, per_season: int, *, import_files: bool) -> Show:
        rng = self._rng
        show_id = self._id("show")
        show = Show(
            show_id,
            70_000 + show_id,
            500_000 + show_id,
            f"tt{2_000_000 + show_id:07d}",
            title or self._title(),
            rng.randint(1990, 2025),
            rng.choice(_GENRES),
            rng.choice(_NETWORKS),
            self._hex(),
            at,
        )
        self.shows[show_id] = show
        for season in range(1, seasons + 1):
            for number in range(1, per_season + 1):
                episode_id = self._id("episode")
                episode = Episode(
                    episode_id,
                    show,
                    season,
                    number,
                    f"Episode {number}",
                    4_000_000 + episode_id,
                    self._hex(),
                    at - rng.randrange(0, 3000 * DAY),
                    None,
                    None,
                    rng.randrange(300_000_000, 4_000_000_000),
                )
                show.episodes.append(episode)
                self.episodes[episode_id] = episode
                if import_files:
                    self._import_episode(episode, at)
        return show

    def _show_to_plex(self, show: Show) -> None:
        for episode in show.episodes:
            if episode.file_added is not None:
                self._ensure_show_in_plex(show, episode.season, episode.file_added)
                self._to_plex(episode, episode.file_added)
        show.plex_updated = self.now

    def _ensure_show_in_plex(self, show: Show, season: int, at: int) -> None:
        if show.rating_key is None:
            self._to_plex(show, at)
        if season not in show.season_keys:
            show.season_keys[season] = self._id("ratingKey")

    def _to_plex(self, item: Movie | Show | Episode, at: int) -> None:
        item.rating_key = self._id("ratingKey")
        item.plex_added = item.plex_updated = at
        self.plex[item.rating_key] = item
        self.revision += 1

    def _from_plex(self, item: Movie | Show | Episode) -> None:
        if item.rating_key is not None:
            del self.plex[item.rating_key]
            item.rating_key = None
        self.revision += 1

    def _play(self, item: PlexLeaf, user: User, started: int, stopped: int, percent: int) -> Play:
        if percent >= 90:
            # A show's watch state is its episodes': Plex updates both.
            for watched in (item, item.show) if isinstance(item, Episode) else (item,):
                watched.view_count += 1
                watched.last_viewed = stopped if watched.last_viewed is None else max(watched.last_viewed, stopped)
        assert item.rating_key is not None
        family = (
            (item.show.season_keys.get(item.season), item.show.rating_key)
            if isinstance(item, Episode)
            else (None, None)
        )
        return Play(self._id("play"), item, item.rating_key, user, started, stopped, percent, *family)

    def _request(self, target: Movie | Show, user: User, created: int, updated: int, status: int) -> Request:
        request = Request(self._id("request"), self.media_id(target), target, user, status, created, updated)
        self.requests[request.id] = request
        return request


#: One title in this many is in 4K too (which ones: a hash of the seed and the title's external id).
_UHD_SHARE = 3
#: What 4K files weigh, in bytes: movies, episodes.
_UHD_SIZES = {"movie": (15_000_000_000, 80_000_000_000), "episode": (2_500_000_000, 12_000_000_000)}


class Library4K(ArrLibrary):
    """The 4K Sonarr's and Radarr's library: a seeded third of the universe's shows and movies, copied
    with the same tvdb, tmdb and imdb ids, titles and dates (so a catalog can join the copies) but under
    ids of their own, with 2160p files of their own in ``/data/media/tv4k`` and ``/data/media/movies4k``,
    and a history of their own. The copies are not in Plex, which serves the default instances' files."""

    def __init__(self, universe: Universe) -> None:
        super().__init__(UHD, random.Random(f"{universe.seed}:{UHD}"), universe.lock)
        self.universe = universe
        self._copies: dict[tuple[str, int], Movie | Show | Episode] = {}  # by the original's kind and external id
        rng = self._rng
        titles: list[Movie | Show] = [*universe.movies.values(), *universe.shows.values()]
        # Ids ascend with the time a title was added, as in a library grown over the years.
        for title in sorted(filter(self.wants, titles), key=lambda t: (t.added, t.kind, t.id)):
            spread = 3 * DAY if isinstance(title, Movie) else 400 * DAY  # as the default instances fetched theirs
            for leaf, _ in self._copy(title):
                if rng.random() < 0.85:
                    self._import(leaf, min(self.now, title.added + rng.randrange(60, spread)))
        self._settle_history()
        self._generating = False

    @property
    def now(self) -> int:
        return self.universe.now

    def wants(self, title: Movie | Show) -> bool:
        """Whether a title is in 4K too: the same answer for a seed every run, and for a title added later."""
        return zlib.crc32(f"{self.universe.seed}:{_key(title)}".encode()) % _UHD_SHARE == 0

    def copy_of(self, item: Item) -> Item | None:
        """The copy here of a show, episode or movie of the universe; ``None`` if this library lacks it."""
        return self._copies.get(_key(item))  # type: ignore[return-value]

    def follow(self, title: Movie | Show) -> None:
        """Copy a title the universe has just added, if it is one of the share, with the files it came with."""
        if self.wants(title):
            for leaf, original in self._copy(title):
                if original.file_id is not None:
                    self._import(leaf, self.now)

    def _copy(self, title: Movie | Show) -> list[tuple[Movie | Episode, Movie | Episode]]:
        """Copy a movie, or a show with its episodes, without files; returns (copy, original) per movie or episode."""
        if isinstance(title, Movie):
            movie = Movie(
                self._id("movie"),
                title.tmdb_id,
                title.imdb_id,
                title.title,
                title.year,
                title.genre,
                title.studio,
                title.guid_hex,
                title.added,
                None,
                None,
                self._rng.randrange(*_UHD_SIZES["movie"]),
                instance=self.name,
            )
            self.movies[movie.id] = self._copies[_key(title)] = movie
            return [(movie, title)]
        show = Show(
            self._id("show"),
            title.tvdb_id,
            title.tmdb_id,
            title.imdb_id,
            title.title,
            title.year,
            title.genre,
            title.network,
            title.guid_hex,
            title.added,
            instance=self.name,
        )
        self.shows[show.id] = self._copies[_key(title)] = show
        for original in title.episodes:
            episode = Episode(
                self._id("episode"),
                show,
                original.season,
                original.number,
                original.title,
                original.tvdb_id,
                original.guid_hex,
                original.air_date,
                None,
                None,
                self._rng.randrange(*_UHD_SIZES["episode"]),
            )
            show.episodes.append(episode)
            self.episodes[episode.id] = self._copies[_key(original)] = episode
        return list(zip(show.episodes, title.episodes, strict=True))

    def _import(self, leaf: Movie | Episode, at: int) -> None:
        if isinstance(leaf, Movie):
            self._import_movie(leaf, at)
        else:
            self._import_episode(leaf, at)

    def _drop_movie(self, movie: Movie) -> None:
        super()._drop_movie(movie)
        del self._copies[_key(movie)]

    def _drop_series(self, show: Show) -> None:
        super()._drop_series(show)
        for key in (_key(show), *map(_key, show.episodes)):
            del self._copies[key]


def _key(item: Movie | Show | Episode) -> tuple[str, int]:
    """What names a title, or an episode, in every instance: its kind and its tmdb (movies) or tvdb id."""
    return item.kind, item.tmdb_id if isinstance(item, Movie) else item.tvdb_id


# Where files live: Plex's ``Part.file`` and Sonarr/Radarr's ``path`` must agree, so one place says.


def root_folder(title: Movie | Show) -> str:
    """Where its instance keeps it: ``/data/media/movies``, ``/data/media/tv``, or ``…/movies4k`` and
    ``…/tv4k`` for a 4K copy."""
    root = "/data/media/movies" if isinstance(title, Movie) else "/data/media/tv"
    return root if title.instance == DEFAULT_INSTANCE else root + title.instance


def movie_folder(movie: Movie) -> str:
    return f"{root_folder(movie)}/{movie.title} ({movie.year})"


def movie_file(movie: Movie) -> str:
    return f"{movie_folder(movie)}/{movie.title} ({movie.year}) {{tmdb-{movie.tmdb_id}}} [{quality(movie)[0]}].mkv"


def show_folder(show: Show) -> str:
    return f"{root_folder(show)}/{show.title}"


def episode_relative_file(episode: Episode) -> str:
    return (
        f"Season {episode.season:02d}/{episode.show.title} - S{episode.season:02d}E{episode.number:02d}"
        f" - {episode.title} {quality(episode)[0]}.mkv"
    )


def episode_file(episode: Episode) -> str:
    return f"{show_folder(episode.show)}/{episode_relative_file(episode)}"


#: Each instance's qualities; the 4K one has only 2160p files (ids as Sonarr's and Radarr's).
_QUALITIES = {
    DEFAULT_INSTANCE: (
        ("WEBDL-1080p", 1080, 3, "h264"),
        ("Bluray-1080p", 1080, 7, "h264"),
        ("WEBDL-2160p", 2160, 18, "h265"),
    ),
    UHD: (("WEBDL-2160p", 2160, 18, "h265"), ("Bluray-2160p", 2160, 19, "h265")),
}


def quality(item: Movie | Episode) -> tuple[str, int, int, str]:
    """(name, resolution, Sonarr/Radarr quality id, video codec), fixed per item."""
    qualities = _QUALITIES[(item.show if isinstance(item, Episode) else item).instance]
    return qualities[item.id % len(qualities)]
