"""Run-overhead benchmark: Dagster's cost per run on the embedded instance's SQLite storage.

Executes Sonarr full refreshes (the ``full_refresh`` job over one asset, as "Sync now" asks for it)
in this process with ``dagster.execute_job`` against a 1,000-item simulator, each on a fresh
``DAGSTER_HOME``: once with Dagster's own ``storage: sqlite`` (the baseline), once with SmartPlex's
(:mod:`smartplex_dagster.sqlite_storage`), alternating over ``--rounds``. Per storage it prints the
median run (run start to run end, as Dagster records them), the median time outside the sync step,
and the median size of a run's event file; then the ratios. No other process runs: this is the
run's own machinery, without the daemon, the launch or the machine's other work.

Run by hand; it asserts nothing:

    python bench/run_overhead.py [--runs 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from smartplex import migrate  # noqa: E402
from smartplex.cli import dagster_home  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex_simulators import run_simulators  # noqa: E402

SERVICE = "sonarr"


def refresh_job() -> Any:
    from smartplex_dagster.definitions import defs
    from smartplex_dagster.run_requests import REFRESH_JOB

    return defs.resolve_job_def(REFRESH_JOB)


def measure(storage: str, runs: int, env: dict[str, str]) -> dict[str, float]:
    """``runs`` full refreshes on a fresh home with ``storage`` ("dagster" or "smartplex")."""
    from smartplex_dagster.library import asset_key
    from smartplex_dagster.run_requests import full_refresh_run

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
        request = full_refresh_run(SERVICE, "bench")
        job = dg.reconstructable(refresh_job)
        totals, outside = [], []
        with dg.DagsterInstance.from_config(str(dagster)) as instance:
            for _ in range(runs + 1):  # the first run warms imports and caches; not counted
                result = dg.execute_job(job, instance, tags=request.tags, asset_selection=[asset_key(SERVICE)])
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
        files = [p.stat().st_size for p in (dagster / "history" / "runs").glob("*.db") if p.name != "index.db"]
        return {"run": statistics.median(totals[1:]), "outside": statistics.median(outside[1:]),
                "file_kb": statistics.median(files) / 1024}  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per storage and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each storage once per round")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    results: dict[str, list[dict[str, float]]] = {"dagster": [], "smartplex": []}
    with run_simulators(size=1000, seed=3, now=None) as sims:
        for _ in range(args.rounds):
            for storage in results:
                results[storage].append(measure(storage, args.runs, sims.env()))
    labels = {"dagster": "Dagster's storage: sqlite (baseline)", "smartplex": "smartplex_dagster.sqlite_storage"}
    print(f"{args.runs} {SERVICE} full refreshes per storage and round, in-process, medians per round")
    for storage, rounds in results.items():
        print(f"  {labels[storage]:38}" + "  |  ".join(
            f"run {r['run'] * 1000:5.1f} ms, outside the step {r['outside'] * 1000:5.1f} ms, run file {r['file_kb']:5.1f} KB"
            for r in rounds))  # fmt: skip
    for key, label in (("run", "run"), ("outside", "outside the step"), ("file_kb", "run file")):
        ratios = [ours[key] / base[key] for ours, base in zip(results["smartplex"], results["dagster"], strict=True)]
        print(f"  {label}: " + ", ".join(f"{r:.2f}x" for r in ratios) + " of the baseline")


if __name__ == "__main__":
    main()
