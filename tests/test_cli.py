"""The smartplex command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from sqlalchemy import inspect

from smartplex import migrate
from smartplex.db import make_engine
from smartplex_cli.supervisor import free_port, kill_all, wait_for_http


def _smartplex(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartplex_cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_is_idempotent_and_downgrade_works(database_url: str, tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path)}
    first = _smartplex("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert f"empty -> {migrate.head_revision()}" in first.stdout
    second = _smartplex("db", "upgrade", env=env)
    assert f"{migrate.head_revision()} -> {migrate.head_revision()}" in second.stdout
    engine = make_engine(database_url)
    assert {"webhook_log", "sync_schedule"} <= set(inspect(engine).get_table_names())
    down = _smartplex("db", "downgrade", env=env)  # one step back
    previous = migrate.revisions()[-1][1]
    assert down.returncode == 0 and f"now at {previous}" in down.stdout
    assert "webhook_log" in inspect(engine).get_table_names()
    assert "base" in _smartplex("db", "downgrade", "--revision", "base", env=env).stdout
    assert "webhook_log" not in inspect(engine).get_table_names()
    engine.dispose()


def test_default_database_is_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path / "data")}
    env_clean = {k: v for k, v in os.environ.items() if k != "SMARTPLEX_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "smartplex_cli", "db", "upgrade"],
        env={**env_clean, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "smartplex.db").exists()


def test_db_sql_prints_the_committed_file(tmp_path: Path) -> None:
    result = _smartplex("db", "sql", "--revision", "005", env={"SMARTPLEX_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.strip() == migrate.sql_file("005").read_text().strip()


def test_empty_secret_counts_as_unset() -> None:
    from smartplex.instances import DEFAULT_INSTANCES
    from smartplex.settings import Settings

    settings = Settings(_env_file=None, webhook_secret="", admin_secret="")
    assert settings.webhook_secret is None and settings.admin_secret is None
    assert settings.unprotected_instances() == list(DEFAULT_INSTANCES)


def test_api_refuses_a_public_bind_without_secrets(tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_WEBHOOK_SECRET": "", "SMARTPLEX_ADMIN_SECRET": ""}
    result = _smartplex("api", "--host", "0.0.0.0", "--port", "1", env=env)
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0 without secrets" in result.stderr


def test_api_refuses_to_start_on_a_configured_database_behind(database_url: str, tmp_path: Path) -> None:
    # Not migrated; an explicit URL (SQLite too) is never migrated behind the user's back.
    env = {"SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path)}
    result = _smartplex("api", "--port", "0", env=env)
    assert result.returncode != 0
    assert "smartplex db upgrade" in result.stderr


def test_api_workers_refuse_a_configured_database_behind_before_any_starts(database_url: str, tmp_path: Path) -> None:
    """With several workers the schema is checked once, before any worker starts: one clear message."""
    env = {"SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path)}
    result = _smartplex("api", "--port", "0", "--workers", "2", env=env)
    assert result.returncode == 1
    assert "smartplex db upgrade" in result.stderr
    assert "Started parent process" not in result.stderr


def test_api_workers_option() -> None:
    assert "--workers" in _smartplex("api", "--help", env={}).stdout
    refused = _smartplex("api", "--workers", "0", env={})
    assert refused.returncode == 2 and "--workers" in refused.stderr


def test_run_refuses_without_a_configured_service(tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path), **{v: "" for s in ("PLEX", "TAUTULLI", "SONARR", "RADARR", "OVERSEERR")
                                                   for v in (f"SMARTPLEX_{s}_URL",)}}  # fmt: skip
    result = _smartplex("run", env=env)
    assert result.returncode != 0
    assert "no service is configured" in result.stderr and "SMARTPLEX_SONARR_URL" in result.stderr


def test_run_refuses_without_secrets(tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_SONARR_URL": "http://127.0.0.1:1",
           "SMARTPLEX_SONARR_API_KEY": "k", "SMARTPLEX_WEBHOOK_SECRET": "", "SMARTPLEX_ADMIN_SECRET": ""}  # fmt: skip
    result = _smartplex("run", env=env)
    assert result.returncode != 0
    assert "SMARTPLEX_WEBHOOK_SECRET" in result.stderr and "SMARTPLEX_ADMIN_SECRET" in result.stderr


def test_the_access_log_never_shows_the_secret(tmp_path: Path) -> None:
    import httpx

    port = free_port()
    secret = "do-not-log-me-42"
    env = {**os.environ, "SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_WEBHOOK_SECRET": secret,
           "SMARTPLEX_ADMIN_SECRET": "admin-secret"}  # fmt: skip
    env.pop("SMARTPLEX_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60)
        base = f"http://127.0.0.1:{port}/api/webhooks"
        assert (
            httpx.post(f"{base}/plex?token={secret}", files={"payload": (None, '{"event": "media.play"}')}).status_code
            == 202
        )
        assert httpx.post(f"{base}/sonarr?x=1&token={secret}", json={"eventType": "Test"}).status_code == 202
        assert httpx.post(f"{base}/sonarr?token=wrong-{secret}", json={"eventType": "Test"}).status_code == 401
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "POST /api/webhooks/plex?token=*** " in output
    assert secret not in output


@contextmanager
def _foreign_server() -> Iterator[int]:
    """Another web server on a loopback port: it answers 404 to every path SmartPlex asks about."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _run_briefly(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``smartplex ARGS``; whatever it started is killed if it is still running after ``timeout`` seconds."""
    process = subprocess.Popen([sys.executable, "-m", "smartplex_cli", *args], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all([*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)], timeout=10)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"smartplex {' '.join(args)} still ran after {timeout:.0f}s:\n{stdout}\n{stderr}"
        ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_demo_says_which_port_is_taken_before_starting_anything(tmp_path: Path) -> None:
    with _foreign_server() as taken:
        env = {"SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_API_PORT": str(taken),
               "SMARTPLEX_DAGSTER_PORT": str(free_port())}  # fmt: skip
        result = _run_briefly(["demo", "--size", "50"], env)
    assert result.returncode != 0
    assert f"port {taken}, for the webhook API, is taken by pid {os.getpid()}" in result.stderr, result.stderr
    assert "SMARTPLEX_API_PORT" in result.stderr and "--api-port" in result.stderr
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_run_honours_the_dagster_port_setting_and_says_it_is_taken(tmp_path: Path) -> None:
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_SONARR_URL": "http://127.0.0.1:9",
           "SMARTPLEX_SONARR_API_KEY": "k", "SMARTPLEX_WEBHOOK_SECRET": "w", "SMARTPLEX_ADMIN_SECRET": "a",
           "SMARTPLEX_API_PORT": str(free_port())}  # fmt: skip
    with _foreign_server() as taken:
        result = _run_briefly(["run"], {**env, "SMARTPLEX_DAGSTER_PORT": str(taken)})
    assert result.returncode != 0
    assert f"port {taken}, for the Dagster UI, is taken" in result.stderr, result.stderr
    assert "SMARTPLEX_DAGSTER_PORT" in result.stderr


