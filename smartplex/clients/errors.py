"""What can go wrong talking to a service, as a small hierarchy callers can catch precisely.

Every message names the service and its URL (never the credential) and says what to check.
"""

from __future__ import annotations

from smartplex.instances import Instance


class ServiceError(Exception):
    """Base class: something went wrong talking to ``instance``'s service at ``url``."""

    def __init__(self, instance: Instance, url: str, problem: str) -> None:
        self.instance = instance
        self.url = url
        self.problem = problem
        super().__init__(f"{instance.title} at {url}: {problem}")


class NotConfigured(ServiceError):
    """The settings lack the service's URL or credential, or its URL is not an http(s) URL."""

    def __init__(self, instance: Instance, url: str | None = None) -> None:
        url_var, key_var = instance.env_names
        if url is None:
            super().__init__(instance, "(not configured)", f"set {url_var} and {key_var}")
        else:
            super().__init__(instance, url, f"{url_var} must be an http:// or https:// URL")


class ServiceUnreachable(ServiceError):
    """No connection could be made, or it broke mid-response."""


class ServiceTimeout(ServiceError):
    """The service accepted the connection but did not answer in time."""


class Unauthorized(ServiceError):
    """The service rejected the credential (HTTP 401 or 403)."""


class NotFound(ServiceError):
    """The path does not exist: usually a wrong URL base path, or an item that is gone."""


class BadResponse(ServiceError):
    """The service answered, but not with what its API promises (an error status, or bad JSON)."""

    def __init__(
        self, instance: Instance, url: str, problem: str, status_code: int | None = None, detail: str = ""
    ) -> None:
        self.status_code = status_code
        #: The start of the answer's body (never shown in the message: it may echo what was sent).
        self.detail = detail
        super().__init__(instance, url, problem)
