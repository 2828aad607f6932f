"""Home-server benchmark: "Sync now" for all five services on a fresh stack with the default history
start, and what it costs Dagster.

Starts the webhook API and ``dagster-daemon`` (the embedded default: SQLite product database and
Dagster storage, Dagster's default run launcher) against simulators of ``--size`` items, with
``SMARTPLEX_HISTORY_START`` left at its default (2008), asks for a full refresh of every service
through the admin API, and waits until every schedule records a success. It prints:

- the time from the five "Sync now" requests to the last success (target: <= 3 minutes);
- per full refresh, the run's time outside its sync step, as a share of the run (target: <= 25%);
- how much Dagster's storage grew (target: <= 20 MB for the five refreshes);
- the baseline, measured in the same run: the five syncs alone, in-process, into another database,
  and the ratio of the whole to it.

Run by hand; it asserts nothing:

    python bench/home_server.py [--size 1000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smartplex import migrate  # noqa: E402
from smartplex.dagster_names import FULL_REFRESH_TAG, INSTANCE_TAG  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.kinds import KIND_NAMES  # noqa: E402
from smartplex.schema import sync_schedule  # noqa: E402
from smartplex.sync import SPECS, run_sync  # noqa: E402
from smartplex_cli import dagster_home  # noqa: E402
from smartplex_cli.stack import start_stack  # noqa: E402
from smartplex_cli.supervisor import Supervisor, free_port  # noqa: E402
from smartplex_simulators import run_simulators  # noqa: E402

ADMIN = "bench-admin-secret"


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def baseline(sims: object, home: Path) -> float:
    """The five full refreshes alone, in this process, into a database of their own."""
    engine = make_engine(f"sqlite:///{home / 'baseline.db'}")
    migrate.upgrade(engine)
    began = time.perf_counter()
    for service, spec in SPECS.items():
        with sims.client(service) as client:  # type: ignore[attr-defined]
            run_sync(engine, client, spec, None)
    engine.dispose()
    return time.perf_counter() - began


def run_shares(dagster: Path) -> list[tuple[str, float, float]]:
    """(service, run seconds, seconds outside the sync step) for each full refresh."""
    import dagster as dg

    out = []
    with dg.DagsterInstance.from_config(str(dagster)) as instance:
        for record in instance.get_run_records(dg.RunsFilter(tags={FULL_REFRESH_TAG: "true"})):
            run = record.dagster_run
            events = instance.get_records_for_run(
                run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
            ).records
            stamps = {e.event_log_entry.dagster_event_type: e.event_log_entry.timestamp for e in events}
            step = stamps.get(dg.DagsterEventType.STEP_SUCCESS, 0) - stamps.get(dg.DagsterEventType.STEP_START, 0)
            total = (record.end_time or 0) - (record.start_time or 0)
            out.append((run.tags.get(INSTANCE_TAG, "?"), total, total - step))
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="Plex items in the simulated library")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="smartplex-home-"))
    database_url = f"sqlite:///{home / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    supervisor = Supervisor()
    env = {key: value for key, value in os.environ.items() if key != "SMARTPLEX_HISTORY_START"}
    try:
        with run_simulators(size=args.size, seed=3, now=None) as sims:
            alone = baseline(sims, home)
            dagster = dagster_home.prepare(home)
            env.update(sims.env())
            env.update({"SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(home),
                        "SMARTPLEX_WEBHOOK_SECRET": "bench-hook", "SMARTPLEX_ADMIN_SECRET": ADMIN,
                        "DAGSTER_HOME": str(dagster)})  # fmt: skip
            api_port = free_port()
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=home / "logs")
            before = size_of(dagster)
            asked = time.monotonic()
            headers = {"Authorization": f"Bearer {ADMIN}"}
            for service in KIND_NAMES:
                httpx.post(f"http://127.0.0.1:{api_port}/api/admin/schedules/{service}/sync", headers=headers)
            while True:
                with engine.connect() as connection:
                    rows = connection.execute(select(sync_schedule.c.service, sync_schedule.c.last_status)).all()
                if all(status == "success" for _, status in rows):
                    break
                if time.monotonic() - asked > 900:
                    raise SystemExit(f"not done after 15 minutes: {rows}")
                time.sleep(1)
            elapsed = time.monotonic() - asked
            supervisor.stop()
            grown = size_of(dagster) - before
            shares = run_shares(dagster)
    finally:
        supervisor.stop()
        engine.dispose()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(f"simulated library: {args.size} Plex items; history start: the default (2008)")
    print(f"'Sync now' for five services until every schedule recorded a success: {elapsed:.1f} s (target <= 180 s)")
    print(f"baseline, the five syncs alone in-process: {alone:.2f} s; ratio {elapsed / alone:.1f}x")
    for service, total, outside in shares:
        share = outside / total if total else 0.0
        print(
            f"  {service:<10} full refresh run {total:5.2f} s, outside its sync step {outside:5.2f} s ({share:.0%}; target <= 25%)"
        )
    print(f"Dagster storage grew {grown / 1e6:.2f} MB for the five refreshes (target <= 20 MB)")
    if args.keep:
        print(f"kept {home}")


if __name__ == "__main__":
    main()
