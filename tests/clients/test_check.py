"""``smartplex check`` against the simulators, and the base path a reverse proxy adds."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from smartplex.clients import PlexClient
from smartplex.kinds import KIND_NAMES
from smartplex_cli.check import check
from smartplex_cli.simulate import _parse_ports
from smartplex_simulators import RunningSimulators, run_simulators


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in KIND_NAMES:
        for suffix in ("URL", "API_KEY", "TOKEN"):
            monkeypatch.delenv(f"SMARTPLEX_{name.upper()}_{suffix}", raising=False)


def test_check_prints_each_configured_service(sims: RunningSimulators, clean_env: None) -> None:
    env = {**sims.env(), "SMARTPLEX_OVERSEERR_API_KEY": "wrong"}
    del env["SMARTPLEX_TAUTULLI_URL"]
    result = CliRunner().invoke(check, env=env)
    lines = {line.split()[1]: line for line in result.output.splitlines()}
    assert result.exit_code == 1
    assert lines["Plex"].startswith("ok") and "Plexbox 1.40.2.8395-c67dce28e" in lines["Plex"]
    assert f"{len(list(sims.universe.shows))} items" in lines["Sonarr"]
    assert lines["Overseerr"].startswith("FAIL") and "SMARTPLEX_OVERSEERR_API_KEY" in lines["Overseerr"]
    assert "wrong" not in result.output
    assert lines["Tautulli"].startswith("skip") and "SMARTPLEX_TAUTULLI_URL" in lines["Tautulli"]


def test_check_with_nothing_configured_says_what_to_set(clean_env: None) -> None:
    result = CliRunner().invoke(check, env={})
    assert result.exit_code == 1
    assert "SMARTPLEX_PLEX_URL/SMARTPLEX_PLEX_TOKEN" in result.output


def test_a_url_base_path_is_kept() -> None:
    with run_simulators(size=100, kinds=["sonarr", "plex"], url_bases={"sonarr": "/sonarr"}) as sims:
        assert sims.urls["sonarr"].endswith("/sonarr")
        with sims.client("sonarr") as client:
            assert client.server_info().library_size == len(sims.universe.shows)
        with PlexClient(sims.urls["plex"] + "/", sims.keys["plex"]) as client:  # a trailing slash is fine
            assert client.server_info().name == "Plexbox"


def test_simulate_port_options() -> None:
    assert _parse_ports(("plex=32400", "radarr=7878")) == {"plex": 32400, "radarr": 7878}
    with pytest.raises(Exception, match="INSTANCE=PORT"):
        _parse_ports(("jellyfin=8096",))


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell without job control starts `cmd &`


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_simulate_starts_all_five_and_prints_how_to_reach_them(stop: signal.Signals) -> None:
    # Started with SIGINT ignored, as a background job inherits it: it must stop all the same.
    process = subprocess.Popen(
        [sys.executable, "-m", "smartplex_cli", "simulate", "--size", "300", "--seed", "9"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        exports: dict[str, str] = {}
        assert process.stdout is not None
        while len(exports) < 10:
            line = process.stdout.readline()
            assert line, "simulate exited before printing every service"
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                exports[name] = value
        status = httpx.get(
            exports["SMARTPLEX_RADARR_URL"] + "/api/v3/system/status",
            headers={"X-Api-Key": exports["SMARTPLEX_RADARR_API_KEY"]},
        )
        assert status.json()["appName"] == "Radarr"
    finally:
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0  # generous: a loaded 2-core machine is slow to stop
