"""Plex items as PMS renders them: in section listings, on their own metadata page, in recentlyAdded.

The Plex simulator serves these; the webhooks and the Tautulli simulator reuse them, since both
describe the same items.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

from smartplex_simulators._format import day
from smartplex_simulators.universe import Episode, Movie, Show, Universe, episode_file, movie_file, quality

SERVER_NAME = "Plexbox"
#: Section id -> (type, title, uuid, Plex type number of its top-level items, path).
SECTIONS = {
    "1": ("movie", "Movies", "5f3a9c1e-2b7d-4e8f-a1c3-9d0e7b6a5f42", 1, "/data/media/movies"),
    "2": ("show", "TV Shows", "0d6e2c4b-8a1f-4c3e-9b7d-2e5f1a6c8d90", 2, "/data/media/tv"),
}
#: Plex's type numbers, as ``type=`` takes them.
KIND_BY_TYPE = {1: "movie", 2: "show", 3: "season", 4: "episode"}
#: Which simulated section holds each kind of item.
SECTION_OF_KIND = {"movie": "1", "show": "2", "episode": "2"}


def _guids(item: Movie | Show | Episode) -> list[dict[str, str]]:
    if isinstance(item, Movie):
        return [{"id": f"imdb://{item.imdb_id}"}, {"id": f"tmdb://{item.tmdb_id}"}]
    if isinstance(item, Show):
        return [{"id": f"imdb://{item.imdb_id}"}, {"id": f"tmdb://{item.tmdb_id}"}, {"id": f"tvdb://{item.tvdb_id}"}]
    return [{"id": f"tvdb://{item.tvdb_id}"}]


def _media(item: Movie | Episode, duration: int, path: str) -> list[dict[str, Any]]:
    name, height, _, codec = quality(item)
    key = item.rating_key
    part = {
        "id": key,
        "key": f"/library/parts/{key}/{item.plex_added}/file.mkv",
        "duration": duration,
        "file": path,
        "size": item.size,
        "container": "mkv",
        "videoProfile": "main 10" if height == 2160 else "high",
    }
    return [
        {
            "id": key,
            "duration": duration,
            "bitrate": item.size * 8 // max(1, duration),
            "width": 3840 if height == 2160 else 1920,
            "height": height,
            "aspectRatio": 1.78,
            "audioChannels": 6,
            "audioCodec": "eac3",
            "videoCodec": codec,
            "videoResolution": "4k" if height == 2160 else "1080",
            "container": "mkv",
            "videoFrameRate": "24p",
            "videoProfile": part["videoProfile"],
            "Part": [part],
        }
    ]


def _watch_state(data: dict[str, Any], item: Movie | Show | Episode) -> None:
    if item.view_count:
        data["viewCount"] = item.view_count
    if item.last_viewed is not None:
        data["lastViewedAt"] = item.last_viewed


def metadata(item: Movie | Show | Episode, include_guids: bool = True) -> dict[str, Any]:
    """One item as PMS lists it in a section; webhooks embed the same object."""
    key = item.rating_key
    if isinstance(item, Movie):
        duration = 5_400_000 + item.id % 60 * 60_000
        data: dict[str, Any] = {
            "ratingKey": str(key),
            "key": f"/library/metadata/{key}",
            "guid": f"plex://movie/{item.guid_hex}",
            "slug": slug(item.title),
            "studio": item.studio,
            "type": "movie",
            "title": item.title,
            "contentRating": "PG-13",
            "summary": f"{item.title}, a {item.genre.lower()} film.",
            "rating": 7.5,
            "audienceRating": 8.1,
        }
        _watch_state(data, item)
        data.update(
            {
                "year": item.year,
                "tagline": "",
                "thumb": f"/library/metadata/{key}/thumb/{item.plex_updated}",
                "art": f"/library/metadata/{key}/art/{item.plex_updated}",
                "duration": duration,
                "originallyAvailableAt": f"{item.year}-06-01",
                "addedAt": item.plex_added,
                "updatedAt": item.plex_updated,
                "audienceRatingImage": "rottentomatoes://image.rating.upright",
                "ratingImage": "rottentomatoes://image.rating.ripe",
                "Media": _media(item, duration, movie_file(item)),
                "Genre": [{"tag": item.genre}],
                "Country": [{"tag": "United States of America"}],
                **_credits(item.id, "Director", "Writer", "Role"),
            }
        )
    elif isinstance(item, Show):
        leaves = [e for e in item.episodes if e.rating_key is not None]
        data = {
            "ratingKey": str(key),
            "key": f"/library/metadata/{key}/children",
            "guid": f"plex://show/{item.guid_hex}",
            "slug": slug(item.title),
            "studio": item.network,
            "type": "show",
            "title": item.title,
            "contentRating": "TV-MA",
            "summary": f"{item.title}, a {item.genre.lower()} series.",
            "index": 1,
            "audienceRating": 8.4,
        }
        _watch_state(data, item)
        data.update(
            {
                "year": item.year,
                "tagline": "",
                "thumb": f"/library/metadata/{key}/thumb/{item.plex_updated}",
                "art": f"/library/metadata/{key}/art/{item.plex_updated}",
                "theme": f"/library/metadata/{key}/theme/{item.plex_updated}",
                "duration": 2_820_000,
                "originallyAvailableAt": f"{item.year}-01-20",
                "leafCount": len(leaves),
                "viewedLeafCount": sum(1 for e in leaves if e.view_count),
                "childCount": len(item.season_keys),
                "addedAt": item.plex_added,
                "updatedAt": item.plex_updated,
                "audienceRatingImage": "themoviedb://image.rating",
                "Genre": [{"tag": item.genre}],
                "Country": [{"tag": "United States of America"}],
                **_credits(item.id, "Role"),
            }
        )
    else:
        show = item.show
        season_key = show.season_keys[item.season]
        duration = 2_700_000
        data = {
            "ratingKey": str(key),
            "key": f"/library/metadata/{key}",
            "parentRatingKey": str(season_key),
            "grandparentRatingKey": str(show.rating_key),
            "guid": f"plex://episode/{item.guid_hex}",
            "parentGuid": f"plex://season/{season_guid(show, item.season)}",
            "grandparentGuid": f"plex://show/{show.guid_hex}",
            "grandparentSlug": slug(show.title),
            "type": "episode",
            "title": item.title,
            "grandparentKey": f"/library/metadata/{show.rating_key}",
            "parentKey": f"/library/metadata/{season_key}",
            "grandparentTitle": show.title,
            "parentTitle": f"Season {item.season}",
            "contentRating": "TV-MA",
            "summary": "",
            "index": item.number,
            "parentIndex": item.season,
            "audienceRating": 8.0,
        }
        _watch_state(data, item)
        data.update(
            {
                "year": show.year,
                "thumb": f"/library/metadata/{key}/thumb/{item.plex_updated}",
                "art": f"/library/metadata/{show.rating_key}/art/{show.plex_updated}",
                "parentThumb": f"/library/metadata/{season_key}/thumb/{show.plex_updated}",
                "grandparentThumb": f"/library/metadata/{show.rating_key}/thumb/{show.plex_updated}",
                "grandparentArt": f"/library/metadata/{show.rating_key}/art/{show.plex_updated}",
                "duration": duration,
                "originallyAvailableAt": day(item.air_date),
                "addedAt": item.plex_added,
                "updatedAt": item.plex_updated,
                "audienceRatingImage": "themoviedb://image.rating",
                "Media": _media(item, duration, episode_file(item)),
                **_credits(item.id, "Director", "Writer"),
            }
        )
    if include_guids:
        data["Guid"] = _guids(item)
    return data


_PEOPLE = ("Ada Brennan", "Tomas Okafor", "Mei Lindqvist", "Rafael Duarte", "Noor Haddad", "Ivan Petrov")


def _credits(seed: int, *roles: str) -> dict[str, list[dict[str, str]]]:
    """A stable person per role and item: the tag arrays Plex lists with every item."""
    return {role: [{"tag": _PEOPLE[(seed + n) % len(_PEOPLE)]}] for n, role in enumerate(roles)}


_TAG_FILTERS = {"Genre": "genre", "Country": "country", "Director": "director", "Writer": "writer", "Role": "actor"}
_PEOPLE_TAGS = ("Director", "Writer", "Role")


def _tag(kind: str, name: str) -> dict[str, Any]:
    """A tag as the item's own metadata page lists it: with its id and filter (people: a tagKey)."""
    tag_id = 1000 + zlib.crc32(name.encode()) % 9000
    tag: dict[str, Any] = {"id": tag_id, "filter": f"{_TAG_FILTERS[kind]}={tag_id}", "tag": name}
    if kind in _PEOPLE_TAGS:
        tag["tagKey"] = f"{zlib.crc32(name.encode()):08x}" * 3
    if kind == "Role":
        tag["role"] = "Lead"
    return tag


