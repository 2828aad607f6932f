"""The real processes: the API (uvicorn), dagster-daemon and dagster-webserver, and the simulators
posting real webhooks; then a headless Chromium looks at the Dagster UI."""

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import Engine, func, select

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.schema import (
    overseerr_requests,
    plex_library_items,
    radarr_movies,
    sonarr_series,
    tautulli_watch_history,
    webhook_log,
)
from smartplex_cli import dagster_home
from smartplex_cli.stack import start_stack
from smartplex_cli.supervisor import Supervisor, free_port
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from smartplex_simulators.webhooks import WebhookSender
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET
from tests.requirements import require_or_skip

pytestmark = [pytest.mark.timeout(900), pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip


@dataclass
class Stack:
    engine: Engine
    sims: RunningSimulators
    supervisor: Supervisor
    api_port: int
    dagster_port: int
    pids: set[int]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    database_url = f"sqlite:///{home / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    api_port, dagster_port = free_port(), free_port()
    simulation = Simulation(Universe(seed=5, size=300, now=int(time.time())))
    supervisor = Supervisor()
    with run_simulators(simulation=simulation) as sims:
        env = {**os.environ, **sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(home),
               "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
               "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "2",
               "SMARTPLEX_HISTORY_START": (date.today() - timedelta(days=30)).isoformat(),
               "DAGSTER_HOME": str(dagster_home.prepare(home))}  # fmt: skip
        try:
            start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=home / "logs")
            simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{kind}}?token={WEBHOOK_SECRET}"
            )
            yield Stack(engine, sims, supervisor, api_port, dagster_port, set(supervisor.pids()))
        finally:
            supervisor.stop()


def _has(engine: Engine, table, condition) -> bool:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(condition)).scalar_one() == 1


def test_webhooks_from_every_source_are_synced(stack: Stack) -> None:
    simulation = stack.sims.simulation
    show = simulation.add_show("End To End Show", seasons=1, episodes_per_season=2)  # sonarr, plex, tautulli
    movie = simulation.add_movie("End To End Movie")  # radarr, plex, tautulli
    play = simulation.record_play(show.episodes[0].rating_key, percent=100)  # plex, tautulli
    request = simulation.request_media(movie_id=movie.id)
    simulation.approve_request(request.id)  # overseerr

    deadline = time.monotonic() + 420
    while True:
        with stack.engine.connect() as connection:
            counts = dict(
                connection.execute(select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)).all()
            )
            sources = set(connection.execute(select(webhook_log.c.source).distinct()).scalars())
        if sources == {"plex", "tautulli", "sonarr", "radarr", "overseerr"} and not (
            counts.get("pending") or counts.get("dispatched")
        ):
            break
        assert not stack.supervisor.exited(), stack.supervisor.exited()
        assert time.monotonic() < deadline, f"rows not processed in time: {counts}, {sources}"
        time.sleep(2)
    assert counts.get("failed", 0) == 0, counts
    assert _has(stack.engine, sonarr_series, sonarr_series.c.id == show.id)
    assert _has(stack.engine, radarr_movies, radarr_movies.c.id == movie.id)
    assert _has(stack.engine, plex_library_items, plex_library_items.c.rating_key == str(movie.rating_key))
    assert _has(stack.engine, tautulli_watch_history, tautulli_watch_history.c.row_id == play.id)
    assert _has(stack.engine, overseerr_requests, overseerr_requests.c.id == request.id)