def test_the_readiness_check_knows_our_api_from_another_server(tmp_path: Path) -> None:
    from smartplex_cli.stack import is_our_api

    with _foreign_server() as port, pytest.raises(TimeoutError):
        wait_for_http(f"http://127.0.0.1:{port}/openapi.json", 2, accept=is_our_api)
    port = free_port()
    env = {**os.environ, "SMARTPLEX_DATA_DIR": str(tmp_path)}
    env.pop("SMARTPLEX_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/openapi.json", 60, accept=is_our_api)
    finally:
        server.terminate()
        server.wait(30)


def test_a_process_that_dies_at_start_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    # A configured database that was never migrated: the API refuses to start, and says why in its log.
    env = {"SMARTPLEX_DATA_DIR": str(tmp_path), "SMARTPLEX_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
           "SMARTPLEX_SONARR_URL": "http://127.0.0.1:9", "SMARTPLEX_SONARR_API_KEY": "k",
           "SMARTPLEX_WEBHOOK_SECRET": "w", "SMARTPLEX_ADMIN_SECRET": "a"}  # fmt: skip
    result = _run_briefly(["run", "--api-port", str(free_port()), "--dagster-port", str(free_port())], env)
    assert result.returncode != 0
    assert "api exited with code" in result.stderr, result.stderr
    assert "run 'smartplex db upgrade'" in result.stderr  # the cause, from logs/api.log
    assert str(tmp_path / "logs" / "api.log") in result.stderr
