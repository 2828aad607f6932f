"""All configuration in one pydantic-settings class, read from ``SMARTPLEX_*`` variables or ``.env``."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartplex.services import SERVICES, get_service


class SettingsBase(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMARTPLEX_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("smartplex")),
        description="Where the embedded SQLite database and Dagster's home live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the product database; default: SQLite file under data_dir.",
    )
    db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for the database before a request answers 503."
    )

    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret every webhook must carry (token, Bearer, Basic or header)."
    )
    admin_secret: SecretStr | None = Field(
        default=None, description="Secret for the status and admin endpoints (Bearer or X-Admin-Token)."
    )

    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest webhook body accepted (Plex thumbnails included)."
    )
    max_json_depth: int = Field(default=64, gt=0, description="Deepest JSON nesting accepted in a webhook body.")
    tautulli_event_key: str = Field(
        default="event,action",
        description="Comma-separated keys tried in order for a Tautulli body's event type.",
    )
    commit_batch_size: int = Field(
        default=500, gt=0, description="Most webhook rows committed together in one transaction."
    )

    baseline_route: bool = Field(
        default=False, description="Serve /api/bench/baseline/{source}: intake without the database (benchmarks)."
    )

    history_start: date = Field(
        default=date(2008, 1, 1),
        description="First daily partition of the sync assets: the oldest day a full refresh covers.",
    )
    freshness_hours: int = Field(
        default=26, gt=0, description="A service asset older than this is flagged stale in the Dagster UI."
    )

    service_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for one HTTP request to a service during a sync; each request is tried 4 times.",
    )
    sensor_interval_seconds: int = Field(
        default=2,
        ge=1,
        description="How often the webhook sensor polls webhook_log for pending rows (Dagster's daemon: every 5 s at most).",
    )
    webhook_run_executor: str = Field(
        default="in_process",
        pattern="^(in_process|multiprocess)$",
        description="Executor of sync runs (webhook syncs, full refreshes): in_process runs the one step in the run's process.",
    )
    retention_ignored_days: int = Field(default=7, ge=1, description="Ignored webhook rows are deleted after this.")
    retention_processed_days: int = Field(
        default=30, ge=1, description="Processed webhook rows are deleted after this (failed rows are kept)."
    )
    retention_run_days: int = Field(
        default=7, ge=1, description="Successful Dagster runs (webhook syncs, derived assets) are deleted after this."
    )
    retention_refresh_run_days: int = Field(
        default=90, ge=1, description="Successful scheduled full refreshes are kept this long in Dagster."
    )
    retention_failed_run_days: int = Field(
        default=30, ge=1, description="Failed and canceled Dagster runs are kept this long."
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8765
    dagster_port: int = Field(
        default=3000, description="Port of the Dagster UI (webserver) under smartplex demo and smartplex run."
    )
    dagster_url: str | None = Field(
        default=None,
        description="Base URL of the Dagster UI the admin page links to; unset: http://127.0.0.1:<dagster_port>.",
    )
    local_workers: int = Field(
        default=0, ge=0, description="Celery run workers smartplex run starts on this machine (docs/scaling.md)."
    )
    worker_concurrency: int = Field(default=1, ge=1, description="Runs one smartplex worker executes at once.")
    worker_queue: str = Field(default="smartplex", description="The Celery queue smartplex worker takes runs from.")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: Any) -> Any:
        # An empty variable must never become an empty secret that an empty token would match.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if v != ""}
        return values

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'smartplex.db'}"

    @property
    def tautulli_event_keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.tautulli_event_key.split(",") if k.strip())

    def webhook_secret_for(self, source: str) -> SecretStr | None:
        """The per-source secret when set, else the installation's secret."""
        return getattr(self, f"webhook_secret_{source}") or self.webhook_secret

    def unprotected_sources(self) -> list[str]:
        return [s.name for s in SERVICES if self.webhook_secret_for(s.name) is None]

    def service_url(self, service: str) -> str | None:
        url: str | None = getattr(self, f"{service}_url")
        return url

    def service_credential(self, service: str) -> SecretStr | None:
        credential: SecretStr | None = getattr(self, f"{service}_{get_service(service).credential_setting}")
        return credential

    def is_configured(self, service: str) -> bool:
        return bool(self.service_url(service) and self.service_credential(service))


def service_env_names(service: str) -> tuple[str, str]:
    """The variables that configure one service: its URL and its credential."""
    svc = get_service(service)
    prefix = f"SMARTPLEX_{svc.name.upper()}"
    return f"{prefix}_URL", f"{prefix}_{svc.credential_setting.upper()}"


def _per_service_fields() -> dict[str, Any]:
    """``webhook_secret_<svc>``, ``<svc>_url`` and ``<svc>_api_key`` (``plex_token``) for each service."""
    fields: dict[str, Any] = {}
    for s in SERVICES:
        fields[f"webhook_secret_{s.name}"] = (
            SecretStr | None,
            Field(default=None, description=f"Webhook secret for {s.title} only (overrides webhook_secret)."),
        )
        fields[f"{s.name}_url"] = (
            str | None,
            Field(default=None, description=f"Base URL of {s.title}, including any URL base path."),
        )
        fields[f"{s.name}_{s.credential_setting}"] = (
            SecretStr | None,
            Field(default=None, description=f"{s.title} API {s.credential_setting.replace('_', ' ')}."),
        )
    return fields


Settings = create_model("Settings", __base__=SettingsBase, **_per_service_fields())


@lru_cache
def get_settings() -> SettingsBase:
    return Settings()