def test_the_daemon_and_the_webserver_share_the_stacks_code_server(stack: Stack) -> None:
    """Neither starts a code server of its own (the daemon would replace its own every minute); every
    run was launched by the one the stack started, which forks its runs from a fork server that has
    the code location imported."""
    processes = stack.supervisor.processes

    def under(name: str) -> list[str]:
        commands = []
        for child in psutil.Process(processes[name].pid).children(recursive=True):
            try:
                commands.append(" ".join(child.cmdline()))
            except psutil.Error:  # a run's process that has just ended
                continue
        return commands

    assert not [c for c in under("dagster-daemon") + under("dagster-webserver") if "api grpc" in c]
    assert "smartplex-dagster-code-server" in " ".join(psutil.Process(processes["dagster-code-server"].pid).cmdline())
    # The runs so far (the test above made some) were the fork server's children: it has reaped them,
    # so their CPU time is counted on it. No run was a spawned interpreter.
    code_server = psutil.Process(processes["dagster-code-server"].pid)
    fork_servers = _fork_servers(stack)
    assert len(fork_servers) == 1, under("dagster-code-server")
    assert "'smartplex_dagster.runtime.run_preload'" in " ".join(fork_servers[0].cmdline())
    reaped = fork_servers[0].cpu_times()
    assert reaped.children_user + reaped.children_system > 0, "no run has ended as a child of the fork server"
    assert code_server.cpu_times().children_user == 0, "a run ran as the code server's own child"
    assert not [c for c in under("dagster-code-server") if "multiprocessing.spawn" in c]
    logs = Path(stack.supervisor.logs["dagster-daemon"]).parent
    assert not any("No heartbeat received" in log.read_text(errors="replace") for log in logs.glob("*.log"))


def _fork_servers(stack: Stack) -> list[psutil.Process]:
    """The code server's live fork servers (a killed one stays a zombie until the code server reaps it)."""
    found = []
    for child in psutil.Process(stack.supervisor.processes["dagster-code-server"].pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "multiprocessing.forkserver" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_a_killed_fork_server_is_replaced_and_no_webhook_is_lost(stack: Stack) -> None:
    """The code server starts a new fork server for the next run when its own has died (killed, or
    out of memory): the webhooks posted after it died are synced like any other."""
    (killed,) = _fork_servers(stack)
    killed.kill()
    movie = stack.sims.simulation.add_movie("After The Fork Server")  # radarr and plex webhooks
    deadline = time.monotonic() + 300
    while not (_has(stack.engine, radarr_movies, radarr_movies.c.id == movie.id) and _settled(stack.engine)):
        assert not stack.supervisor.exited(), stack.supervisor.exited()
        assert time.monotonic() < deadline, "the webhooks after the fork server died were not processed"
        time.sleep(1)
    with stack.engine.connect() as connection:
        assert connection.scalar(select(func.count()).where(webhook_log.c.status == "failed")) == 0
    (replacement,) = _fork_servers(stack)
    assert replacement.pid != killed.pid


def _settled(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not connection.scalar(select(func.count()).where(webhook_log.c.status.in_(["pending", "dispatched"])))


def _browser():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        require_or_skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_the_dagster_ui_shows_the_assets_and_a_successful_run(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.dagster_port}"
    ARTIFACTS.mkdir(exist_ok=True)
    with _browser() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/assets/derived/media_catalog?view=lineage&lineageScope=upstream", wait_until="networkidle")
        try:  # a first visit offers a newsletter
            page.get_by_role("button", name="Skip").click(timeout=5000)
        except Exception:
            pass
        page.locator("text=watch_stats").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="All", exact=True).click()  # the whole upstream graph, not one level
        page.wait_for_timeout(2000)  # let the graph lay out before the screenshot
        page.screenshot(path=str(ARTIFACTS / "asset-graph.png"))
        html = page.content()
        missing = [
            n
            for n in ("webhook_log", "library_items", "watch_history", "series", "movies", "requests")
            if n not in html
        ]
        assert missing == [], missing

        page.goto(f"{base}/runs", wait_until="networkidle")
        page.get_by_text("Success").first.wait_for(timeout=60_000)
        assert page.get_by_text("webhook_sensor").count() > 0
        page.screenshot(path=str(ARTIFACTS / "runs.png"))
        browser.close()


def test_stopping_leaves_no_process_behind(stack: Stack) -> None:
    family = set(stack.pids)
    for pid in stack.pids:
        if psutil.pid_exists(pid):
            family |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    stack.supervisor.stop()
    left = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
