"""Secrets for webhooks and admin calls, in every form the senders can send them; constant-time checks."""

from __future__ import annotations

import base64
import binascii
import hmac

from pydantic import SecretStr
from starlette.requests import Request

#: The only paths that answer without a secret: the probes, the metrics and the API's own description.
#: Every other route needs the webhook secret (its source's own, when set) or the admin secret.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)

TOKEN_QUERY = "token"
TOKEN_HEADER = "x-webhook-token"
ADMIN_HEADER = "x-admin-token"


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _basic_password(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def _matches(candidate: str | None, secret: SecretStr) -> bool:
    if candidate is None:
        return False
    return hmac.compare_digest(candidate.encode(), secret.get_secret_value().encode())


def webhook_authorized(request: Request, secret: SecretStr | None) -> bool:
    """``?token=`` (Plex can send nothing else), Bearer, Basic's password (Sonarr/Radarr) or X-Webhook-Token."""
    if secret is None:
        return True
    candidates = (
        request.query_params.get(TOKEN_QUERY),
        _bearer(request),
        _basic_password(request),
        request.headers.get(TOKEN_HEADER),
    )
    # Check every form so the time taken does not reveal which one was tried.
    results = [_matches(c, secret) for c in candidates]
    return any(results)


def admin_authorized(request: Request, secret: SecretStr | None) -> bool:
    if secret is None:
        return True
    results = [_matches(c, secret) for c in (_bearer(request), request.headers.get(ADMIN_HEADER))]
    return any(results)
