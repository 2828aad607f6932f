"""Who may use the admin page, and the browser session that remembers it.

- With ``SMARTPLEX_ADMIN_SECRET`` set, a browser signs in with it once and gets a session cookie signed
  with that secret (itsdangerous): ``HttpOnly``, ``SameSite=Strict``, ``Path=/admin``, ``Secure`` when
  the page is reached over HTTPS, valid for 12 hours after the last page it loaded. Changing the
  secret signs every browser out.
- Without it, the page is open, as the API is, but only to a browser on this machine talking to a
  loopback address (the Host it asked for included, which a DNS-rebinding page cannot fake).
- Every form carries the session's CSRF token (synchronizer pattern), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from webhook_api.bind import is_loopback

COOKIE = "smartplex_admin"
COOKIE_PATH = "/admin"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Flash messages ride in the cookie until the next page shows them; bounded so the cookie stays small.
FLASH_LIMIT = 3
FLASH_LENGTH = 300


class Access(Enum):
    GRANTED = "granted"
    SIGN_IN = "sign in"
    #: No admin secret, and the browser is not on this machine: nothing to sign in with.
    LOOPBACK_ONLY = "loopback only"


@dataclass
class Session:
    csrf: str
    signed_in: bool = False
    flash: list[list[str]] = field(default_factory=list)

    def say(self, kind: str, text: str) -> None:
        """A message for the next page: ``kind`` is ok, error or info."""
        self.flash = [*self.flash, [kind, text[:FLASH_LENGTH]]][-FLASH_LIMIT:]

    def take_flash(self) -> list[list[str]]:
        messages, self.flash = self.flash, []
        return messages


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    def __init__(self, admin_secret: SecretStr | None) -> None:
        self._secret = admin_secret
        # Without a secret there is nothing to sign in with, but forms still need tokens a page on another
        # site cannot read: sign them with a key that lives as long as the process.
        key = admin_secret.get_secret_value() if admin_secret is not None else secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(key, salt="smartplex.admin-page.session")

    @property
    def needs_sign_in(self) -> bool:
        return self._secret is not None

    def load(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data: Any = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
                flash = [[str(kind), str(text)] for kind, text in data.get("flash", [])][-FLASH_LIMIT:]
                return Session(csrf=str(data["csrf"]), signed_in=data.get("in") is True, flash=flash)
            except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
                pass  # expired, tampered with, or signed with an older secret: a fresh session
        return Session(csrf=_new_token())

    def save(self, request: Request, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"csrf": session.csrf, "in": session.signed_in, "flash": session.flash})
        response.set_cookie(
            COOKIE,
            value,
            max_age=MAX_AGE_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def access(self, request: Request, session: Session) -> Access:
        if self._secret is None:
            client = request.client.host if request.client else ""
            return (
                Access.GRANTED
                if is_loopback(client) and is_loopback(request.url.hostname or "")
                else Access.LOOPBACK_ONLY
            )
        return Access.GRANTED if session.signed_in else Access.SIGN_IN

    def secret_matches(self, candidate: str) -> bool:
        if self._secret is None:
            return False
        return hmac.compare_digest(candidate.encode(), self._secret.get_secret_value().encode())

    @staticmethod
    def sign_in(session: Session) -> Session:
        """A new token on sign-in, so a token handed out before (to anyone) is worth nothing after."""
        return Session(csrf=_new_token(), signed_in=True, flash=session.flash)

    @staticmethod
    def signed_out() -> Session:
        return Session(csrf=_new_token())

    @staticmethod
    def csrf_matches(session: Session, submitted: str | None) -> bool:
        if not submitted:
            return False
        return secrets.compare_digest(submitted.encode(), session.csrf.encode())