def detailed_metadata(item: Movie | Show | Episode) -> dict[str, Any]:
    """One item as ``/library/metadata/{key}`` and webhooks show it: richer tags, ratings, section."""
    data = metadata(item)
    if isinstance(item, Episode):
        data["grandparentTheme"] = f"/library/metadata/{item.show.rating_key}/theme/{item.show.plex_updated}"
        data.update(_credits(item.id + 2, "Role"))
    for kind in _TAG_FILTERS:
        if kind in data:
            data[kind] = [_tag(kind, t["tag"]) for t in data[kind]]
    data["Rating"] = [{"image": data["audienceRatingImage"], "value": data["audienceRating"], "type": "audience"}]
    section, title, _ = section_of(item)
    data.update(
        {
            "librarySectionTitle": title,
            "librarySectionID": int(section),
            "librarySectionKey": f"/library/sections/{section}",
        }
    )
    return data


@dataclass(frozen=True)
class Season:
    """A season as recentlyAdded groups new episodes under it (not stored: derived from episodes)."""

    show: Show
    number: int

    @property
    def rating_key(self) -> int:
        return self.show.season_keys[self.number]

    @property
    def episodes(self) -> list[Episode]:
        return [e for e in self.show.episodes if e.season == self.number and e.rating_key is not None]

    @property
    def added(self) -> int:
        return max(e.plex_added for e in self.episodes)


