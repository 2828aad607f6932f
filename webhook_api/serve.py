"""``smartplex api``: run the webhook API with uvicorn, refusing unsafe binds and redacting secrets in logs."""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import unquote_plus

import click

from smartplex.settings import get_settings

_QUERY = re.compile(r"\?[^\s\"#]*")


def _mask_query(match: re.Match[str]) -> str:
    """Mask every ``token`` parameter, however its name is spelt (``To%6Ben`` decodes to it too)."""
    parts = []
    for part in match.group(0)[1:].split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=***" if equals and unquote_plus(name).strip().lower() == "token" else part)
    return "?" + "&".join(parts)


def redact(text: str) -> str:
    return _QUERY.sub(_mask_query, text)


class RedactSecrets(logging.Filter):
    """Access logs carry the query string, and Plex's secret travels there: mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(str(record.msg))
        return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str) -> list[str]:
    """Refuse to expose unauthenticated endpoints; return warnings for a loopback-only setup."""
    settings = get_settings()
    open_parts = [f"webhooks from {s}" for s in settings.unprotected_sources()]
    if settings.admin_secret is None:
        open_parts.append("the status and admin API")
    if not open_parts:
        return []
    if not is_loopback(host):
        raise click.UsageError(
            f"refusing to listen on {host} without secrets: {', '.join(open_parts)} would be open to the network. "
            "Set SMARTPLEX_WEBHOOK_SECRET and SMARTPLEX_ADMIN_SECRET, or listen on 127.0.0.1."
        )
    return [f"no secret set for {', '.join(open_parts)}: listening on loopback only ({host})"]


@click.command()
@click.option("--host", default=None, help="Address to listen on (default SMARTPLEX_API_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default SMARTPLEX_API_PORT, 8765).")
def api(host: str | None, port: int | None) -> None:
    """Run the webhook API."""
    import uvicorn

    settings = get_settings()
    host = host or settings.api_host
    port = port or settings.api_port
    for warning in check_bind(host):
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
    click.echo(f"SmartPlex webhook API on http://{host}:{port}  (docs: /docs, status: /api/webhooks/status)")
    uvicorn.run("webhook_api.app:create_app", factory=True, host=host, port=port, proxy_headers=True)
