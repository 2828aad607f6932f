"""All configuration in one pydantic-settings class, read from ``SMARTPLEX_*`` variables or ``.env``.

Every service instance's variables (``SMARTPLEX_SONARR_URL``, ...) are named by :func:`~smartplex.instances.instance_variables`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from smartplex.instances import DEFAULT_INSTANCE, DEFAULT_INSTANCES, INSTANCE_NAME, Instance, instance_variables
from smartplex.kinds import BY_NAME, KINDS

INSTANCES_VAR = "SMARTPLEX_INSTANCES"
_PREFIX = "SMARTPLEX_"
#: Where the instances' variables travel from their source to the validator: no field has this name.
_VARIABLES = "instance variables"


@dataclass(frozen=True)
class InstanceSettings:
    """One instance's values, read from the variables :func:`instance_variables` names."""

    url: str | None
    credential: SecretStr | None
    webhook_secret: SecretStr | None


class InstancesError(ValueError):
    """The instance configuration is ambiguous or incomplete; the message names the variable."""


class Settings(BaseSettings):
    # A refused value's message must not carry the secrets beside it (into a log, the Dagster UI).
    model_config = SettingsConfigDict(env_prefix=_PREFIX, env_file=".env", extra="ignore", hide_input_in_errors=True)

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
    #: Every instance's values, in the order of :attr:`service_instances`.
    _instances: dict[Instance, InstanceSettings] = PrivateAttr(default_factory=dict)

    api_host: str = "127.0.0.1"
    api_port: int = 8765
    dagster_port: int = Field(
        default=3000, description="Port of the Dagster UI (webserver) under smartplex demo and smartplex run."
    )
    dagster_url: str | None = Field(
        default=None,
        # An http(s) URL only: the admin page makes links of it, and any other scheme (javascript:) would
        # be a link that runs something.
        pattern=r"^(?i:https?)://\S",
        description="Base URL of the Dagster UI the admin page links to (http:// or https://); unset: "
        "http://127.0.0.1:<dagster_port>.",
    )
    local_workers: int = Field(
        default=0, ge=0, description="Celery run workers smartplex run starts on this machine (docs/scaling.md)."
    )
    worker_concurrency: int = Field(default=1, ge=1, description="Runs one smartplex worker executes at once.")
    worker_queue: str = Field(default="smartplex", description="The Celery queue smartplex worker takes runs from.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        variables = _InstanceVariablesSource(settings_cls, init_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings, variables

    @model_validator(mode="wrap")
    @classmethod
    def _read(cls, values: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        variables: dict[str, Any] = {}
        if isinstance(values, dict):
            # An empty variable must never become an empty secret that an empty token would match.
            values = {k: v for k, v in values.items() if v != ""}
            variables = values.pop(_VARIABLES, {})
        settings = handler(values)
        declared = _declared(settings.instances or "")
        _refuse_undeclared(variables, declared)
        settings._instances = {
            instance: _instance_settings(instance, variables, required=not instance.is_default)
            for default in DEFAULT_INSTANCES
            for instance in (default, *sorted((i for i in declared if i.kind == default.kind), key=lambda i: i.name))
        }
        return settings

    @property
    def service_instances(self) -> tuple[Instance, ...]:
        """Every instance: each kind's default, then its declared ones by name."""
        return tuple(self._instances)

    def instance(self, instance_id: str) -> Instance:
        """The configured instance ``instance_id`` names (``sonarr``, ``sonarr/4k``); ``KeyError`` if none."""
        try:
            instance = Instance.parse(instance_id)
        except ValueError:
            raise KeyError(instance_id) from None
        if instance not in self._instances:
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
        (``SMARTPLEX_WEBHOOK_SECRET_SONARR``), else the installation's."""
        kind = self._instances[Instance(instance.kind)].webhook_secret
        return self._instances[instance].webhook_secret or kind or self.webhook_secret

    def unprotected_instances(self) -> list[Instance]:
        """The instances whose webhooks need no secret."""
        return [i for i in self.service_instances if self.webhook_secret_for(i) is None]

    def service_url(self, instance: Instance) -> str | None:
        """The base URL of one instance's service."""
        return self._instances[instance].url

    def service_credential(self, instance: Instance) -> SecretStr | None:
        """The API key (Plex: token) of one instance's service."""
        return self._instances[instance].credential

    def is_configured(self, instance: Instance) -> bool:
        return bool(self.service_url(instance) and self.service_credential(instance))


#: The name code type hints use; the settings are one class.
SettingsBase = Settings


class _InstanceVariablesSource(PydanticBaseSettingsSource):
    """Every ``SMARTPLEX_*`` variable that is not a field, by name, under one key: the instances'
    (``SMARTPLEX_SONARR_URL``). As for a field, a keyword argument (``sonarr_url=``) wins over the
    environment, which wins over ``.env``; pydantic-settings' own sources read only the fields."""

    def __init__(
        self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource, dotenv: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._init, self._dotenv = init, dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the fields are the other sources' business

    def __call__(self) -> dict[str, Any]:
        kwargs = self._init.init_kwargs if isinstance(self._init, InitSettingsSource) else {}
        layers: list[Mapping[str, Any]] = [
            self._dotenv.env_vars if isinstance(self._dotenv, DotEnvSettingsSource) else {},
            os.environ,
            {_PREFIX + key: value for key, value in kwargs.items()},
        ]
        # Names are case-blind, as the fields' are.
        merged = {name.upper(): value for layer in layers for name, value in layer.items()}
        fields = {_PREFIX + name.upper() for name in self.settings_cls.model_fields}
        variables = {n: v for n, v in merged.items() if n.startswith(_PREFIX) and n not in fields and v != ""}
        return {_VARIABLES: variables}


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
            url = instance_variables(Instance(BY_NAME[kind.lower()])).url
            raise InstancesError(f"{INSTANCES_VAR}: {entry!r}: 'default' is the instance {url} configures")
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


def _instance_settings(instance: Instance, variables: Mapping[str, Any], *, required: bool) -> InstanceSettings:
    """Read one instance's variables; refuse a ``required`` one without its URL or credential."""
    names = instance_variables(instance)
    values = InstanceSettings(
        _text(names.url, variables), _secret(names.credential, variables), _secret(names.webhook_secret, variables)
    )
    if required:
        for variable, value in ((names.url, values.url), (names.credential, values.credential)):
            if value is None:
                raise InstancesError(
                    f"{variable} is not set: {INSTANCES_VAR} declares {instance.kind.name}:{instance.name}, "
                    f"which needs {names.url} and {names.credential}"
                )
    return values


def _text(variable: str, variables: Mapping[str, Any]) -> str | None:
    value = variables.get(variable)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is not None and not isinstance(value, str):
        raise InstancesError(f"{variable}: expected text, got {type(value).__name__}")
    return value or None


def _secret(variable: str, variables: Mapping[str, Any]) -> SecretStr | None:
    value = _text(variable, variables)
    return SecretStr(value) if value else None


def _extra_instance(variable: str) -> Instance | None:
    """The extra instance a variable would configure (``SMARTPLEX_SONARR_4K_URL``: ``sonarr/4k``), if any."""
    for kind in KINDS:
        rest = variable.removeprefix(f"{_PREFIX}{kind.name.upper()}_")
        name = rest.partition("_")[0].lower()
        if rest != variable and INSTANCE_NAME.fullmatch(name) and name != DEFAULT_INSTANCE:
            instance = Instance(kind, name)
            if variable in instance_variables(instance):
                return instance
    return None


def _refuse_undeclared(variables: Mapping[str, Any], declared: list[Instance]) -> None:
    """A variable for an instance nobody declared is a typo or a forgotten declaration: either way,
    running without it would sync from the wrong place."""
    for variable in sorted(variables):
        instance = _extra_instance(variable)
        if instance is not None and instance not in declared:
            raise InstancesError(
                f"{variable} is set, but {INSTANCES_VAR} does not declare {instance.kind.name}:{instance.name}"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
