"""A real example body per source, shown in the OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from smartplex.kinds import KINDS
from webhook_api.events import event_type


@cache
def example_body(source: str) -> dict[str, Any]:
    return json.loads(files(__package__).joinpath(f"{source}.json").read_text())  # type: ignore[no-any-return]


def openapi_examples() -> dict[str, Any]:
    """``openapi_extra`` for the webhook route: the JSON bodies, and Plex's multipart form."""
    json_examples = {
        s.name: {
            "summary": f"{s.title}: {event_type(s.name, example_body(s.name), tautulli_keys=('action',))}",
            "value": example_body(s.name),
        }
        for s in KINDS
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "examples": json_examples},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["payload"],
                        "properties": {
                            "payload": {"type": "string", "description": "The Plex event as JSON text"},
                            "thumb": {"type": "string", "format": "binary", "description": "Poster; not stored"},
                        },
                    },
                    "example": {"payload": json.dumps(example_body("plex"))},
                },
            },
        }
    }
