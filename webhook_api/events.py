"""Where each source puts its event type in the payload (``Kind.event_key``)."""

from __future__ import annotations

from typing import Any

from smartplex.kinds import get_kind
from webhook_api.errors import BadWebhook

UNKNOWN = "unknown"


def event_type(source: str, payload: dict[str, Any], *, tautulli_keys: tuple[str, ...]) -> str:
    key = get_kind(source).event_key
    if key is None:
        # The body is the user's own template (Tautulli): take the first configured key present, never fail.
        for candidate in tautulli_keys:
            value = payload.get(candidate)
            if isinstance(value, str) and value:
                return value
        return UNKNOWN
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise BadWebhook(422, f"{source} payload has no {key!r} string naming the event")
    return value
