"""The "Webhook URLs" page's content: what to paste into each service so its webhooks reach SmartPlex.

Where the form is, how the secret travels and which boxes to tick are facts of the service's kind
(:class:`smartplex.kinds.WebhookSetup`); this module turns them into the fields to copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import assert_never
from urllib.parse import quote

from smartplex.instances import Instance
from smartplex.kinds import WebhookAuth, WebhookSetup
from smartplex.routing import STALE_LIBRARIES
from smartplex.settings import SettingsBase


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    secret: bool = False


@dataclass(frozen=True)
class WebhookTarget:
    """One instance's webhook form: where it is, the values to paste there, the boxes to tick."""

    instance: Instance
    fields: list[Field]
    note: str = ""
    secret_set: bool = True

    @property
    def setup(self) -> WebhookSetup:
        return self.instance.kind.webhook

    @property
    def routed(self) -> tuple[str, ...]:
        """The events of this kind that start a sync (the routing table's)."""
        return tuple(STALE_LIBRARIES.get(self.instance.kind.name, {}))


def secret_fields(auth: WebhookAuth, url: str, secret: str) -> list[Field]:
    """The fields of a webhook form that carry ``secret``, as the sender's form names them."""
    match auth:
        case "url_token":
            # Plex has no header or password field: the secret can only travel in the URL.
            return [Field("Webhook URL", f"{url}?token={quote(secret, safe='')}", secret=True)]
        case "json_headers":
            return [
                Field("Webhook URL", url),
                Field("Webhook method", "POST"),
                Field("JSON Headers", json.dumps({"X-Webhook-Token": secret}), secret=True),
            ]
        case "basic_password":
            return [
                Field("URL", url),
                Field("Method", "POST"),
                Field("Username", "smartplex"),
                Field("Password", secret, secret=True),
            ]
        case "authorization_header":
            return [Field("Webhook URL", url), Field("Authorization Header", f"Bearer {secret}", secret=True)]
        case _:
            assert_never(auth)


def webhook_target(settings: SettingsBase, instance: Instance, base_url: str) -> WebhookTarget:
    """The URL and credentials one service instance needs, in the fields that service's UI has."""
    path = instance.kind.name if instance.is_default else f"{instance.kind.name}/{instance.name}"
    url = f"{base_url.rstrip('/')}/api/webhooks/{path}"
    secret = settings.webhook_secret_for(instance)
    if secret is None:
        return WebhookTarget(
            instance,
            fields=[Field("Webhook URL", url)],
            note="No webhook secret is set, so webhooks are accepted without one: the API listens on loopback only.",
            secret_set=False,
        )
    return WebhookTarget(instance, secret_fields(instance.kind.webhook.auth, url, secret.get_secret_value()))
