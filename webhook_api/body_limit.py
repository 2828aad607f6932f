"""ASGI middleware that stops reading a request body once it passes the configured limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webhook_api.errors import BadWebhook


class BodyLimitMiddleware:
    """Answers 413 from the Content-Length alone when it can, else as soon as the stream passes the limit.

    The declared length is judged before authentication, deliberately: an oversized body is never
    read, whoever sends it, and the answer reveals nothing about the secret.
    """

    def __init__(self, app: ASGIApp, *, limit: int, path_prefix: str) -> None:
        self.app = app
        self.limit = limit
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BadWebhook(413, _message(self.limit))
            return message

        await self.app(scope, limited_receive, send)


def _message(limit: int) -> str:
    return f"body larger than the limit of {limit} bytes (SMARTPLEX_MAX_BODY_BYTES)"


async def _too_large(send: Send, limit: int) -> None:
    body = ('{"detail":"' + _message(limit) + '"}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
