"""Secrets for webhooks and admin calls, in every form the senders can send them; constant-time checks."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote_plus

from pydantic import SecretStr
from starlette.requests import Request

#: The only paths that answer without a secret: the probes, the metrics and the API's own description.
#: Every other route needs the webhook secret (its source's own, when set) or the admin secret.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)

TOKEN_QUERY = "token"
_TOKEN_NAME = TOKEN_QUERY.encode()
TOKEN_HEADER = "x-webhook-token"
ADMIN_HEADER = "x-admin-token"


def _query_token(request: Request) -> str | None:
    """``?token=``, under that literal name only: the access log masks exactly that spelling, so a name
    spelt with percent-escapes (``?to%6Ben=``) must not count as the secret either. The last one wins."""
    token = None
    for pair in request.scope["query_string"].split(b"&"):
        name, equals, value = pair.partition(b"=")
        if name == _TOKEN_NAME and equals:
            token = value
    return None if token is None else unquote_plus(token.decode("latin-1"), errors="replace")


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
        _query_token(request),
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
