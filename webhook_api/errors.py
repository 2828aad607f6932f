"""Exceptions the webhook API turns into clear 4xx/503 answers."""

from __future__ import annotations


class BadWebhook(Exception):
    """The body cannot be accepted; nothing is written."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class DatabaseUnavailable(Exception):
    """The database did not commit within the configured timeout; the caller answers 503."""
