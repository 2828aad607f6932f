"""Turn a request body into the JSON object stored as ``payload``, per the sender's real format."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from webhook_api.errors import BadWebhook

JSON_TYPES = ("application/json", "text/json")
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"

#: Content types each source may send besides JSON (Plex: multipart; Tautulli: form when overridden).
EXTRA_TYPES: dict[str, tuple[str, ...]] = {"plex": (MULTIPART,), "tautulli": (URLENCODED,)}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json_type(media_type: str) -> bool:
    return media_type in JSON_TYPES or media_type.endswith("+json")


async def read_payload(request: Request, source: str, *, max_depth: int) -> tuple[dict[str, Any], str | None]:
    """The payload as an object, and as the JSON text received when there was one (stored as is)."""
    media_type = _media_type(request)
    if _is_json_type(media_type):
        return decode_json_object(await request.body(), max_depth=max_depth)
    extra = EXTRA_TYPES.get(source, ())
    if media_type in extra and media_type == MULTIPART:
        return await _plex_multipart(request, max_depth=max_depth)
    if media_type in extra and media_type == URLENCODED:
        form = await _form(request)
        return {key: value for key, value in form.items() if isinstance(value, str)}, None
    accepted = ", ".join(JSON_TYPES[:1] + extra)
    raise BadWebhook(415, f"unsupported content type {media_type or '(none)'!r} for {source}; send {accepted}")


async def _form(request: Request) -> Any:
    try:
        return await request.form()
    except BadWebhook:
        raise
    except Exception as exc:  # python-multipart raises several types for malformed bodies
        raise BadWebhook(400, f"malformed form body: {exc}") from None


async def _plex_multipart(request: Request, *, max_depth: int) -> tuple[dict[str, Any], str]:
    """Plex posts the event as the ``payload`` field; the optional ``thumb`` JPEG is never stored."""
    form = await _form(request)
    try:
        field = form.get("payload")
        if field is None:
            raise BadWebhook(422, "multipart body has no 'payload' field (Plex sends the event JSON there)")
        raw = await field.read() if isinstance(field, UploadFile) else field.encode()
        return decode_json_object(raw, max_depth=max_depth, what="'payload' field")
    finally:
        await form.close()


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def decode_json_object(raw: bytes, *, max_depth: int, what: str = "body") -> tuple[dict[str, Any], str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadWebhook(400, f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadWebhook(422, f"{what} is nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise BadWebhook(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadWebhook(422, f"{what} must be a JSON object, not {type(value).__name__}")
    # Fast path: nesting can't pass the number of brackets, and a NUL can only arrive escaped.
    could_nest_too_deep = text.count("{") + text.count("[") > max_depth
    if could_nest_too_deep or "\\u0000" in text:
        _check_storable(value, max_depth, what)
    return value, text


def _check_storable(value: dict[str, Any], max_depth: int, what: str) -> None:
    """Reject what PostgreSQL's JSONB cannot hold (NUL characters) and absurd nesting, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise BadWebhook(422, f"{what} is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    raise BadWebhook(422, f"{what} contains a NUL character in a key")
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str) and "\x00" in node:
            raise BadWebhook(422, f"{what} contains a NUL character in a string")
