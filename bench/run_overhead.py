"""Run-overhead benchmark: Dagster's cost per run on the embedded instance's SQLite storage.

Executes Sonarr full refreshes (the ``full_refresh`` job over one asset, as "Sync now" asks for it)
in this process with ``dagster.execute_job`` against a 1,000-item simulator, each on a fresh
``DAGSTER_HOME``: once with Dagster's own ``storage: sqlite`` (the baseline), once with SmartPlex's
(:mod:`smartplex_dagster.runtime.sqlite_storage`), alternating over ``--rounds``. Per storage it prints the
median run (run start to run end, as Dagster records them), the median time outside the sync step,
the median size of a run's event file, and what writing one event to a run's file costs (the median
of ``--events`` engine events reported to one run); then the ratios. No other process runs: this is the
run's own machinery, without the daemon, the launch or the machine's other work.

Then the same refresh in processes forked from a fork server, as the code server starts runs: one
fork server that imported the code location alone (the baseline), one that imported
:mod:`smartplex_dagster.runtime.run_preload` (what the code server's does), ``--forked-runs`` each, alternating
over the rounds. Per fork server: the time from the fork to the run's end, the run, the run process's
own memory (not shared with the fork server) and its full garbage collections.

Run by hand; it asserts nothing:

    python bench/run_overhead.py [--runs 20] [--rounds 2] [--forked-runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from smartplex import migrate  # noqa: E402
from smartplex.dagster_names import DEFINITIONS_MODULE  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.instances import Instance  # noqa: E402
from smartplex_cli import dagster_home  # noqa: E402
from smartplex_simulators import run_simulators  # noqa: E402

SERVICE = "sonarr"
#: What the fork server imports before its first run: the code location alone (the baseline), and
#: the code server's own preload (smartplex_dagster.runtime.run_preload). Listed baseline last.
PRELOADS = {
    "smartplex_dagster.runtime.run_preload": "fork server: run_preload",
    DEFINITIONS_MODULE: "fork server: the code location (baseline)",
}


def refresh_job() -> Any:
    from smartplex_dagster.definitions import defs
    from smartplex_dagster.defs.run_requests import REFRESH_JOB

    return defs.resolve_job_def(REFRESH_JOB)


@contextlib.contextmanager
def fresh_home(storage: str, env: dict[str, str]) -> Iterator[Path]:
    """A data directory with a migrated product database and a ``DAGSTER_HOME`` on ``storage``."""
    home = Path(tempfile.mkdtemp(prefix="smartplex-overhead-"))
    try:
        os.environ.update({**env, "SMARTPLEX_DATABASE_URL": f"sqlite:///{home / 'smartplex.db'}",
                           "SMARTPLEX_DATA_DIR": str(home)})  # fmt: skip
        engine = make_engine(os.environ["SMARTPLEX_DATABASE_URL"])
        migrate.upgrade(engine)
        engine.dispose()
        dagster = dagster_home.prepare(home)
        if storage == "dagster":
            config = yaml.safe_load((dagster / "dagster.yaml").read_text())
            config["storage"] = {"sqlite": {"base_dir": str(dagster)}}
            (dagster / "dagster.yaml").write_text(yaml.safe_dump(config))
        yield dagster
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(storage: str, runs: int, events: int, env: dict[str, str]) -> dict[str, float]:
    """``runs`` full refreshes on a fresh home with ``storage`` ("dagster" or "smartplex")."""
    from smartplex_dagster.defs.library import asset_key
    from smartplex_dagster.defs.run_requests import full_refresh_run

    with fresh_home(storage, env) as dagster:
        request = full_refresh_run(Instance.parse(SERVICE), "bench")
        job = dg.reconstructable(refresh_job)
        totals, outside = [], []
        with dg.DagsterInstance.from_config(str(dagster)) as instance:
            for _ in range(runs + 1):  # the first run warms imports and caches; not counted
                result = dg.execute_job(
                    job, instance, tags=request.tags, asset_selection=[asset_key(Instance.parse(SERVICE))]
                )
                assert result.success, result.run_id
                record = instance.get_run_record_by_id(result.run_id)
                assert record is not None and record.start_time and record.end_time
                stamps = {
                    e.dagster_event_type: e.timestamp
                    for e in instance.all_logs(result.run_id)
                    if e.dagster_event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)
                }
                total = record.end_time - record.start_time
                step = stamps[dg.DagsterEventType.STEP_SUCCESS] - stamps[dg.DagsterEventType.STEP_START]
                totals.append(total)
                outside.append(total - step)
            event = event_write(instance, result.run_id, events)
        files = [p.stat().st_size for p in (dagster / "history" / "runs").glob("*.db") if p.name != "index.db"]
        return {"run": statistics.median(totals[1:]), "outside": statistics.median(outside[1:]),
                "file_kb": statistics.median(files) / 1024, "event": event}  # fmt: skip


def event_write(instance: dg.DagsterInstance, run_id: str, events: int) -> float:
    """Seconds to write one event to a run's file: the median of ``events`` engine events, one at a time."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    times = []
    for n in range(events):
        began = time.perf_counter()
        instance.report_engine_event(f"event {n}", run)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def forked_run(queue: Any) -> None:
    """One full refresh in a process forked from the fork server, as a run's process is; its figures go
    on ``queue``: seconds from the fork to the run's end, the run (start to end), full collections,
    and the memory that is the process's own rather than shared with the fork server."""
    from smartplex_dagster.defs.library import asset_key
    from smartplex_dagster.defs.run_requests import full_refresh_run

    forked = time.time()
    full_collections = gc.get_stats()[2]["collections"]
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(refresh_job), instance, tags=full_refresh_run(Instance.parse(SERVICE), "bench").tags,
            asset_selection=[asset_key(Instance.parse(SERVICE))],
        )  # fmt: skip
        record = instance.get_run_record_by_id(result.run_id)
        assert result.success and record is not None and record.start_time and record.end_time
    rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()
    own_kb = sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean", "Private_Dirty")))
    queue.put({"process": record.end_time - forked, "run": record.end_time - record.start_time,
               "full_collections": gc.get_stats()[2]["collections"] - full_collections, "own_mb": own_kb / 1024})  # fmt: skip


