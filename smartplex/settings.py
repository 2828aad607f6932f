"""All configuration in one pydantic-settings class, read from ``SMARTPLEX_*`` variables or ``.env``."""

from __future__ import annotations

import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, PrivateAttr, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartplex.instances import DEFAULT_INSTANCE, DEFAULT_INSTANCES, INSTANCE_NAME, Instance
from smartplex.kinds import BY_NAME, KINDS

INSTANCES_VAR = "SMARTPLEX_INSTANCES"
#: A variable that configures an extra instance: SMARTPLEX_<KIND>_<NAME>_<SETTING>.
_INSTANCE_VARIABLE = re.compile(
    rf"SMARTPLEX_({'|'.join(s.name.upper() for s in KINDS)})_([A-Z0-9]+)_(URL|API_KEY|TOKEN|WEBHOOK_SECRET)"
)


class InstanceSettings(BaseSettings):
    """One extra instance's variables, read under its own prefix (``SMARTPLEX_SONARR_4K_``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    url: str | None = None
    api_key: SecretStr | None = None
    token: SecretStr | None = None
    webhook_secret: SecretStr | None = None


class InstancesError(ValueError):
    """The instance configuration is ambiguous or incomplete; the message names the variable."""


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

    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's own OpenTelemetry (traces, metrics, logs) for the API, to the SDK you configure.",
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
        description="Minimum interval between webhook sensor ticks (how often it polls webhook_log for pending rows).",
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

    instances: str | None = Field(
        default=None,
        description=(
            "Extra instances of a service, comma-separated SERVICE:NAME (sonarr:4k,radarr:4k). Each is configured "
            "by SMARTPLEX_<SERVICE>_<NAME>_URL and _API_KEY (_TOKEN for Plex), and may have its own _WEBHOOK_SECRET."
        ),
    )
    _extra: dict[str, tuple[Instance, InstanceSettings]] = PrivateAttr(default_factory=dict)

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

    @model_validator(mode="after")
    def _read_instances(self) -> SettingsBase:
        declared = _declared(self.instances or "")
        self._extra = {instance.id: (instance, _instance_settings(instance)) for instance in declared}
        _refuse_undeclared(self._extra)
        return self

    @property
    def service_instances(self) -> tuple[Instance, ...]:
        """Every instance: the five defaults, then the extra ones, each after its kind's default."""
        extra = [instance for instance, _ in self._extra.values()]
        return tuple(
            instance
            for default in DEFAULT_INSTANCES
            for instance in (default, *sorted((i for i in extra if i.kind == default.kind), key=lambda i: i.name))
        )

    def instance(self, instance_id: str) -> Instance:
        """The configured instance ``instance_id`` names (``sonarr``, ``sonarr/4k``); ``KeyError`` if none."""
        try:
            instance = Instance.parse(instance_id)
        except ValueError:
            raise KeyError(instance_id) from None
        if not instance.is_default and instance.id not in self._extra:
            raise KeyError(instance_id)
        return instance

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'smartplex.db'}"

    @property
    def tautulli_event_keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.tautulli_event_key.split(",") if k.strip())

    def webhook_secret_for(self, instance: Instance) -> SecretStr | None:
        """The webhook secret of one instance: its own when set, else its kind's
        (``webhook_secret_sonarr``), else the installation's."""
        kind: SecretStr | None = getattr(self, f"webhook_secret_{instance.kind.name}") or self.webhook_secret
        if instance.is_default:
            return kind
        return self._extra[instance.id][1].webhook_secret or kind

    def unprotected_instances(self) -> list[Instance]:
        """The instances whose webhooks need no secret."""
        return [i for i in self.service_instances if self.webhook_secret_for(i) is None]

    def service_url(self, instance: Instance) -> str | None:
        """The base URL of one instance's service."""
        if not instance.is_default:
            return self._extra[instance.id][1].url
        url: str | None = getattr(self, f"{instance.kind.name}_url")
        return url

    def service_credential(self, instance: Instance) -> SecretStr | None:
        """The API key (Plex: token) of one instance's service."""
        setting = instance.kind.credential_setting
        if not instance.is_default:
            credential: SecretStr | None = getattr(self._extra[instance.id][1], setting)
            return credential
        credential = getattr(self, f"{instance.kind.name}_{setting}")
        return credential

    def is_configured(self, instance: Instance) -> bool:
        return bool(self.service_url(instance) and self.service_credential(instance))


def _declared(value: str) -> list[Instance]:
    """The extra instances ``SMARTPLEX_INSTANCES`` declares; refuse what it cannot mean exactly."""
    instances: dict[str, Instance] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        kind, sep, name = (part.strip() for part in entry.partition(":"))
        if not sep or not name:
            raise InstancesError(f"{INSTANCES_VAR}: {entry!r} needs a name, as SERVICE:NAME (sonarr:4k)")
        if kind.lower() not in BY_NAME:
            raise InstancesError(
                f"{INSTANCES_VAR}: unknown service {kind!r} in {entry!r}; expected one of {', '.join(BY_NAME)}"
            )
        if name.lower() == DEFAULT_INSTANCE:
            raise InstancesError(
                f"{INSTANCES_VAR}: {entry!r}: 'default' is the instance SMARTPLEX_{kind.upper()}_URL configures"
            )
        if not INSTANCE_NAME.fullmatch(name.lower()):
            raise InstancesError(
                f"{INSTANCES_VAR}: bad name {name!r} in {entry!r}: use letters and digits only, at most 32"
            )
        instance = Instance(BY_NAME[kind.lower()], name.lower())
        if instance.id in instances:
            # Names are case-blind: they become variable names (SMARTPLEX_SONARR_4K_URL) and URLs.
            raise InstancesError(f"{INSTANCES_VAR} names {instance.kind.name}:{instance.name} twice ({entry!r})")
        instances[instance.id] = instance
    return list(instances.values())


def _instance_settings(instance: Instance) -> InstanceSettings:
    """Read one extra instance's variables; refuse it without its URL or credential, naming the variable."""
    prefix = f"SMARTPLEX_{instance.slug.upper()}_"
    values = InstanceSettings(_env_prefix=prefix)  # type: ignore[call-arg]
    credential = getattr(values, instance.kind.credential_setting)
    for variable, value in zip(instance.env_names, (values.url, credential), strict=True):
        if not value or (isinstance(value, SecretStr) and not value.get_secret_value()):
            raise InstancesError(
                f"{variable} is not set: {INSTANCES_VAR} declares {instance.kind.name}:{instance.name}, "
                f"which needs {' and '.join(instance.env_names)}"
            )
    return values


def _refuse_undeclared(extra: dict[str, Any]) -> None:
    """A variable for an instance nobody declared is a typo or a forgotten declaration: either way,
    running without it would sync from the wrong place."""
    for variable in sorted(os.environ):
        match = _INSTANCE_VARIABLE.fullmatch(variable)
        if match and os.environ[variable] and f"{match[1].lower()}/{match[2].lower()}" not in extra:
            raise InstancesError(
                f"{variable} is set, but {INSTANCES_VAR} does not declare {match[1].lower()}:{match[2].lower()}"
            )


def _per_service_fields() -> dict[str, Any]:
    """``webhook_secret_<svc>``, ``<svc>_url`` and ``<svc>_api_key`` (``plex_token``) for each service."""
    fields: dict[str, Any] = {}
    for s in KINDS:
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
