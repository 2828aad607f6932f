"""Each service's real webhook for a simulated change, built and sent as the service sends it.

Bodies follow the services' own serialisers (see ``tests/fixtures/webhooks``): Plex posts
multipart/form-data with a ``payload`` JSON field and, for some events, a ``thumb`` JPEG; Sonarr
and Radarr post JSON with PascalCase ``eventType``; Overseerr fills its default template (every
value a string); Tautulli fills this project's suggested templates.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from smartplex.instances import DEFAULT_INSTANCES, Instance
from smartplex_simulators._arr import EXTRA_INSTANCES, WEBHOOK_CONNECTION, NotificationStatus, instance_name
from smartplex_simulators._format import day, iso_seconds, iso_ticks
from smartplex_simulators.overseerr import MEDIA_STATUS_NAMES, media_status
from smartplex_simulators.plex_items import SERVER_NAME, detailed_metadata, metadata, section_of
from smartplex_simulators.universe import (
    Episode,
    Movie,
    Play,
    Request,
    Show,
    Universe,
    User,
    episode_file,
    episode_relative_file,
    movie_file,
    movie_folder,
    quality,
    show_folder,
)

log = logging.getLogger(__name__)

#: A minimal JFIF JPEG, enough for a receiver that stores or discards the poster.
THUMB_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010101004800480000ffdb004300030202020202030202020303030304060404040404080606"
    "050609080a0a090809090a0c0f0c0a0b0e0b09090d110d0e0f101011100a0c12131210130f101010ffc9000b080001000101"
    "011100ffcc000600101005ffda0008010100003f00d2cf20ffd9"
)
#: Plex attaches a poster to these events only.
_PLEX_THUMB_EVENTS = frozenset({"media.play", "media.rate", "library.new", "library.on.deck", "playback.started"})
_USER_AGENTS = {
    "plex": "PlexMediaServer/1.40.2.8395-c67dce28e",
    "tautulli": "python-requests/2.32.3",
    "sonarr": "Sonarr/4.0.19.2979 (ubuntu 22.04)",
    "radarr": "Radarr/5.28.0.10274 (ubuntu 22.04)",
    "overseerr": "axios/1.3.4",
}
_ENGLISH = {"id": 1, "name": "English"}


@dataclass(frozen=True)
class Hook:
    event: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    instance_id: str
    event: str
    status: int | None
    error: str | None = None


#: The error of a webhook lost on purpose (``drop_rate``).
DROPPED = "dropped on purpose (--drop-webhooks)"
#: The kinds whose connections back off after failures (:class:`NotificationStatus`).
_BACKING_OFF_KINDS = frozenset({"sonarr", "radarr"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    """Posts hooks to a URL per instance (``sonarr``, ``sonarr/4k``); remembers what it delivered for tests
    and the demo.

    A failed webhook (no connection, or a status of 400 or more) is never retried. Sonarr and Radarr
    also back off, by ``clock``: after failures their connection is disabled for a while
    (:class:`NotificationStatus`), and the webhooks meanwhile are dropped unsent. Plex, Tautulli and
    Overseerr post every webhook. ``drop_rate`` loses that share of all webhooks on purpose, unnoticed
    by the sending service, chosen by a generator seeded with ``seed``.
    """

    def __init__(
        self,
        targets: Mapping[str, str],
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        drop_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"drop_rate is a share of the webhooks, from 0 to 1, not {drop_rate}")
        self.targets = dict(targets)
        self.client = client or httpx.Client(timeout=5.0)
        self.clock = clock
        self.drop_rate = drop_rate
        self.deliveries: list[Delivery] = []
        #: When the simulated services started: for 15 minutes they back off less. Set it again to model a
        #: restart; the statuses survive one, as Sonarr keeps them in its database.
        self.started = clock()
        self._statuses: dict[str, NotificationStatus] = {}
        self._random = random.Random(seed)
        # Mutations send from worker threads while the health endpoints read the statuses.
        self._lock = threading.Lock()

    @classmethod
    def from_template(
        cls,
        template: str,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        drop_rate: float = 0.0,
        seed: int = 0,
    ) -> WebhookSender:
        """One target per instance from a URL where ``{kind}`` becomes the instance's kind (``sonarr``)
        and ``{instance_path}`` what follows it for an extra instance: ``/4k``, or nothing for the default
        one (``.../api/webhooks/{kind}{instance_path}``). Without ``{instance_path}`` the extra instances
        get no target: their webhooks would reach the default instance's URL."""
        instances = (*DEFAULT_INSTANCES, *(EXTRA_INSTANCES if "{instance_path}" in template else ()))

        def url(i: Instance) -> str:
            try:
                return template.format(kind=i.kind.name, instance_path="" if i.is_default else f"/{i.name}")
            except KeyError as exc:
                # A bare KeyError would not say it is the URL template at fault (``{service}`` was its old name).
                raise ValueError(
                    f"webhook URL {template!r}: no placeholder {{{exc.args[0]}}}; use {{kind}} and {{instance_path}}"
                ) from None

        return cls({i.id: url(i) for i in instances}, client, clock=clock, drop_rate=drop_rate, seed=seed)

    def disabled(self, instance_id: str) -> bool:
        """Whether the instance's connection is backing off now (only a Sonarr's or a Radarr's does)."""
        with self._lock:
            status = self._statuses.get(instance_id)
            return status is not None and status.disabled(self.clock())

    def statuses(self) -> dict[str, NotificationStatus]:
        """A copy of each Sonarr's and Radarr's connection status, by instance id, for those with a target."""
        with self._lock:
            return {
                instance_id: replace(self._statuses.get(instance_id, NotificationStatus()))
                for instance_id in self.targets
                if Instance.parse(instance_id).kind.name in _BACKING_OFF_KINDS
            }

    def send(self, instance_id: str, hook: Hook) -> Delivery | None:
        url = self.targets.get(instance_id)
        if url is None:
            return None
        kind = Instance.parse(instance_id).kind.name
        backs_off = kind in _BACKING_OFF_KINDS
        with self._lock:
            status = self._statuses.setdefault(instance_id, NotificationStatus()) if backs_off else None
            skipped = self._skipped(status)
        if skipped is not None:
            log.debug("webhook %s %s not sent: %s", instance_id, hook.event, skipped)
            delivery = Delivery(instance_id, hook.event, None, skipped)
        else:
            delivery = self._post(instance_id, kind, url, hook)
            if status is not None:
                with self._lock:
                    if delivery.status is not None and delivery.status < 400:
                        status.record_success()
                    else:
                        status.record_failure(self.clock(), self.started)
        self.deliveries.append(delivery)
        return delivery

    def _skipped(self, status: NotificationStatus | None) -> str | None:
        """Why a webhook is not sent: its connection is backing off, or it is one to lose on purpose."""
        if status is not None and status.disabled(self.clock()):
            # Sonarr's and Radarr's own words (NotificationFactory), the time in UTC.
            till = f"{status.disabled_till:%Y-%m-%dT%H:%M:%SZ}"
            return f"Temporarily ignoring notification {WEBHOOK_CONNECTION} till {till} due to recent failures."
        if self._random.random() < self.drop_rate:
            return DROPPED
        return None

    def _post(self, instance_id: str, kind: str, url: str, hook: Hook) -> Delivery:
        headers = {"User-Agent": _USER_AGENTS[kind]}
        try:
            if kind == "plex":
                # Always multipart, even without a poster: `payload` as a plain (filename-less) field.
                parts: dict[str, Any] = {"payload": (None, json.dumps(hook.body))}
                if hook.event in _PLEX_THUMB_EVENTS:
                    parts["thumb"] = ("thumb.jpg", THUMB_JPEG, "image/jpeg")
                response = self.client.post(url, files=parts, headers=headers)
            else:
                response = self.client.post(url, json=hook.body, headers={**headers, "Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("webhook %s %s to %s failed: %s", instance_id, hook.event, url.split("?")[0], exc)
            return Delivery(instance_id, hook.event, None, f"{type(exc).__name__}: {exc}")
        if response.status_code >= 400:
            log.warning(
                "webhook %s %s to %s: HTTP %d", instance_id, hook.event, url.split("?")[0], response.status_code
            )
        return Delivery(instance_id, hook.event, response.status_code)


# ----- Plex -----------------------------------------------------------------------------------------


def _account(user: User) -> dict[str, Any]:
    return {
        "id": user.plex_id,
        "thumb": f"https://plex.tv/users/{user.plex_id:016x}/avatar?c={user.created}",
        "title": user.username,
    }


def plex_event(
    event: str, item: Movie | Show | Episode, universe: Universe, user: User, play: Play | None = None
) -> Hook:
    """A Plex event as delivered to the server owner's webhook."""
    meta = {"librarySectionType": section_of(item)[2], **detailed_metadata(item)}
    # Webhooks leave out the media parts, and an episode's cast.
    meta.pop("Media", None)
    if isinstance(item, Episode):
        del meta["Role"]
    body: dict[str, Any] = {
        "event": event,
        "user": user is universe.users[0],
        "owner": True,
        "Account": _account(user),
        "Server": {"title": SERVER_NAME, "uuid": universe.machine_id},
    }
    if play is not None:
        body["Player"] = {
            "local": True,
            "publicAddress": "203.0.113.24",
            "title": "Living Room Shield",
            "uuid": f"{play.user.plex_id:032x}",
        }
        meta["viewOffset"] = (play.stopped - play.started) * 1000 * play.percent // 100
    body["Metadata"] = meta
    return Hook(event, body)


# ----- Sonarr ---------------------------------------------------------------------------------------


def _arr_envelope(event: str, app_name: str, item: Movie | Show, body: dict[str, Any]) -> Hook:
    # The base class's properties serialise after the event's own.
    body.update({"eventType": event, "instanceName": instance_name(app_name, item.instance), "applicationUrl": ""})
    return Hook(event, body)


def _images(kind: str, arr_id: int) -> list[dict[str, str]]:
    return [
        {
            "coverType": "poster",
            "url": f"/MediaCover/{arr_id}/poster.jpg",
            "remoteUrl": f"https://image.example.org/{kind}/{arr_id}/poster.jpg",
        }
    ]


def sonarr_series(show: Show) -> dict[str, Any]:
    return {
        "id": show.id,
        "title": show.title,
        "titleSlug": f"show-{show.id}",
        "path": show_folder(show),
        "tvdbId": show.tvdb_id,
        "tvMazeId": 0,
        "tmdbId": show.tmdb_id,
        "imdbId": show.imdb_id,
        "type": "standard",
        "year": show.year,
        "genres": [show.genre],
        "images": _images("series", show.id),
        "tags": [],
        "originalLanguage": _ENGLISH,
    }


def _sonarr_episode(episode: Episode) -> dict[str, Any]:
    return {
        "id": episode.id,
        "episodeNumber": episode.number,
        "seasonNumber": episode.season,
        "title": episode.title,
        "overview": "",
        "airDate": day(episode.air_date),
        "airDateUtc": iso_seconds(episode.air_date),
        "seriesId": episode.show.id,
        "tvdbId": episode.tvdb_id,
    }


def _media_info(item: Movie | Episode) -> dict[str, Any]:
    _, height, _, codec = quality(item)
    return {
        "audioChannels": 5.1,
        "audioCodec": "EAC3",
        "audioLanguages": ["eng"],
        "height": height,
        "width": 3840 if height == 2160 else 1920,
        "subtitles": ["eng"],
        "videoCodec": codec,
        "videoDynamicRange": "",
        "videoDynamicRangeType": "",
    }


def sonarr_episode_file(episode: Episode) -> dict[str, Any]:
    name = quality(episode)[0]
    assert episode.file_id is not None and episode.file_added is not None
    return {
        "id": episode.file_id,
        "relativePath": episode_relative_file(episode),
        "path": episode_file(episode),
        "quality": name,
        "qualityVersion": 1,
        "releaseGroup": "SIM",
        "sceneName": f"{episode.show.title}.S{episode.season:02d}E{episode.number:02d}.{name}-SIM",
        "size": episode.size,
        "dateAdded": iso_ticks(episode.file_added),
        "languages": [_ENGLISH],
        "mediaInfo": _media_info(episode),
    }


def sonarr_series_add(show: Show) -> Hook:
    return _arr_envelope("SeriesAdd", "Sonarr", show, {"series": sonarr_series(show)})


def sonarr_series_delete(show: Show) -> Hook:
    return _arr_envelope("SeriesDelete", "Sonarr", show, {"series": sonarr_series(show), "deletedFiles": True})


def sonarr_episode_file_delete(episode: Episode, file_payload: dict[str, Any]) -> Hook:
    return _arr_envelope(
        "EpisodeFileDelete",
        "Sonarr",
        episode.show,
        {
            "series": sonarr_series(episode.show),
            "episodes": [_sonarr_episode(episode)],
            "episodeFile": file_payload,
            "deleteReason": "manual",
        },
    )


def sonarr_download(episode: Episode) -> Hook:
    release = sonarr_episode_file(episode)["sceneName"]
    file_payload = {**sonarr_episode_file(episode), "sourcePath": f"/data/usenet/complete/tv/{release}/{release}.mkv"}
    return _arr_envelope(
        "Download",
        "Sonarr",
        episode.show,
        {
            "series": sonarr_series(episode.show),
            "episodes": [_sonarr_episode(episode)],
            "episodeFile": file_payload,
            "isUpgrade": False,
            "downloadClient": "SABnzbd",
            "downloadClientType": "SABnzbd",
            "downloadId": f"SABnzbd_nzo_{episode.file_id:010x}",
            "customFormatInfo": {"customFormats": [], "customFormatScore": 0},
            "release": {
                "releaseTitle": release,
                "indexer": "NZBgeek (Prowlarr)",
                "size": episode.size,
                "releaseType": "singleEpisode",
            },
        },
    )


# ----- Radarr ---------------------------------------------------------------------------------------


def _radarr_movie(movie: Movie) -> dict[str, Any]:
    return {
        "id": movie.id,
        "title": movie.title,
        "year": movie.year,
        "releaseDate": f"{movie.year}-06-01",
        "folderPath": movie_folder(movie),
        "tmdbId": movie.tmdb_id,
        "imdbId": movie.imdb_id,
        "overview": f"{movie.title}, a {movie.genre.lower()} film.",
        "genres": [movie.genre],
        "images": _images("movie", movie.id),
        "tags": [],
        "originalLanguage": _ENGLISH,
    }


def radarr_movie_file(movie: Movie) -> dict[str, Any]:
    name = quality(movie)[0]
    assert movie.file_id is not None and movie.file_added is not None
    path = movie_file(movie)
    return {
        "id": movie.file_id,
        "relativePath": path.rsplit("/", 1)[1],
        "path": path,
        "quality": name,
        "qualityVersion": 1,
        "releaseGroup": "SIM",
        "sceneName": f"{movie.title}.{movie.year}.{name}-SIM",
        "indexerFlags": "0",
        "size": movie.size,
        "dateAdded": iso_ticks(movie.file_added),
        "languages": [_ENGLISH],
        "mediaInfo": _media_info(movie),
    }


def radarr_movie_added(movie: Movie) -> Hook:
    return _arr_envelope("MovieAdded", "Radarr", movie, {"movie": _radarr_movie(movie), "addMethod": "manual"})


def radarr_movie_delete(movie: Movie, folder_size: int) -> Hook:
    return _arr_envelope(
        "MovieDelete",
        "Radarr",
        movie,
        {"movie": _radarr_movie(movie), "deletedFiles": folder_size > 0, "movieFolderSize": folder_size},
    )


def radarr_movie_file_delete(movie: Movie, file_payload: dict[str, Any]) -> Hook:
    return _arr_envelope(
        "MovieFileDelete",
        "Radarr",
        movie,
        {"movie": _radarr_movie(movie), "movieFile": file_payload, "deleteReason": "manual"},
    )


def radarr_download(movie: Movie) -> Hook:
    file_payload = radarr_movie_file(movie)
    release = file_payload["sceneName"]
    file_payload["sourcePath"] = f"/data/torrents/movies/{release}/{release}.mkv"
    return _arr_envelope(
        "Download",
        "Radarr",
        movie,
        {
            "movie": _radarr_movie(movie),
            "remoteMovie": {"tmdbId": movie.tmdb_id, "imdbId": movie.imdb_id, "title": movie.title, "year": movie.year},
            "movieFile": file_payload,
            "isUpgrade": False,
            "downloadClient": "qBittorrent",
            "downloadClientType": "qBittorrent",
            "downloadId": f"{movie.file_id:040X}",
            "customFormatInfo": {"customFormats": [], "customFormatScore": 0},
            "release": {
                "releaseTitle": release,
                "indexer": "TorrentLeech (Prowlarr)",
                "size": movie.size,
                "indexerFlags": [],
            },
        },
    )


# ----- Overseerr ------------------------------------------------------------------------------------

_OVERSEERR_EVENTS = {
    "MEDIA_PENDING": "New {kind} Request",
    "MEDIA_APPROVED": "{kind} Request Approved",
    "MEDIA_DECLINED": "{kind} Request Declined",
    "MEDIA_AVAILABLE": "{kind} Request Now Available",
}


def overseerr_notification(notification_type: str, request: Request) -> Hook:
    """The default template, filled in: every substituted value is a string."""
    target, user = request.target, request.user
    kind, noun = ("Series", "series") if isinstance(target, Show) else ("Movie", "film")
    body: dict[str, Any] = {
        "notification_type": notification_type,
        "event": _OVERSEERR_EVENTS[notification_type].format(kind=kind),
        "subject": f"{target.title} ({target.year})",
        "message": f"{target.title}, a {target.genre.lower()} {noun}.",
        "image": f"https://image.tmdb.org/t/p/w600_and_h900_bestv2/{target.guid_hex[:12]}.jpg",
        "media": {
            "media_type": "tv" if isinstance(target, Show) else "movie",
            "tmdbId": str(target.tmdb_id),
            "tvdbId": str(target.tvdb_id) if isinstance(target, Show) else "",
            "status": MEDIA_STATUS_NAMES[media_status(target)],
            "status4k": "UNKNOWN",
        },
        "request": {
            "request_id": str(request.id),
            "requestedBy_email": user.email,
            "requestedBy_username": user.username,
            "requestedBy_avatar": _account(user)["thumb"],
            "requestedBy_settings_discordId": "",
            "requestedBy_settings_telegramChatId": "",
        },
        "issue": None,
        "comment": None,
        "extra": [],
    }
    if isinstance(target, Show):
        seasons = ", ".join(str(s) for s in sorted({e.season for e in target.episodes}))
        body["extra"] = [{"name": "Requested Seasons", "value": seasons}]
    return Hook(notification_type, body)


# ----- Tautulli -------------------------------------------------------------------------------------


def _tautulli_common(action: str, item: Movie | Show | Episode, universe: Universe) -> dict[str, str]:
    moment = datetime.fromtimestamp(universe.now, UTC)
    section, library, _ = section_of(item)
    # For episodes Tautulli reports the show's external ids.
    owner = item.show if isinstance(item, Episode) else item
    if isinstance(item, Episode):
        place = {
            "title": f"{owner.title} - {item.title}",
            "show_name": owner.title,
            "season_num": str(item.season),
            "episode_num": str(item.number),
        }
        parents = {
            "parent_rating_key": str(item.show.season_keys[item.season]),
            "grandparent_rating_key": str(item.show.rating_key),
        }
    else:
        place = {
            "title": item.title,
            "show_name": item.title if isinstance(item, Show) else "",
            "season_num": "0",
            "episode_num": "0",
        }
        parents = {"parent_rating_key": "", "grandparent_rating_key": ""}
    return {
        "action": action,
        "utctime": moment.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "unixtime": str(universe.now),
        "server_name": SERVER_NAME,
        "server_machine_id": universe.machine_id,
        "media_type": item.kind,
        "library_name": library,
        "section_id": section,
        **place,
        "year": str(owner.year),
        "rating_key": str(item.rating_key or ""),
        **parents,
        "guid": metadata(item, include_guids=False)["guid"],
        "plex_id": item.guid_hex,
        "imdb_id": owner.imdb_id,
        "themoviedb_id": str(owner.tmdb_id),
        "thetvdb_id": str(owner.tvdb_id) if isinstance(owner, Show) else "",
        "tvmaze_id": "",
    }


def tautulli_playback(action: str, play: Play, universe: Universe) -> Hook:
    item = play.item
    fields = _tautulli_common(action, item, universe)
    user = play.user
    duration_ms = (play.stopped - play.started) * 1000
    body = {
        **{k: fields[k] for k in ("action", "utctime", "unixtime", "server_name", "server_machine_id")},
        "session_key": str(play.id % 1000),
        "session_id": f"{play.id:024x}",
        "user_id": str(user.plex_id),
        "user": user.username.capitalize(),
        "username": user.username,
        "user_email": user.email,
        "player": "Living Room Shield",
        "machine_id": f"{user.plex_id:032x}",
        "platform": "Android",
        "product": "Plex for Android (TV)",
        "ip_address": "192.168.1.42",
        "stream_location": "lan",
        "transcode_decision": "Direct Play",
        **{k: fields[k] for k in ("media_type", "library_name", "section_id", "title", "show_name")},
        "episode_name": item.title if isinstance(item, Episode) else "",
        **{
            k: v
            for k, v in fields.items()
            if k
            in (
                "season_num",
                "episode_num",
                "year",
                "rating_key",
                "parent_rating_key",
                "grandparent_rating_key",
                "guid",
                "plex_id",
                "imdb_id",
                "themoviedb_id",
                "thetvdb_id",
                "tvmaze_id",
            )
        },
        "duration_ms": str(duration_ms),
        "view_offset": str(duration_ms * play.percent // 100),
        "progress_percent": str(play.percent),
        "added_date": day(item.plex_added),
        "updated_date": day(item.plex_updated),
        "last_viewed_date": day(item.last_viewed) if item.last_viewed else "",
    }
    return Hook(action, body)


def tautulli_created(item: Movie | Show, universe: Universe) -> Hook:
    fields = _tautulli_common("created", item, universe)
    body = {
        **fields,
        "added_date": day(item.plex_added),
        "updated_date": day(item.plex_updated),
        "file": movie_file(item) if isinstance(item, Movie) else "",
        "poster_url": f"https://i.ibb.co/sim/{item.rating_key}.jpg",
    }
    return Hook("created", body)
