"""Where each source puts its event type in the payload."""

from __future__ import annotations

from typing import Any

from webhook_api.errors import BadWebhook

#: The key that names the event, for senders whose format fixes it.
EVENT_KEYS: dict[str, str] = {
    "plex": "event",
    "sonarr": "eventType",
    "radarr": "eventType",
    "overseerr": "notification_type",
}

UNKNOWN = "unknown"


def event_type(source: str, payload: dict[str, Any], *, tautulli_keys: tuple[str, ...]) -> str:
    if source == "tautulli":
        # Tautulli's body is the user's own template: take the first configured key present, never fail.
        for key in tautulli_keys:
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
        return UNKNOWN
    key = EVENT_KEYS[source]
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise BadWebhook(422, f"{source} payload has no {key!r} string naming the event")
    return value
