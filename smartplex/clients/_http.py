"""The one HTTP layer every service client shares: base URL, auth, timeouts, retries, error mapping."""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from smartplex.clients._jsonstream import iter_json_array
from smartplex.clients.errors import (
    BadResponse,
    NotConfigured,
    NotFound,
    ServiceTimeout,
    ServiceUnreachable,
    Unauthorized,
)
from smartplex.instances import Instance

Params = Mapping[str, str | int | float]

#: Statuses worth another try: the server is overloaded, restarting or rate limiting.
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Query parameters that carry credentials (Tautulli has no other way to take its key).
_SECRET_PARAMS = ("apikey", "X-Plex-Token", "token")
#: How much of an error answer's body is kept on the exception.
_ERROR_DETAIL_BYTES = 1024


class _RedactSecrets(logging.Filter):
    """httpx logs every request's URL at INFO; keep credentials in query strings out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


def _redacted(url: httpx.URL) -> httpx.URL:
    for name in _SECRET_PARAMS:
        if name in url.params:
            url = url.copy_set_param(name, "REDACTED")
    return url


logging.getLogger("httpx").addFilter(_RedactSecrets())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: ``attempts`` tries in all, exponential backoff with jitter in between."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    #: A ``Retry-After`` longer than this is not waited for; the call fails instead.
    max_retry_after: float = 300.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); the server's wish wins."""
        if retry_after is not None:
            return retry_after
        # "Equal jitter": never less than half the exponential step, so a herd still spreads out.
        step = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return step / 2 + random.uniform(0, step / 2)


@dataclass(slots=True)
class FetchStats:
    """Counters a sync reports as metadata: HTTP requests, retries, pages and items read."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    items: int = 0


class HttpSession:
    """A synchronous httpx client bound to one service, raising :mod:`errors` on failure."""

    def __init__(
        self,
        instance: Instance,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Params | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise NotConfigured(instance, base_url)
        self.instance = instance
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.stats = FetchStats()
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=dict(headers or {}),
            params=dict(params or {}),
            timeout=timeout,
            transport=transport,
            verify=tls_context(),
        )

    def close(self) -> None:
        self._client.close()

    def get_json(self, path: str, params: Params | None = None, headers: Mapping[str, str] | None = None) -> Any:
        response = self._send(path, params, headers, stream=False)
        try:
            return orjson.loads(response.content)  # a page of a large library parses in a fraction of json's time
        except orjson.JSONDecodeError:
            pass  # orjson refuses some JSON that json takes (a lone surrogate escape): let json decide
        try:
            return response.json()
        except ValueError:
            raise self._bad(path, "answered with something that is not JSON; is the URL right?") from None

    def get_bytes(self, path: str, params: Params | None = None) -> bytes:
        """The body as sent: for a digest of a listing that is parsed only when it changed."""
        return self._send(path, params, None, stream=False).content

    def iter_array(self, path: str, params: Params | None = None) -> Iterator[Any]:
        """Stream the elements of a JSON array response without holding the whole body."""
        response = self._send(path, params, None, stream=True)
        try:
            yield from iter_json_array(response.iter_bytes())
        except ValueError as exc:
            raise self._bad(path, f"sent a malformed JSON array ({exc})") from None
        except httpx.TimeoutException:
            stalled = f"{path} stalled mid-response for {self.timeout:g}s"
            raise ServiceTimeout(self.instance, self.base_url, stalled) from None
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.instance, self.base_url, f"connection lost mid-response ({exc})") from None
        finally:
            response.close()

    def _send(
        self, path: str, params: Params | None, headers: Mapping[str, str] | None, *, stream: bool
    ) -> httpx.Response:
        request = self._client.build_request("GET", path, params=params, headers=headers)
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            self.stats.requests += 1
            try:
                response = self._client.send(request, stream=stream)
            except httpx.TimeoutException:
                if last:
                    raise self._timeout_error() from None
                self._pause(attempt, None)
                continue
            except httpx.TransportError as exc:
                if last:
                    raise ServiceUnreachable(
                        self.instance,
                        self.base_url,
                        f"cannot connect ({exc or type(exc).__name__}); check {self.instance.env_names[0]} "
                        "and that the server is running",
                    ) from None
                self._pause(attempt, None)
                continue
            if response.status_code < 300:
                return response
            if response.status_code in _RETRYABLE_STATUS and not last:
                response.close()
                retry_after = _retry_after(response)
                if retry_after is None or retry_after <= self.retry.max_retry_after:
                    self._pause(attempt, retry_after)
                    continue
            try:  # the start of an error's body, for a client that can say more from it (Tautulli)
                detail = next(response.iter_bytes(), b"")[:_ERROR_DETAIL_BYTES].decode("utf-8", "replace")
            except httpx.HTTPError:
                detail = ""
            finally:
                response.close()
            raise self._status_error(path, response, attempt, detail)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        self.stats.retries += 1
        self._sleep(self.retry.delay(attempt, retry_after))

    def _status_error(self, path: str, response: httpx.Response, attempts: int, detail: str = "") -> Exception:
        status = response.status_code
        if 300 <= status < 400:
            # Not followed: a redirect elsewhere would carry the credential headers along.
            return self._bad(
                path,
                f"redirected (HTTP {status}) to {response.headers.get('location', '?')}; "
                f"put the final address in {self.instance.env_names[0]}",
                status,
            )
        if status in (401, 403):
            return Unauthorized(
                self.instance,
                self.base_url,
                f"the server rejected the credential (HTTP {status}); check {self.instance.env_names[1]}",
            )
        if status == 404:
            return NotFound(
                self.instance,
                self.base_url,
                f"{path} was not found (HTTP 404); check the URL, including any URL base path, "
                f"in {self.instance.env_names[0]}",
            )
        tries = f" after {attempts} tries" if attempts > 1 else ""
        return self._bad(path, f"answered HTTP {status}{tries}", status, detail)

    def _bad(self, path: str, problem: str, status: int | None = None, detail: str = "") -> BadResponse:
        return BadResponse(self.instance, self.base_url, f"{path} {problem}", status, detail)

    def _timeout_error(self) -> ServiceTimeout:
        return ServiceTimeout(
            self.instance,
            self.base_url,
            f"no answer within {self.timeout:g}s after {self.retry.attempts} tries; "
            "the server may be overloaded, or the timeout too short",
        )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own verifying context (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once per process:
    loading the CA bundle costs ~50 ms, which every client would otherwise pay."""
    return httpx.create_ssl_context()


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
