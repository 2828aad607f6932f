"""Which addresses the API may listen on: a loopback address only while a secret is missing."""

from __future__ import annotations

import ipaddress

from smartplex.settings import SettingsBase


class UnsafeBind(ValueError):
    """Listening there would open unauthenticated endpoints to the network."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: SettingsBase) -> list[str]:
    """Refuse to expose unauthenticated endpoints; return warnings for a loopback-only setup."""
    open_parts = [f"webhooks from {i.id}" for i in settings.unprotected_instances()]
    if settings.admin_secret is None:
        open_parts.append("the status and admin API")
    if not open_parts:
        return []
    if not is_loopback(host):
        raise UnsafeBind(
            f"refusing to listen on {host} without secrets: {', '.join(open_parts)} would be open to the network. "
            "Set SMARTPLEX_WEBHOOK_SECRET and SMARTPLEX_ADMIN_SECRET, or listen on 127.0.0.1."
        )
    return [f"no secret set for {', '.join(open_parts)}: listening on loopback only ({host})"]
