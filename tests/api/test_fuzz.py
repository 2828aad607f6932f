"""Property-based fuzzing of every operation in the API's own OpenAPI document: never a 5xx.

Schemathesis generates valid and invalid requests from ``/openapi.json``; with the secrets every
answer must conform to the document, without them every answer must be 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks
from sqlalchemy import Engine

from smartplex.settings import SettingsBase
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, make_settings
from tests.helpers import snapshot
from webhook_api.app import create_app
from webhook_api.auth import PUBLIC_PATHS

# The document does not depend on the database, so it is read once, without starting the app.
schema = schemathesis.openapi.from_dict(create_app(make_settings("sqlite:///never-opened.db", Path("."))).openapi())

#: Both secrets on every request: each endpoint picks the header it reads.
AUTH = {"X-Webhook-Token": WEBHOOK_SECRET, "X-Admin-Token": ADMIN_SECRET}

#: Reproducible in CI. One app per operation serves all its examples (the function-scoped fixture).
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.unsupported_method,
    checks.allow_header_conformance,
]

#: Checks that cannot hold for one path, and why.
NOT_APPLICABLE: dict[str, dict[CheckFunction, str]] = {
    "/api/webhooks/{source}": {
        checks.positive_data_acceptance: "the event key a body needs depends on {source}, which one schema cannot say",
        checks.allow_header_conformance: "POST and PUT are two routes; a 405 names the first one's method only",
    },
    "/api/webhooks/{source}/{instance}": {
        checks.positive_data_acceptance: "only a configured {instance} takes a body; any other is a 404",
        checks.allow_header_conformance: "POST and PUT are two routes; a 405 names the first one's method only",
    },
    "/api/webhooks/status": {
        checks.unsupported_method: "POST/PUT there reach the webhook route (a source named 'status'): 401/422",
    },
}


@pytest.fixture
def fuzz_app(settings: SettingsBase) -> Iterator[FastAPI]:
    """A fresh app per operation and database; schemathesis runs its lifespan, stopped afterwards."""
    app = create_app(settings)
    yield app
    asgi.shutdown_lifespans()


def _checks(case: schemathesis.Case) -> list[CheckFunction]:
    skip = NOT_APPLICABLE.get(case.operation.path, {})
    return [check for check in CHECKS if check not in skip]


@schema.parametrize()
@FUZZ
def test_with_secrets_every_answer_conforms(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(app=fuzz_app, headers=AUTH, checks=_checks(case))


@pytest.fixture
def unchanged(engine: Engine) -> Iterator[None]:
    """The test leaves both tables exactly as they were."""
    before = snapshot(engine)
    yield
    assert snapshot(engine) == before


# Nothing reaches the database without a secret: one engine is enough here.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@schema.exclude(path=sorted(PUBLIC_PATHS)).parametrize()
@FUZZ
def test_without_secrets_everything_is_401(case: schemathesis.Case, fuzz_app: FastAPI, unchanged: None) -> None:
    response = case.call(app=fuzz_app)
    if case.method.upper() == case.operation.method.upper():
        assert response.status_code == 401, response.text
    else:
        # A method the path does not have is refused by the router before any secret is looked for
        # (POST/PUT on /api/webhooks/status reach the webhook route, whose answer is 401).
        assert response.status_code in (401, 405), response.text
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error, checks.status_code_conformance])
