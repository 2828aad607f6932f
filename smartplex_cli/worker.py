"""``smartplex worker``: a Celery worker that executes Dagster runs of the code location.

With the Celery run launcher (the repository's ``dagster.yaml``), the daemon hands each run to the
broker; a worker takes it and executes it inside one of its own long-lived processes. The code
location is imported once, before the pool's processes are forked, so a run does not pay for
starting Python and importing Dagster and the definitions. Workers may run on any machine that
reaches PostgreSQL (both databases), the broker and the services (docs/scaling.md).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import click

from smartplex.dagster_names import DEFINITIONS_MODULE
from smartplex.settings import get_settings

_log = logging.getLogger("smartplex.worker")


def celery_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with a persistent Celery result backend when none is set: the Dagster PostgreSQL database.

    The default (``rpc://``) keeps task states only in messages to the process that sent the task, so
    the daemon's run monitoring could not see that a worker's process died mid-run.
    """
    result = dict(env)
    if not result.get("CELERY_RESULT_BACKEND") and result.get("DAGSTER_PG_HOST"):
        user = result.get("DAGSTER_PG_USER", "postgres")
        password = result.get("DAGSTER_PG_PASSWORD", "")
        credentials = f"{user}:{password}" if password else user
        host, port, db = (
            result["DAGSTER_PG_HOST"],
            result.get("DAGSTER_PG_PORT", "5432"),
            result.get("DAGSTER_PG_DB", ""),
        )
        result["CELERY_RESULT_BACKEND"] = f"db+postgresql+psycopg2://{credentials}@{host}:{port}/{db}"
    return result


def _run_id(kwargs: Mapping[str, Any] | None) -> str:
    """The Dagster run a task executes, from its packed arguments."""
    from dagster_shared.serdes import unpack_value

    try:
        packed = next(iter((kwargs or {}).values()))
        return str(getattr(unpack_value(packed), "run_id"))  # noqa: B009 (the unpacked type is not known statically)
    except Exception:  # a task of another kind: say so rather than fail the worker
        return "?"


def _connect_signals() -> None:
    """Say in the worker's log which run each task is, as it is taken and as it ends; let the pool's
    processes start children."""
    from celery import signals  # type: ignore[import-untyped]

    def taken(task_id: str | None = None, kwargs: Mapping[str, Any] | None = None, **_: Any) -> None:
        _log.info("took run %s (task %s, pid %s)", _run_id(kwargs), task_id, os.getpid())

    def ended(task_id: str | None = None, kwargs: Mapping[str, Any] | None = None, state: str | None = None,
              **_: Any) -> None:  # fmt: skip
        _log.info("run %s done: task %s %s", _run_id(kwargs), task_id, state)

    signals.task_prerun.connect(taken, weak=False)
    signals.task_postrun.connect(ended, weak=False)
    signals.worker_process_init.connect(_may_have_children, weak=False)


def _may_have_children(**_: Any) -> None:
    """Let a pool process start processes of its own.

    The pool's processes are daemonic, and ``multiprocessing`` refuses children to a daemonic process;
    but a run with Dagster's multiprocess executor (full refreshes, derived assets) executes each step
    in a child. The worker's main process still ends its pool processes itself when it stops.
    """
    import multiprocessing.process

    import billiard.process  # type: ignore[import-untyped]

    for module in (multiprocessing.process, billiard.process):
        module.current_process()._config.pop("daemon", None)  # no public way to clear the flag once started
    # The pool process's key is billiard's kind, which multiprocessing's spawn refuses to pickle for the child.
    key = multiprocessing.process.AuthenticationString(os.urandom(32))  # type: ignore[attr-defined]
    multiprocessing.process.current_process()._config["authkey"] = key  # type: ignore[attr-defined]


def make_worker_app() -> Any:
    """The Celery app of ``DAGSTER_HOME``'s Celery run launcher, with the run tasks registered."""
    import dagster as dg
    from dagster_celery.launcher import CeleryRunLauncher
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

    if not os.environ.get("DAGSTER_HOME"):
        raise click.UsageError("set DAGSTER_HOME to the directory of the production dagster.yaml")
    with dg.DagsterInstance.get() as dagster_instance:
        launcher = dagster_instance.run_launcher
        if not isinstance(launcher, CeleryRunLauncher):
            raise click.UsageError(
                f"the run launcher of {os.environ['DAGSTER_HOME']} is {type(launcher).__name__}, not "
                "CeleryRunLauncher: use the repository's dagster.yaml (docs/scaling.md)"
            )
        app = make_app(launcher.app_args())  # type: ignore[no-untyped-call]
    create_execute_job_task(app)
    create_resume_job_task(app)
    return app


@click.command()
@click.option("--concurrency", default=None, type=int, help="Runs at once (default SMARTPLEX_WORKER_CONCURRENCY, 1).")
@click.option(
    "--queue", default=None, help="Celery queue to take runs from (default SMARTPLEX_WORKER_QUEUE, smartplex)."
)
@click.option("--name", default=None, help="Celery node name (default smartplex-<pid>@<host>).")
def worker(concurrency: int | None, queue: str | None, name: str | None) -> None:
    """Execute Dagster runs handed out through Celery (the production dagster.yaml's run launcher)."""
    settings = get_settings()
    concurrency = concurrency or settings.worker_concurrency
    queue = queue or settings.worker_queue
    os.environ.update(celery_env(os.environ))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = make_worker_app()
    # Imported here, before the pool forks: each of the pool's processes starts with it loaded.
    importlib.import_module(DEFINITIONS_MODULE)
    _connect_signals()
    node = name or f"smartplex-{os.getpid()}@{socket.gethostname()}"
    click.echo(f"SmartPlex worker {node}: queue {queue}, {concurrency} run(s) at once")
    app.worker_main([
        "worker", "--loglevel", "INFO", "--pool", "prefork", "--concurrency", str(concurrency),
        "--queues", queue, "--hostname", node, "--without-gossip", "--without-mingle",
    ])  # fmt: skip
