"""Webhook payloads with their secrets masked, for showing them on the admin page."""

from __future__ import annotations

import re
from typing import Any

MASK = "••••••"

#: Keys whose values are secrets: tokens, API keys, passwords, secrets, credentials, auth headers.
SECRET_KEY = re.compile(r"token|api[-_ ]?key|passw(?:or)?d|secret|credential|authori[sz]ation|signature", re.IGNORECASE)
#: The same inside text: ``?X-Plex-Token=…`` in a thumbnail URL, ``apikey=…`` in a link.
SECRET_PARAM = re.compile(r"([?&;](?:x-plex-token|token|api[-_]?key|password|secret)=)[^&#;\s\"']+", re.IGNORECASE)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking key's value, and secret URL parameter, masked."""
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and SECRET_KEY.search(key) and item not in (None, "") else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return SECRET_PARAM.sub(lambda match: match.group(1) + MASK, value)
    return value
