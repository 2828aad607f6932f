"""Turn a request body into the JSON object stored as ``payload``, per the sender's real format."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from smartplex.kinds import MULTIPART, URLENCODED, get_kind
from webhook_api.errors import BadWebhook

JSON_TYPES = ("application/json", "text/json")

#: Most fields or parts a form body may have (Plex sends two; Tautulli's template a few dozen).
MAX_FORM_FIELDS = 1000

#: A ``\uD800``-``\uDFFF`` escape: half of a surrogate pair, which JSON text may spell but Unicode has not.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json_type(media_type: str) -> bool:
    return media_type in JSON_TYPES or media_type.endswith("+json")


async def read_payload(request: Request, source: str, *, max_depth: int) -> tuple[dict[str, Any], str | None]:
    """The payload as an object, and as the JSON text received when there was one (stored as is)."""
    media_type = _media_type(request)
    if _is_json_type(media_type):
        return decode_json_object(await request.body(), max_depth=max_depth)
    extra = get_kind(source).form_types
    if media_type in extra and media_type == MULTIPART:
        raw = await _multipart_field(request, "payload")
        return decode_json_object(raw, max_depth=max_depth, what="'payload' field")
    if media_type in extra and media_type == URLENCODED:
        return decode_form(await request.body()), None
    accepted = ", ".join(JSON_TYPES[:1] + extra)
    raise BadWebhook(415, f"unsupported content type {media_type or '(none)'!r} for {source}; send {accepted}")


def decode_form(raw: bytes) -> dict[str, str]:
    """A form-encoded body as flat strings: UTF-8 throughout (percent-escapes included), or 400."""
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise BadWebhook(400, f"form body is not valid UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise BadWebhook(400, f"malformed form body: {exc}") from None
    form = dict(pairs)
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        raise BadWebhook(422, "form body contains a NUL character")
    return form


async def _multipart_field(request: Request, name: str) -> bytes:
    """The raw bytes of one multipart field, read as the body streams in; every other part is skipped unread.

    Plex posts the event as ``payload``; its ``thumb`` JPEG is never stored, so it is never kept either.
    The bytes are not decoded here: a form parser would fall back to Latin-1 and store mojibake.
    """
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadWebhook(400, "malformed form body: multipart without a boundary")
    found: list[bytes] = []
    parts = 0
    headers: list[tuple[bytes, bytes]] = []
    header_name = bytearray()
    header_value = bytearray()
    current: bytearray | None = None
    wanted = name.encode()

    def on_part_begin() -> None:
        nonlocal parts, current
        parts += 1
        if parts > MAX_FORM_FIELDS:
            raise BadWebhook(400, f"malformed form body: more than {MAX_FORM_FIELDS} parts")
        headers.clear()
        current = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers.append((bytes(header_name).strip().lower(), bytes(header_value).strip()))
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal current
        disposition = next((value for key, value in headers if key == b"content-disposition"), None)
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise BadWebhook(400, "malformed form body: a part without a name")
        current = bytearray() if options[b"name"] == wanted else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if current is not None:
            current.extend(data[start:end])

    def on_part_end() -> None:
        if current is not None:
            found.append(bytes(current))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:  # the body limit's 413 and the checks above pass through
        raise BadWebhook(400, f"malformed form body: {exc}") from None
    if not found:
        raise BadWebhook(422, f"multipart body has no {name!r} field (Plex sends the event JSON there)")
    if len(found) > 1:
        raise BadWebhook(422, f"multipart body has {len(found)} {name!r} fields; send one")
    return found[0]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def decode_json_object(raw: bytes, *, max_depth: int, what: str = "body") -> tuple[dict[str, Any], str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadWebhook(400, f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        # orjson parses a body in a fraction of json's time; what it refuses (NaN, a number out of a
        # float's range, a lone surrogate escape, broken JSON) goes to json, whose verdict and message
        # stand. (It reads an integer past 64 bits as a float: only routing reads this copy, and the
        # row stores the body's own text.)
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = _decode_slowly(text, what, max_depth)
    if not isinstance(value, dict):
        raise BadWebhook(422, f"{what} must be a JSON object, not {type(value).__name__}")
    # Fast path: nesting can't pass the number of brackets; a NUL or a lone surrogate can only arrive escaped.
    could_nest_too_deep = text.count("{") + text.count("[") > max_depth
    if could_nest_too_deep or "\\u0000" in text or _SURROGATE_ESCAPE.search(text):
        _check_storable(value, max_depth, what)
    return value, text


def _decode_slowly(text: str, what: str, max_depth: int) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadWebhook(422, f"{what} is nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise BadWebhook(400, f"{what} is not valid JSON: {exc}") from None


def _check_storable(value: dict[str, Any], max_depth: int, what: str) -> None:
    """Reject what PostgreSQL's JSONB cannot hold (NUL characters, unpaired surrogates) and absurd nesting,
    without recursion, so both engines store exactly the same bodies."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise BadWebhook(422, f"{what} is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                _check_text(key, what, "a key")
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            _check_text(node, what, "a string")


def _check_text(text: str, what: str, where: str) -> None:
    if "\x00" in text:
        raise BadWebhook(422, f"{what} contains a NUL character in {where}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadWebhook(422, f"{what} contains an unpaired surrogate escape (\\ud800-\\udfff) in {where}") from None
