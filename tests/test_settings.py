"""Every instance's variables, named by ``instance_variables``, are read as the fields are: from keyword
arguments, the environment and ``.env``, an empty one counting as unset."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from smartplex.instances import Instance, instance_variables
from smartplex.kinds import KINDS, Kind
from smartplex.settings import INSTANCES_VAR, Settings
from smartplex_cli import _problem

Environ = Callable[..., None]


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environ:
    """Set these ``SMARTPLEX_*`` variables and no others; the working directory (and its ``.env``) is ``tmp_path``."""
    for name in [n for n in os.environ if n.upper().startswith("SMARTPLEX_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return apply


def _values(settings: Settings, instance: Instance) -> tuple[str | None, str | None, str | None]:
    """URL, credential and webhook secret, as the code sees them."""
    credential, secret = settings.service_credential(instance), settings.webhook_secret_for(instance)
    return (
        settings.service_url(instance),
        credential.get_secret_value() if credential else None,
        secret.get_secret_value() if secret else None,
    )


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_every_kinds_variables_configure_its_default_and_extra_instances(kind: Kind, environ: Environ) -> None:
    default, extra = Instance(kind), Instance(kind, "second")
    env = {INSTANCES_VAR: f"{kind.name}:second"}
    for instance in (default, extra):
        values = (f"http://{instance.slug}", f"{instance.slug}-key", f"{instance.slug}-secret")
        env |= dict(zip(instance_variables(instance), values, strict=True))
    environ(**env)
    settings = Settings(_env_file=None)
    for instance in (default, extra):
        assert _values(settings, instance) == (
            f"http://{instance.slug}",
            f"{instance.slug}-key",
            f"{instance.slug}-secret",
        )
    assert settings.is_configured(default) and settings.is_configured(extra)


def test_the_env_file_configures_every_instance_and_the_environment_wins(tmp_path: Path, environ: Environ) -> None:
    (tmp_path / ".env").write_text(
        "SMARTPLEX_INSTANCES=sonarr:4k\n"
        "SMARTPLEX_SONARR_URL=http://file\nSMARTPLEX_SONARR_API_KEY=file-key\n"
        "SMARTPLEX_SONARR_4K_URL=http://file-4k\nSMARTPLEX_SONARR_4K_API_KEY=file-4k-key\n"
        "SMARTPLEX_SONARR_4K_WEBHOOK_SECRET=file-4k-secret\n"
        "RADARR_URL=http://not-ours\nRADARR_API_KEY=k\n"  # without the prefix: another program's
    )
    environ(SMARTPLEX_SONARR_URL="http://env", SMARTPLEX_SONARR_4K_API_KEY="env-4k-key")
    settings = Settings()
    sonarr, sonarr_4k, radarr = (settings.instance(i) for i in ("sonarr", "sonarr/4k", "radarr"))
    assert _values(settings, sonarr) == ("http://env", "file-key", None)
    assert _values(settings, sonarr_4k) == ("http://file-4k", "env-4k-key", "file-4k-secret")
    assert not settings.is_configured(radarr)
    # Without the file, the environment's 4K key is for an instance nobody declares.
    with pytest.raises(ValidationError, match="SMARTPLEX_SONARR_4K_API_KEY is set"):
        Settings(_env_file=None)


def test_a_keyword_argument_is_the_variables_name_and_wins(environ: Environ) -> None:
    environ(SMARTPLEX_SONARR_URL="http://env", SMARTPLEX_SONARR_API_KEY="env-key")
    settings = Settings(
        _env_file=None,
        sonarr_url="http://argument",
        webhook_secret_sonarr="sonarr-secret",
        instances="radarr:4k",
        radarr_4k_url="http://radarr-4k",
        radarr_4k_api_key="radarr-4k-key",
    )
    assert _values(settings, settings.instance("sonarr")) == ("http://argument", "env-key", "sonarr-secret")
    assert _values(settings, settings.instance("radarr/4k")) == ("http://radarr-4k", "radarr-4k-key", None)


def test_an_empty_variable_is_unset_wherever_it_comes_from(tmp_path: Path, environ: Environ) -> None:
    (tmp_path / ".env").write_text("SMARTPLEX_WEBHOOK_SECRET_PLEX=file-secret\nSMARTPLEX_ADMIN_SECRET=file-secret\n")
    environ(SMARTPLEX_WEBHOOK_SECRET="everyone", SMARTPLEX_WEBHOOK_SECRET_PLEX="", SMARTPLEX_ADMIN_SECRET="")
    settings = Settings(sonarr_url="", sonarr_api_key="", webhook_secret_tautulli="")
    # An empty variable overrides the file's value as for a field, and then counts as unset: no empty secret.
    assert settings.admin_secret is None
    assert _values(settings, settings.instance("plex")) == (None, None, "everyone")
    assert _values(settings, settings.instance("tautulli")) == (None, None, "everyone")
    assert _values(settings, settings.instance("sonarr")) == (None, None, "everyone")


def test_an_undeclared_instance_in_the_env_file_is_refused(tmp_path: Path, environ: Environ) -> None:
    (tmp_path / ".env").write_text("SMARTPLEX_RADARR_4K_API_KEY=k\n")
    with pytest.raises(ValidationError, match="SMARTPLEX_RADARR_4K_API_KEY is set, but SMARTPLEX_INSTANCES does not"):
        Settings()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"sonarr_url": 8989}, "SMARTPLEX_SONARR_URL: expected text"),
        ({"db_timeout_seconds": 0}, "SMARTPLEX_DB_TIMEOUT_SECONDS: Input should be greater than 0"),
        ({"instances": "sonarr:4k", "sonarr_4k_url": "http://x"}, "SMARTPLEX_SONARR_4K_API_KEY is not set"),
    ],
    ids=["instance-variable", "field", "declared-instance"],
)
def test_a_bad_value_is_refused_naming_its_variable(values: dict[str, object], problem: str, environ: Environ) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **values)
    assert [_problem(error) for error in refused.value.errors()][0].startswith(problem)
