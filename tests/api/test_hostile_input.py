"""A hand-made hostile corpus: each request gets its specific 4xx and changes nothing, while hostile-looking
but valid bodies (SQL, escapes, unicode) are accepted and stored exactly as sent.

The plainer bad input (malformed JSON, a wrong content type, a missing event field, ...) is in
``test_bad_input.py``; this file adds what an attacker or a broken proxy would send.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Text, cast, inspect, select

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.schema import webhook_log
from smartplex.settings import SettingsBase
from tests.conftest import ADMIN_SECRET, HOOK, WEBHOOK_SECRET, _postgres_schema_url, load_fixture, make_settings
from tests.helpers import basic_auth, snapshot
from webhook_api.app import create_app

LIMIT = SettingsBase.model_fields["max_body_bytes"].default
DEPTH = SettingsBase.model_fields["max_json_depth"].default
JSON = {**HOOK, "Content-Type": "application/json"}
FORM = {**HOOK, "Content-Type": "application/x-www-form-urlencoded"}
SONARR = json.dumps(load_fixture("webhooks", "sonarr", "Download.json")).encode()
PLEX = json.dumps(load_fixture("webhooks", "plex", "library.new.json")).encode()


# One database and one app per engine for the whole module: hundreds of requests, two migrations.
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hostile_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'smartplex.db'}"
    else:
        yield from _postgres_schema_url(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="module")
def db(hostile_db: str) -> Iterator[Engine]:
    engine = make_engine(hostile_db, timeout=5)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api(hostile_db: str, db: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(hostile_db, tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings)) as client:
        yield client


# --- building blocks ------------------------------------------------------------------------------------


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _tautulli(size: int) -> bytes:
    """A valid Tautulli body of exactly ``size`` bytes."""
    head, tail = b'{"action": "stop", "pad": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _nested(levels: int, opener: str = '{"a": ', closer: str = "}") -> bytes:
    """A Tautulli body whose deepest value sits ``levels + 2`` deep (the body itself is depth 1)."""
    return ('{"action": "stop", "a": ' + opener * levels + "{}" + closer * levels + "}").encode()


def _part(name: str, body: bytes, *, filename: str | None = None, extra: bytes = b"") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"Content-Disposition: {disposition}\r\n".encode() + extra + b"\r\n" + body


def _multipart(*parts: bytes, boundary: bytes = b"hostile", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def _multipart_headers(boundary: str = "hostile", extra: str = "") -> dict[str, str]:
    return {**HOOK, "Content-Type": f"multipart/form-data; boundary={boundary}{extra}"}


S = WEBHOOK_SECRET
Request = dict[str, Any] | Callable[[], dict[str, Any]]

# --- rejected: (source, request, status, words in the answer) -------------------------------------------

REJECTED: dict[str, tuple[str, Request, int, str]] = {
    # Size: the limit holds however the body arrives and whatever Content-Length claims.
    "one byte over the limit": ("tautulli", lambda: {"content": _tautulli(LIMIT + 1), "headers": JSON}, 413, "limit"),
    "over the limit, Content-Length understated": ("tautulli", lambda: {"content": _tautulli(LIMIT + 10), "headers": {**JSON, "Content-Length": "10"}}, 413, "limit"),
    "over the limit, Content-Length not a number": ("tautulli", lambda: {"content": _tautulli(LIMIT + 10), "headers": {**JSON, "Content-Length": "lots"}}, 413, "limit"),
    "absurd Content-Length, small body": ("tautulli", {"content": b'{"action": "stop"}', "headers": {**JSON, "Content-Length": "9" * 40}}, 413, "limit"),
    "over the limit in 1 KiB chunks": ("tautulli", lambda: {"content": _chunks(_tautulli(LIMIT + 1), 1024), "headers": JSON}, 413, "limit"),
    "multipart thumbnail over the limit": ("plex", lambda: {"files": {"payload": (None, PLEX), "thumb": ("t.jpg", b"\xff" * (LIMIT + 1), "image/jpeg")}, "headers": HOOK}, 413, "limit"),
    "multipart over the limit, chunked": ("plex", lambda: {"content": _chunks(_multipart(_part("payload", PLEX), _part("thumb", b"\xff" * LIMIT, filename="t.jpg"))), "headers": _multipart_headers()}, 413, "limit"),
    "form over the limit, chunked": ("tautulli", lambda: {"content": _chunks(b"action=stop&pad=" + b"a" * LIMIT), "headers": FORM}, 413, "limit"),
    # Nesting: one level past the limit, objects rather than arrays, and far past it.
    "objects one level too deep": ("tautulli", {"content": _nested(DEPTH - 1), "headers": JSON}, 422, "nested deeper"),
    "arrays and objects 10 000 deep": ("tautulli", {"content": _nested(5_000, '[{"a": ', "}]"), "headers": JSON}, 422, "nested deeper"),
    "400 000 nested objects": ("tautulli", lambda: {"content": _nested(400_000), "headers": JSON}, 422, "nested deeper"),
    "too deep inside the Plex payload field": ("plex", {"files": {"payload": (None, b'{"event": "x", "a": ' + b"[" * 100 + b"]" * 100 + b"}")}, "headers": HOOK}, 422, "nested deeper"),
    # Encoding: never stored as mojibake or replacement characters, never engine-dependent.
    "invalid UTF-8 in the Plex payload field": ("plex", {"files": {"payload": (None, b'{"event": "media.play", "title": "\xff\xfe"}')}, "headers": HOOK}, 400, "UTF-8"),
    "Latin-1 Plex payload, charset declared": ("plex", {"content": _multipart(_part("payload", '{"event": "media.play", "title": "Amélie"}'.encode("latin-1"))), "headers": _multipart_headers(extra="; charset=latin-1")}, 400, "UTF-8"),
    "a JPEG where the payload belongs": ("plex", {"files": {"payload": ("thumb.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image/jpeg")}, "headers": HOOK}, 400, "UTF-8"),
    "overlong UTF-8": ("sonarr", {"content": b'{"eventType": "Grab", "path": "\xc0\xaf\xc0\xaf"}', "headers": JSON}, 400, "UTF-8"),
    "UTF-8-encoded surrogates (CESU-8)": ("sonarr", {"content": b'{"eventType": "Grab", "x": "\xed\xa0\xbd\xed\xb8\x80"}', "headers": JSON}, 400, "UTF-8"),
    "UTF-8 cut mid-character": ("sonarr", {"content": b'{"eventType": "Grab", "x": "\xe2\x82"}', "headers": JSON}, 400, "UTF-8"),
    "UTF-16 body": ("sonarr", {"content": json.dumps({"eventType": "Grab"}).encode("utf-16"), "headers": JSON}, 400, "UTF-8"),
    "Latin-1 body, charset declared": ("sonarr", {"content": '{"eventType": "Grab", "x": "Amélie"}'.encode("latin-1"), "headers": {**JSON, "Content-Type": "application/json; charset=iso-8859-1"}}, 400, "UTF-8"),
    "unpaired surrogate escape": ("tautulli", {"content": b'{"action": "stop", "x": "\\ud800"}', "headers": JSON}, 422, "surrogate"),
    "unpaired low surrogate escape in a key": ("tautulli", {"content": b'{"action": "stop", "\\uDC00": 1}', "headers": JSON}, 422, "surrogate"),
    "unpaired surrogate in the Plex payload": ("plex", {"files": {"payload": (None, b'{"event": "media.play", "x": "\\udbff"}')}, "headers": HOOK}, 422, "surrogate"),
    "NUL character in a key": ("sonarr", {"content": b'{"eventType": "Grab", "a\\u0000": 1}', "headers": JSON}, 422, "NUL"),
    "NUL character in a form value": ("tautulli", {"content": b"action=stop&title=a%00b", "headers": FORM}, 422, "NUL"),
    "invalid UTF-8 escape in a form": ("tautulli", {"content": b"action=stop&title=%ff%fe", "headers": FORM}, 400, "UTF-8"),
    "raw invalid UTF-8 in a form": ("tautulli", {"content": b"action=stop&title=\xff\xfe", "headers": FORM}, 400, "UTF-8"),
    "gzip bomb (never inflated)": ("tautulli", lambda: {"content": gzip.compress(b"\x00" * 50_000_000), "headers": {**JSON, "Content-Encoding": "gzip"}}, 400, "UTF-8"),
    # Multipart bombs and malformed multipart.
    "2 000 fields": ("plex", {"data": {f"f{i}": "x" for i in range(2_000)}, "files": {"payload": (None, PLEX)}, "headers": HOOK}, 400, "parts"),
    "1 001 files": ("plex", {"files": [("payload", (None, PLEX))] + [(f"t{i}", ("t.jpg", b"\xff", "image/jpeg")) for i in range(1_001)], "headers": HOOK}, 400, "parts"),
    "50 000 empty parts, chunked": ("plex", lambda: {"content": _chunks(_multipart(*[_part("x", b"")] * 50_000)), "headers": _multipart_headers()}, 400, "parts"),
    "a part header of 100 KiB": ("plex", {"content": _multipart(_part("payload", PLEX, extra=b"X-Pad: " + b"a" * 102_400 + b"\r\n")), "headers": _multipart_headers()}, 400, "malformed form"),
    "a part with 1 000 headers": ("plex", {"content": _multipart(_part("payload", PLEX, extra=b"X-Pad: a\r\n" * 1_000)), "headers": _multipart_headers()}, 400, "malformed form"),
    "a boundary of 5 000 bytes": ("plex", {"content": _multipart(_part("payload", PLEX), boundary=b"b" * 5_000), "headers": _multipart_headers("b" * 5_000)}, 400, "malformed form"),
    "multipart without a boundary": ("plex", {"content": _multipart(_part("payload", PLEX)), "headers": {**HOOK, "Content-Type": "multipart/form-data"}}, 400, "boundary"),
    "a part without a name": ("plex", {"content": _multipart(b"Content-Disposition: form-data\r\n\r\n" + PLEX), "headers": _multipart_headers()}, 400, "without a name"),
    "two payload parts": ("plex", {"content": _multipart(_part("payload", PLEX), _part("payload", b'{"event": "library.new"}')), "headers": _multipart_headers()}, 422, "payload"),
    "payload part never closed": ("plex", {"content": _multipart(_part("payload", PLEX), close=False)[: -len(b"\r\n")], "headers": _multipart_headers()}, 422, "payload"),
    "payload only as a filename": ("plex", {"files": {"thumb": ("payload", PLEX, "application/json")}, "headers": HOOK}, 422, "payload"),
    # Content-type lies.
    "JSON labelled multipart, no boundary": ("plex", {"content": PLEX, "headers": {**HOOK, "Content-Type": "multipart/form-data"}}, 400, "boundary"),
    "JSON labelled multipart": ("plex", {"content": PLEX, "headers": _multipart_headers()}, 400, "malformed form"),
    "multipart labelled JSON": ("plex", {"content": _multipart(_part("payload", PLEX)), "headers": JSON}, 400, "not valid JSON"),
    "form labelled JSON": ("tautulli", {"content": b"action=stop&rating_key=1", "headers": JSON}, 400, "not valid JSON"),
    "JSON labelled form, to Sonarr": ("sonarr", {"content": SONARR, "headers": FORM}, 415, "content type"),
    "multipart to Tautulli": ("tautulli", {"files": {"payload": (None, b'{"action": "stop"}')}, "headers": HOOK}, 415, "content type"),
    "multipart/mixed to Plex": ("plex", {"content": _multipart(_part("payload", PLEX)), "headers": {**HOOK, "Content-Type": "multipart/mixed; boundary=hostile"}}, 415, "content type"),
    "XML": ("radarr", {"content": b"<eventType>Download</eventType>", "headers": {**HOOK, "Content-Type": "application/xml"}}, 415, "content type"),
    # The secret: injected, truncated, padded, smuggled; each on an otherwise valid Sonarr body.
    "CRLF-injected header before the secret": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": f"nope\r\nX-Webhook-Token: {S}"}}, 401, "secret"),
    "CRLF-injected header after the secret": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": f"{S}\r\nX-Admin-Token: {ADMIN_SECRET}"}}, 401, "secret"),
    "second Authorization smuggled in Bearer": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "Authorization": f"Bearer nope\r\nAuthorization: Bearer {S}"}}, 401, "secret"),
    "NUL after the secret": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": f"{S}\x00"}}, 401, "secret"),
    "NUL inside a Bearer token": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {S[:4]}\x00{S[4:]}"}}, 401, "secret"),
    "a token of 1 MiB": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": S * (1_048_576 // len(S))}}, 401, "secret"),
    "a look-alike token (Greek omicron)": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": S.replace("o", "ο").encode()}}, 401, "secret"),
    "the secret plus UTF-8": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "X-Webhook-Token": (S + "é").encode()}}, 401, "secret"),
    "an empty Bearer": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", "Authorization": "Bearer "}}, 401, "secret"),
    "Basic password with CRLF": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", **basic_auth(S.encode() + b"\r\n")}}, 401, "secret"),
    "Basic password with NUL": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", **basic_auth(S.encode() + b"\x00")}}, 401, "secret"),
    "Basic that is not UTF-8": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", **basic_auth(b"\xff" + S.encode())}}, 401, "secret"),
    "Basic of 1 MiB": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json", **basic_auth(b"a" * 1_048_576)}}, 401, "secret"),
    "query token with CRLF": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token": f"{S}\r\nX-Admin-Token: {ADMIN_SECRET}"}}, 401, "secret"),
    "query token with NUL": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token": f"{S}\x00"}}, 401, "secret"),
    "query token with SQL": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token": "' OR '1'='1' --"}}, 401, "secret"),
    "query token with a trailing space": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token": S + " "}}, 401, "secret"),
    "query token as an array": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token[]": S}}, 401, "secret"),
    "query token not UTF-8": ("sonarr", lambda: {"content": SONARR, "headers": {"Content-Type": "application/json"}, "url_suffix": "?token=%ff" + S}, 401, "secret"),
    "the right secret under a percent-encoded name": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "url_suffix": "?to%6Ben=" + S}, 401, "secret"),
    "query token empty": ("sonarr", {"content": SONARR, "headers": {"Content-Type": "application/json"}, "params": {"token": ""}}, 401, "secret"),
}  # fmt: skip


def _request(spec: Request) -> tuple[dict[str, Any], str]:
    request = dict(spec() if callable(spec) else spec)
    return request, request.pop("url_suffix", "")


@pytest.mark.parametrize("case", REJECTED)
def test_hostile_input_gets_its_4xx_and_changes_nothing(api: TestClient, db: Engine, case: str) -> None:
    source, spec, status, words = REJECTED[case]
    request, suffix = _request(spec)
    before = snapshot(db)
    response = api.post(f"/api/webhooks/{source}{suffix}", **request)
    assert response.status_code == status, response.text[:300]
    assert words in json.dumps(response.json())
    assert snapshot(db) == before


# --- accepted: SQL-looking, escaped and unicode-heavy bodies are data, stored exactly ----------------------

SQL = [
    "'; DROP TABLE webhook_log; --",
    "Robert'); DROP TABLE sync_schedule;--",
    '" OR ""="',
    "1' OR '1'='1",
    "$$; DELETE FROM webhook_log; $$",
    "\\x00",  # the four characters, not a NUL
    "\\u0000",  # likewise six characters
    "%00",
    "\\'; --",
    "/* */ UNION SELECT password FROM pg_shadow --",
]
UNICODE = [
    "Amélie",
    "千と千尋の神隠し",
    "Ѕрirited Away",  # Cyrillic look-alikes
    "🎬🍿 👩‍👩‍👧‍👦 🏳️‍🌈",
    "\u202egnp.exe",  # right-to-left override
    "e\u0301\u0301\u0301",  # stacked combining accents
    "\u200b\u200d\ufeff",  # zero-width characters and a BOM mid-string
    "\t\r\n\x1b[31m\x07",  # control characters, escaped in JSON
    "\U0010ffff",
]


def _json_body(source_event: dict[str, Any], ensure_ascii: bool = False, indent: int | None = None) -> bytes:
    body = {**source_event, "sql": SQL, "unicode": UNICODE, "nested": {s: {"value": s} for s in SQL + UNICODE}}
    return json.dumps(body, ensure_ascii=ensure_ascii, indent=indent).encode()


#: (source, request, the payload that must be stored, its event type, the JSON text sent when it is stored as is)
ACCEPTED: dict[str, tuple[str, Request, dict[str, Any], str, str | None]] = {}


def _accept_json(name: str, source: str, body: bytes, event: str, headers: dict[str, str] = JSON) -> None:
    ACCEPTED[name] = (source, {"content": body, "headers": headers}, json.loads(body), event, body.decode("utf-8"))


_accept_json(
    "SQL and unicode in a Sonarr body",
    "sonarr",
    _json_body({"eventType": "Download", "series": {"id": 1, "title": SQL[0]}}),
    "Download",
)
_accept_json("SQL as the event type", "sonarr", _json_body({"eventType": SQL[0]}), SQL[0])
_accept_json("unicode as the event type", "overseerr", _json_body({"notification_type": UNICODE[3]}), UNICODE[3])
_accept_json("all escaped, indented", "radarr", _json_body({"eventType": "Grab"}, ensure_ascii=True, indent=3), "Grab")
_accept_json(
    "surrogate pairs spelt as escapes",
    "tautulli",
    b'{"action": "stop", "title": "\\ud83c\\udfac \\uD83C\\uDF7F"}',
    "stop",
)
_accept_json(
    "escaped backslash before u0000 and ud800", "tautulli", b'{"action": "stop", "t": "\\\\u0000 \\\\ud800"}', "stop"
)
_accept_json("SQL in keys", "tautulli", json.dumps({"action": "watched", **{s: s for s in SQL}}).encode(), "watched")
_accept_json("nested exactly to the limit", "tautulli", _nested(DEPTH - 2), "stop")
_accept_json(
    "numbers past 64 bits",
    "tautulli",
    b'{"action": "stop", "big": 123456789012345678901234567890, "neg": -98765432109876543210}',
    "stop",
)
_accept_json(
    "a JSON subtype",
    "tautulli",
    b'{"action": "play"}',
    "play",
    {**HOOK, "Content-Type": "application/vnd.tautulli+json; charset=utf-8"},
)

_PLEX_HOSTILE = _json_body({"event": "media.rate", "Metadata": {"title": SQL[1]}})
ACCEPTED["SQL and unicode in the Plex payload, hostile thumbnail name"] = (
    "plex",
    {"files": {"payload": (None, _PLEX_HOSTILE), "thumb": ("../../../etc/passwd'; --.jpg", b"\xff\xd8\xff", "image/jpeg")}, "headers": HOOK},
    json.loads(_PLEX_HOSTILE),
    "media.rate",
    _PLEX_HOSTILE.decode(),
)  # fmt: skip
ACCEPTED["the Plex payload as a file part"] = (
    "plex",
    {"files": {"payload": ("payload.json", _PLEX_HOSTILE, "application/json")}, "headers": HOOK},
    json.loads(_PLEX_HOSTILE),
    "media.rate",
    _PLEX_HOSTILE.decode(),
)
_FORM = {"action": "created", "title": SQL[0], "summary": UNICODE[3] + UNICODE[4], "empty": "", SQL[1]: "key"}
ACCEPTED["SQL and unicode in a Tautulli form"] = ("tautulli", {"data": _FORM, "headers": HOOK}, _FORM, "created", None)


def _stored_text(engine: Engine, row_id: uuid.UUID) -> str:
    """The payload column as the database holds it: SQLite's text as written, PostgreSQL's JSONB rendered."""
    query = select(cast(webhook_log.c.payload, Text)).where(webhook_log.c.id == row_id)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


@pytest.mark.parametrize("case", ACCEPTED)
def test_hostile_looking_data_is_stored_exactly(api: TestClient, db: Engine, case: str) -> None:
    source, spec, payload, event, sent_text = ACCEPTED[case]
    request, suffix = _request(spec)
    _, schedules_before = snapshot(db)
    response = api.post(f"/api/webhooks/{source}{suffix}", **request)
    assert response.status_code == 202, response.text[:300]
    row_id = uuid.UUID(response.json()["id"])

    with db.connect() as connection:
        row = connection.execute(select(webhook_log).where(webhook_log.c.id == row_id)).mappings().one()
    assert (row["source"], row["event_type"]) == (source, event)
    assert row["payload"] == payload
    stored = _stored_text(db, row_id)
    if sent_text is not None and db.dialect.name == "sqlite":
        assert stored == sent_text  # the very text received, byte for byte
    else:
        assert json.loads(stored) == payload  # JSONB keeps the value, not the spacing or key order

    # The tables are still there and nothing else moved.
    assert {"webhook_log", "sync_schedule"} <= set(inspect(db).get_table_names())
    assert snapshot(db)[1] == schedules_before


def test_a_body_exactly_at_the_limit_is_stored_whole(client: TestClient, engine: Engine) -> None:
    body = _tautulli(LIMIT)
    response = client.post("/api/webhooks/tautulli", content=body, headers=JSON)
    assert response.status_code == 202, response.text
    with engine.connect() as connection:
        stored = connection.execute(select(webhook_log.c.payload)).scalar_one()
    assert stored == json.loads(body)