def measure_forked(preload: str, runs: int, env: dict[str, str]) -> dict[str, float]:
    """``runs`` full refreshes, each in a process forked from a new fork server that preloaded ``preload``."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import run_overhead as r; r.forked_child({preload!r}, {runs})"
    with fresh_home("smartplex", env) as dagster:
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(dagster)},
                              capture_output=True, text=True, check=True)  # fmt: skip
    figures = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {key: statistics.median(f[key] for f in figures[1:]) for key in figures[0]}  # the first warms the server


def forked_child(preload: str, runs: int) -> None:
    """In a process of its own, so that its fork server is new: ``runs + 1`` forked runs, one JSON line each."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    for _ in range(runs + 1):
        queue = context.Queue()
        process = context.Process(target=forked_run, args=(queue,))
        process.start()
        print(json.dumps(queue.get(timeout=120)), flush=True)
        process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per storage and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each storage once per round")
    parser.add_argument("--forked-runs", type=int, default=10, help="forked runs per fork server and round")
    parser.add_argument(
        "--events", type=int, default=200, help="events written to one run's file, per storage and round"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    results: dict[str, list[dict[str, float]]] = {"dagster": [], "smartplex": []}
    forked: dict[str, list[dict[str, float]]] = {preload: [] for preload in PRELOADS}
    with run_simulators(size=1000, seed=3, now=None) as sims:
        for _ in range(args.rounds):
            for storage in results:
                results[storage].append(measure(storage, args.runs, args.events, sims.env()))
            for preload in forked if args.forked_runs else ():
                forked[preload].append(measure_forked(preload, args.forked_runs, sims.env()))
    labels = {
        "dagster": "Dagster's storage: sqlite (baseline)",
        "smartplex": "smartplex_dagster.runtime.sqlite_storage",
    }
    print(f"{args.runs} {SERVICE} full refreshes per storage and round, in-process, medians per round")
    for storage, rounds in results.items():
        print(f"  {labels[storage]:38}" + "  |  ".join(
            f"run {r['run'] * 1000:5.1f} ms, outside the step {r['outside'] * 1000:5.1f} ms, run file {r['file_kb']:5.1f} KB, "
            f"an event {r['event'] * 1000:4.2f} ms" for r in rounds))  # fmt: skip
    for key, label in (("run", "run"), ("outside", "outside the step"), ("file_kb", "run file"), ("event", "an event")):
        ratios = [ours[key] / base[key] for ours, base in zip(results["smartplex"], results["dagster"], strict=True)]
        print(f"  {label}: " + ", ".join(f"{r:.2f}x" for r in ratios) + " of the baseline")
    if not args.forked_runs:
        return
    print(f"{args.forked_runs} {SERVICE} full refreshes per fork server and round, each in a process forked from it")
    for preload, rounds in forked.items():
        print(f"  {PRELOADS[preload]:44}" + "  |  ".join(
            f"fork to run end {r['process'] * 1000:5.1f} ms, run {r['run'] * 1000:5.1f} ms, "
            f"own memory {r['own_mb']:4.1f} MB, full collections {r['full_collections']:.0f}" for r in rounds))  # fmt: skip
    ours, base = (forked[p] for p in PRELOADS)
    for key, label in (("process", "fork to run end"), ("run", "run"), ("own_mb", "own memory")):
        ratios = [o[key] / b[key] for o, b in zip(ours, base, strict=True)]
        print(f"  {label}: " + ", ".join(f"{r:.2f}x" for r in ratios) + " of the baseline")


if __name__ == "__main__":
    main()
