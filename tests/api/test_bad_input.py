"""Bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import HOOK, load_fixture
from tests.helpers import snapshot

SONARR = json.dumps(load_fixture("webhooks", "sonarr", "Download.json")).encode()
JSON = {**HOOK, "Content-Type": "application/json"}


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


CASES = {
    "malformed json": ("sonarr", {"content": b'{"eventType": "Download",', "headers": JSON}, 400, "not valid JSON"),
    "json array": ("sonarr", {"content": b"[1, 2]", "headers": JSON}, 422, "JSON object"),
    "json string": ("radarr", {"content": b'"Download"', "headers": JSON}, 422, "JSON object"),
    "invalid utf-8": ("sonarr", {"content": b'{"eventType": "\xff\xfe"}', "headers": JSON}, 400, "UTF-8"),
    "NaN": ("sonarr", {"content": b'{"eventType": "Grab", "x": NaN}', "headers": JSON}, 400, "NaN"),
    "NUL character": ("sonarr", {"content": b'{"eventType": "Grab", "x": "a\\u0000b"}', "headers": JSON}, 422, "NUL"),
    "absurd nesting": ("overseerr", {"content": b'{"notification_type": "X", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "headers": JSON}, 422, "nested deeper"),
    "nesting past the limit": ("overseerr", {"content": b'{"notification_type": "X", "a": ' + b"[" * 70 + b"]" * 70 + b"}", "headers": JSON}, 422, "nested deeper"),
    "wrong content type": ("sonarr", {"content": SONARR, "headers": {**HOOK, "Content-Type": "text/plain"}}, 415, "content type"),
    "no content type": ("sonarr", {"content": SONARR, "headers": HOOK}, 415, "content type"),
    "multipart to sonarr": ("sonarr", {"files": {"payload": (None, SONARR)}, "headers": HOOK}, 415, "content type"),
    "plex multipart without payload": ("plex", {"files": {"thumb": ("t.jpg", b"\xff\xd8\xff", "image/jpeg")}, "headers": HOOK}, 422, "payload"),
    "plex payload not json": ("plex", {"files": {"payload": (None, "event=media.play")}, "headers": HOOK}, 400, "not valid JSON"),
    "broken multipart": ("plex", {"content": b"--xyz\r\ngarbage", "headers": {**HOOK, "Content-Type": "multipart/form-data; boundary=xyz"}}, 422, "payload"),
    "sonarr without eventType": ("sonarr", {"json": {"series": {}}, "headers": HOOK}, 422, "eventType"),
    "radarr eventType not a string": ("radarr", {"json": {"eventType": 5}, "headers": HOOK}, 422, "eventType"),
    "overseerr without notification_type": ("overseerr", {"json": {"subject": "x"}, "headers": HOOK}, 422, "notification_type"),
    "plex without event": ("plex", {"json": {"Metadata": {}}, "headers": HOOK}, 422, "event"),
    "unknown source": ("emby", {"json": {"event": "x"}, "headers": HOOK}, 422, ""),
    "over the limit (content-length)": ("sonarr", {"content": b'{"x": "' + b"a" * 5_000_000 + b'"}', "headers": JSON}, 413, "limit"),
    "over the limit (chunked)": ("sonarr", {"content": lambda: _chunks(b'{"x": "' + b"a" * 5_000_000 + b'"}'), "headers": JSON}, 413, "limit"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_rejected_and_changes_nothing(client: TestClient, engine: Engine, case: str) -> None:
    source, request, status, words = CASES[case]
    # A streamed body is a fresh generator each time (no Content-Length, so the limit is met mid-stream).
    request = {k: v() if callable(v) else v for k, v in request.items()}
    before = snapshot(engine)
    response = client.post(f"/api/webhooks/{source}", **request)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json())
    assert snapshot(engine) == before


def test_a_plex_body_with_its_thumbnail_fits_the_default_limit(client: TestClient, engine: Engine) -> None:
    payload = json.dumps(load_fixture("webhooks", "plex", "library.new.json"))
    thumb = b"\xff\xd8\xff\xe0" + b"\x00" * 600_000  # Plex posters are well under this
    files = {"payload": (None, payload), "thumb": ("thumb.jpg", thumb, "image/jpeg")}
    assert client.post("/api/webhooks/plex", files=files, headers=HOOK).status_code == 202
