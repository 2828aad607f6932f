"""Mutations send each service's real webhook, in the shape of the recorded examples."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartplex_simulators import Simulation, Universe
from smartplex_simulators.webhooks import THUMB_JPEG, WebhookSender
from tests.simulators.test_shapes import shape_problems

WEBHOOK_FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"


class Receiver:
    """Stands in for the webhook API: records what each instance (``sonarr``, ``sonarr/4k``) posted."""

    def __init__(self) -> None:
        self.received: list[tuple[str, httpx.Request]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append((request.url.path.removeprefix("/api/webhooks/"), request))
        return httpx.Response(202)

    def bodies(self, instance_id: str) -> list[dict[str, Any]]:
        return [_body(r) for sender, r in self.received if sender == instance_id]

    def event(self, instance_id: str, key: str, value: str) -> dict[str, Any]:
        return next(b for b in self.bodies(instance_id) if b.get(key) == value)


def _parts(request: httpx.Request) -> dict[str, tuple[str, bytes]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    return {
        part.get_param("name", header="content-disposition"): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_parts()
    }


def _body(request: httpx.Request) -> dict[str, Any]:
    if request.headers["content-type"].startswith("multipart/form-data"):
        return json.loads(_parts(request)["payload"][1])
    return json.loads(request.content)


def _example(kind: str, name: str) -> Any:
    return json.loads((WEBHOOK_FIXTURES / kind / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def receiver() -> Receiver:
    """Runs every kind of mutation once against a fresh universe."""
    receiver = Receiver()
    client = httpx.Client(transport=httpx.MockTransport(receiver))
    sim = Simulation(Universe(size=300, seed=3))
    sim.webhooks = WebhookSender.from_template("http://hooks.test/api/webhooks/{kind}?token=t", client)
    movie = sim.add_movie("Hooked")
    show = sim.add_show("Hooked Show", seasons=2, episodes_per_season=2)
    sim.record_play(show.episodes[0].rating_key, percent=100)  # type: ignore[arg-type]
    sim.record_play(show.episodes[2].rating_key, percent=40)  # type: ignore[arg-type]
    sim.approve_request(sim.request_media(series_id=show.id).id)
    sim.approve_request(sim.request_media(movie_id=movie.id).id, approve=False)
    sim.delete_episode_file(show.episodes[1].id)
    sim.delete_movie_file(movie.id)
    sim.delete_movie(movie.id)
    sim.delete_series(show.id)
    assert all(d.status == 202 for d in sim.webhooks.deliveries)
    return receiver


EXPECTED = [
    ("radarr", "eventType", "MovieAdded", "MovieAdded"),
    ("radarr", "eventType", "Download", "Download"),
    ("radarr", "eventType", "MovieFileDelete", "MovieFileDelete"),
    ("radarr", "eventType", "MovieDelete", "MovieDelete"),
    ("sonarr", "eventType", "SeriesAdd", "SeriesAdd"),
    ("sonarr", "eventType", "Download", "Download"),
    ("sonarr", "eventType", "EpisodeFileDelete", "EpisodeFileDelete"),
    ("sonarr", "eventType", "SeriesDelete", "SeriesDelete"),
    ("plex", "event", "library.new", "library.new"),
    ("plex", "event", "media.scrobble", "media.scrobble"),
    ("plex", "event", "media.stop", "media.stop"),
    ("overseerr", "notification_type", "MEDIA_PENDING", "MEDIA_PENDING"),
    ("overseerr", "notification_type", "MEDIA_APPROVED", "MEDIA_APPROVED"),
    ("overseerr", "notification_type", "MEDIA_DECLINED", "MEDIA_DECLINED"),
    ("tautulli", "action", "watched", "watched"),
    ("tautulli", "action", "stop", "stop"),
    ("tautulli", "action", "created", "created"),
]
#: Present in an example only because that item was watched, or has artwork on its tags.
OPTIONAL_IN_HOOKS = {"viewCount", "lastViewedAt", "viewOffset", "thumb"}


@pytest.mark.parametrize(("kind", "key", "value", "example"), EXPECTED, ids=[e[3] for e in EXPECTED])
def test_webhook_matches_the_example(receiver: Receiver, kind: str, key: str, value: str, example: str) -> None:
    body = receiver.event(kind, key, value)  # the default instance's id is its kind's name
    problems = shape_problems(body, [_example(kind, example)])
    assert [p for p in problems if p.rsplit(" ", 1)[-1] not in OPTIONAL_IN_HOOKS] == []


def test_plex_posts_multipart_with_a_thumb_only_where_plex_does(receiver: Receiver) -> None:
    plex = [r for sender, r in receiver.received if sender == "plex"]
    by_event = {_body(r)["event"]: _parts(r) for r in plex}
    assert by_event["library.new"]["thumb"] == ("image/jpeg", THUMB_JPEG)
    assert by_event["library.new"]["payload"][0] == "text/plain"
    assert "thumb" not in by_event["media.scrobble"]
    assert all(r.headers["user-agent"].startswith("PlexMediaServer/") for r in plex)


def test_json_services_post_json_with_their_user_agent(receiver: Receiver) -> None:
    agents = {sender: r.headers["user-agent"] for sender, r in receiver.received if sender != "plex"}
    assert agents["sonarr"].startswith("Sonarr/4.") and agents["radarr"].startswith("Radarr/5.")
    assert agents["overseerr"].startswith("axios/")
    assert all(r.headers["content-type"] == "application/json" for sender, r in receiver.received if sender != "plex")


def test_ids_in_webhooks_agree_across_services(receiver: Receiver) -> None:
    added = receiver.event("radarr", "eventType", "MovieAdded")["movie"]
    plex_new = receiver.event("plex", "event", "library.new")["Metadata"]
    created = receiver.event("tautulli", "action", "created")
    assert f"tmdb://{added['tmdbId']}" in [g["id"] for g in plex_new["Guid"]]
    assert created["rating_key"] == plex_new["ratingKey"]
    assert created["themoviedb_id"] == str(added["tmdbId"])
    pending = receiver.event("overseerr", "notification_type", "MEDIA_DECLINED")
    assert pending["media"]["tmdbId"] == str(added["tmdbId"])


def test_a_failed_delivery_is_recorded_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sim = Simulation(Universe(size=0))
    refusing = httpx.Client(transport=httpx.MockTransport(refuse))
    sim.webhooks = WebhookSender({"radarr": "http://down.test/hook"}, refusing)
    sim.add_movie("Lonely")
    assert [(d.event, d.status) for d in sim.webhooks.deliveries] == [("MovieAdded", None), ("Download", None)]
    assert all("ConnectError" in (d.error or "") for d in sim.webhooks.deliveries)
