"""``smartplex-dagster-code-server``: Dagster's code server (``dagster api grpc``, same options), whose
runs start from a fork server that has Dagster and the code location already imported.

Dagster's code server starts each run in a new interpreter (``multiprocessing``'s spawn): Python,
Dagster and the definitions imported again, about a second of CPU on an idle machine and several
under load, on the path of every webhook. Here the runs are forked from a fork server
(``multiprocessing``'s forkserver): a single-threaded process started once, which imports the code
location once (:mod:`smartplex_dagster.runtime.run_preload`); each run's process begins as a copy of it. Everything else is Dagster's code server.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing import forkserver

import dagster as dg

from smartplex_dagster.runtime.dagster_internals import code_server_main, start_runs_from

#: What the fork server imports before forking the first run: the code location and what every run
#: would otherwise do first (see the module).
PRELOAD = ["smartplex_dagster.runtime.run_preload"]


def _runs_start_here() -> bool:
    """Whether the instance's runs are launched by its code servers (Dagster's default run launcher),
    not handed to workers (the Celery run launcher): only then is a fork server worth its memory."""
    if not os.environ.get("DAGSTER_HOME"):
        return True
    with dg.DagsterInstance.get() as dagster_instance:
        return isinstance(dagster_instance.run_launcher, dg.DefaultRunLauncher)


def main() -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    start_runs_from(context)
    if _runs_start_here():
        # Started now, it imports the code location while the server loads its own copy: the first
        # run after a start is forked at once rather than waiting for that import.
        forkserver.ensure_running()
    code_server_main(sys.argv[1:])


if __name__ == "__main__":
    main()