def recently_added(universe: Universe, section: str | None = None) -> list[Movie | Season]:
    """Newest first: movies, and seasons for TV (new episodes come back grouped by season)."""
    entries: list[Movie | Season] = []
    if section in (None, "1"):
        entries += [m for m in universe.plex_section("movie") if isinstance(m, Movie)]
    if section in (None, "2"):
        for show in universe.plex_section("show"):
            assert isinstance(show, Show)
            seasons = {e.season for e in show.episodes if e.rating_key is not None}
            entries += [Season(show, n) for n in sorted(seasons)]
    return sorted(
        entries, key=lambda e: (e.added if isinstance(e, Season) else e.plex_added, e.rating_key), reverse=True
    )


#: What recentlyAdded shows of a movie: less than a section listing.
_RECENT_MOVIE_KEYS = (
    "ratingKey",
    "key",
    "guid",
    "slug",
    "studio",
    "type",
    "title",
    "contentRating",
    "year",
    "thumb",
    "art",
    "duration",
    "originallyAvailableAt",
    "addedAt",
    "updatedAt",
)


def recent_metadata(entry: Movie | Season) -> dict[str, Any]:
    section_id = "1" if isinstance(entry, Movie) else "2"
    _, title, uuid, _, _ = SECTIONS[section_id]
    data: dict[str, Any] = {
        "allowSync": True,
        "librarySectionID": int(section_id),
        "librarySectionTitle": title,
        "librarySectionUUID": uuid,
    }
    if isinstance(entry, Movie):
        full = metadata(entry, include_guids=False)
        return {**data, **{key: full[key] for key in _RECENT_MOVIE_KEYS}}
    show, episodes = entry.show, entry.episodes
    return {
        **data,
        "ratingKey": str(entry.rating_key),
        "key": f"/library/metadata/{entry.rating_key}/children",
        "parentRatingKey": str(show.rating_key),
        "guid": f"plex://season/{season_guid(show, entry.number)}",
        "parentGuid": f"plex://show/{show.guid_hex}",
        "parentSlug": slug(show.title),
        "type": "season",
        "title": f"Season {entry.number}",
        "parentKey": f"/library/metadata/{show.rating_key}",
        "parentTitle": show.title,
        "summary": "",
        "index": entry.number,
        "parentIndex": 1,
        "year": show.year,
        "thumb": f"/library/metadata/{entry.rating_key}/thumb/{show.plex_updated}",
        "art": f"/library/metadata/{show.rating_key}/art/{show.plex_updated}",
        "parentThumb": f"/library/metadata/{show.rating_key}/thumb/{show.plex_updated}",
        "leafCount": len(episodes),
        "viewedLeafCount": sum(1 for e in episodes if e.view_count),
        "addedAt": entry.added,
        "updatedAt": show.plex_updated,
    }


def season_guid(show: Show, season: int) -> str:
    return f"{show.guid_hex[:20]}{season:04x}"


def section_of(item: Movie | Show | Episode) -> tuple[str, str, str]:
    """(section id, title, type) of the section holding ``item``."""
    section = SECTION_OF_KIND[item.kind]
    kind, title, *_ = SECTIONS[section]
    return section, title, kind


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
