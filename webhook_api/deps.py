"""FastAPI dependencies: the app's state, and the admin secret check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from smartplex.settings import SettingsBase
from webhook_api.auth import admin_authorized
from webhook_api.metrics import Metrics
from webhook_api.writer import WebhookWriter


@dataclass
class AppState:
    settings: SettingsBase
    engine: Engine
    writer: WebhookWriter
    metrics: Metrics


# Async so FastAPI calls them inline: a plain ``def`` dependency costs a thread-pool hop per request.
async def get_state(request: Request) -> AppState:
    return request.app.state.smartplex  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


async def require_admin(request: Request, state: StateDep) -> None:
    if not admin_authorized(request, state.settings.admin_secret):
        raise HTTPException(
            401,
            "admin secret required: send 'Authorization: Bearer <SMARTPLEX_ADMIN_SECRET>' or X-Admin-Token",
            headers={"WWW-Authenticate": 'Bearer realm="smartplex-admin"'},
        )


AdminDep = Depends(require_admin)
