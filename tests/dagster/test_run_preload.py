"""The runs' fork server: what it does once so that each run's process does not."""

import json
import subprocess
import sys

from smartplex_dagster.runtime.code_server import PRELOAD

PROBE = """
import gc, json, os
import smartplex_dagster.runtime.run_preload
from smartplex.clients._http import tls_context
from smartplex_dagster.runtime.sqlite_storage import migrations
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, str(len(gc.get_objects())).encode())
    os._exit(0)
os.close(write)
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "collectable_in_a_run": int(os.read(read, 64)),
    "tls_contexts": tls_context.cache_info().currsize,
    "migration_scripts_read": migrations.cache_info().currsize,
}))
"""


def test_the_fork_server_preloads_the_run_preload() -> None:
    assert PRELOAD == ["smartplex_dagster.runtime.run_preload"]


def test_a_forked_run_finds_the_slow_first_steps_done_and_little_for_the_collector_to_walk() -> None:
    # A fresh interpreter, as the fork server is: a failing import there is silent (multiprocessing
    # ignores it), so this is where it must show.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    state = json.loads(done.stdout.splitlines()[-1])
    assert state["tls_contexts"] == 1
    assert state["migration_scripts_read"] == 1
    # Dagster and the code location are well over 100,000 objects; a forked run's collector sees only
    # the few made since the fork.
    assert state["frozen"] > 100_000
    assert state["collectable_in_a_run"] < 1_000
