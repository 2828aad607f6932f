"""What to paste into each service so its webhooks reach SmartPlex."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from smartplex.instances import Instance
from smartplex.settings import SettingsBase


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    secret: bool = False


@dataclass(frozen=True)
class WebhookTarget:
    """Where, in the service's own UI, the webhook is set up, and the values to paste there."""

    source: str  # the instance's slug: sonarr, sonarr_4k
    title: str
    where: str
    fields: list[Field]
    note: str = ""
    secret_set: bool = True
    events: list[str] = field(default_factory=list)


_WHERE = {
    "plex": "Plex Web → Settings → your account → Webhooks → Add Webhook (needs Plex Pass)",
    "tautulli": "Tautulli → Settings → Notification Agents → Add a new notification agent → Webhook",
    "sonarr": "Sonarr → Settings → Connect → + → Webhook",
    "radarr": "Radarr → Settings → Connect → + → Webhook",
    "overseerr": "Overseerr → Settings → Notifications → Webhook (tick Enable Agent)",
}
_EVENTS = {
    "plex": ["Plex sends every event; library.new, media.scrobble and media.rate start a sync"],
    "tautulli": ["Triggers: Playback Stop, Watched, Recently Added", "JSON Data: the template in docs/webhooks.md"],
    "sonarr": [
        "On File Import, On File Upgrade, On Import Complete, On Rename, On Series Add, On Series Delete, On Episode File Delete"
    ],
    "radarr": ["On File Import, On File Upgrade, On Rename, On Movie Added, On Movie Delete, On Movie File Delete"],
    "overseerr": ["Notification types: the request ones (pending, approved, available, declined, failed)"],
}


def webhook_target(settings: SettingsBase, instance: Instance, base_url: str) -> WebhookTarget:
    """The URL and credentials one service instance needs, in the fields that service's UI has."""
    source, svc = instance.kind.name, instance
    path = source if instance.is_default else f"{source}/{instance.name}"
    url = f"{base_url.rstrip('/')}/api/webhooks/{path}"
    secret = settings.webhook_secret_for(instance)
    if secret is None:
        return WebhookTarget(
            instance.slug,
            svc.title,
            _WHERE[source],
            fields=[Field("Webhook URL", url)],
            events=list(_EVENTS[source]),
            note="No webhook secret is set, so webhooks are accepted without one: the API listens on loopback only.",
            secret_set=False,
        )
    value = secret.get_secret_value()
    if source == "plex":
        # Plex has no header or password field: the secret can only travel in the URL.
        fields = [Field("Webhook URL", f"{url}?token={quote(value, safe='')}", secret=True)]
    elif source == "tautulli":
        fields = [
            Field("Webhook URL", url),
            Field("Webhook method", "POST"),
            Field("JSON Headers", json.dumps({"X-Webhook-Token": value}), secret=True),
        ]
    elif source in ("sonarr", "radarr"):
        fields = [
            Field("URL", url),
            Field("Method", "POST"),
            Field("Username", "smartplex"),
            Field("Password", value, secret=True),
        ]
    else:
        fields = [Field("Webhook URL", url), Field("Authorization Header", f"Bearer {value}", secret=True)]
    return WebhookTarget(instance.slug, svc.title, _WHERE[source], fields=fields, events=list(_EVENTS[source]))
