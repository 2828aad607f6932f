"""What a test does when something it needs is missing: skip, or fail where the run must be complete.

On a developer's machine a missing PostgreSQL, RabbitMQ, Redis or Chromium skips the tests that need
it, with the reason in the summary. A strict run fails them instead, so a green run has run every
test: a run is strict when ``CI`` is set to a true value (``.ci/run`` sets ``CI=true``; CI services
set it too) or ``SMARTPLEX_REQUIRE_POSTGRES`` is, the older name, kept for those who already set it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: The values that set a flag, in any case; anything else (``""``, ``0``, ``false``, unset) leaves it unset.
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
STRICT_FLAGS = ("CI", "SMARTPLEX_REQUIRE_POSTGRES")


def flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def _strict_flag() -> str | None:
    return next((name for name in STRICT_FLAGS if flag(name)), None)


def strict() -> bool:
    """Whether a missing dependency fails the run instead of skipping its tests."""
    return _strict_flag() is not None


def require_or_skip(reason: str) -> NoReturn:
    """Skip the test for ``reason``; fail it instead in a strict run."""
    __tracebackhide__ = True  # the summary names the caller's line, not this one
    name = _strict_flag()
    if name is not None:
        pytest.fail(f"{reason} ({name} is set: a strict run fails where a test would skip)", pytrace=False)
    pytest.skip(reason)
