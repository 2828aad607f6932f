"""Each kind's webhook setup (``Kind.webhook``) against the routing table: the "Webhook URLs" page tells
people which boxes to tick in each service, and it can never tell them to tick one whose event starts
nothing, or leave out one whose event the routing table waits for."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from smartplex.kinds import KINDS, Kind, Trigger, WebhookAuth, WebhookSetup
from smartplex.routing import STALE_LIBRARIES
from webhook_api.admin_page.services import secret_fields

#: Routed events no box in the service's webhook form sends, and why the routing table keeps them.
NEVER_SENT_TO_A_WEBHOOK = {
    # Overseerr raises it with notifySystem off, so no system agent (the webhook among them) is sent
    # it, and its webhook form has no box for it; routing it costs nothing should a version send it.
    ("overseerr", "MEDIA_AUTO_REQUESTED"),
}


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_each_trigger_sends_an_event_the_routing_table_routes_for_its_kind(kind: Kind) -> None:
    routed = set(STALE_LIBRARIES[kind.name])
    setup = kind.webhook
    if setup.sends_every_event:
        assert setup.triggers == ()  # nothing to tick: whatever the table routes arrives
        return
    sent = {trigger.event for trigger in setup.triggers}
    assert sent <= routed, f"{kind.name}: ticking these starts nothing: {sorted(sent - routed)}"
    unreached = routed - sent
    exempt = {event for source, event in NEVER_SENT_TO_A_WEBHOOK if source == kind.name}
    assert unreached == exempt, f"{kind.name}: no box sends {sorted(unreached - exempt)}"
    labels = [trigger.label for trigger in setup.triggers]
    assert len(labels) == len(set(labels)) and all(label.strip() == label and label for label in labels)


def test_every_exemption_is_still_needed() -> None:
    """An exemption the table no longer routes, or a box now sends, is removed here, not kept."""
    for source, event in NEVER_SENT_TO_A_WEBHOOK:
        assert event in STALE_LIBRARIES[source]
        kind = next(k for k in KINDS if k.name == source)
        assert event not in {trigger.event for trigger in kind.webhook.triggers}


def test_a_kind_without_its_webhook_setup_cannot_be_made() -> None:
    plex = KINDS[0]
    values = {f.name: getattr(plex, f.name) for f in dataclasses.fields(Kind) if f.name != "webhook"}
    with pytest.raises(TypeError, match="webhook"):
        Kind(**values)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="triggers"):
        WebhookSetup("Somewhere → Webhooks", "url_token")  # neither boxes nor every event
    with pytest.raises(ValueError, match="triggers"):
        WebhookSetup("Somewhere → Webhooks", "url_token", (Trigger("On Add", "Add"),), sends_every_event=True)


@pytest.mark.parametrize("auth", get_args(WebhookAuth))
def test_every_way_a_secret_travels_has_its_fields(auth: WebhookAuth) -> None:
    fields = secret_fields(auth, "https://smartplex.example/api/webhooks/x", "s3cr&t")
    carrying = [f for f in fields if "s3cr" in f.value]
    assert len(carrying) == 1 and carrying[0].secret
    assert all(f.secret == (f in carrying) for f in fields)
    assert any("https://smartplex.example/api/webhooks/x" in f.value for f in fields)


def test_every_kind_uses_a_known_way() -> None:
    assert {kind.webhook.auth for kind in KINDS} <= set(get_args(WebhookAuth))
