"""Demo storage benchmark: what an hour of ``smartplex demo`` costs in disk, and that retention bounds it.

Starts ``smartplex demo`` (the embedded default: SQLite product database and Dagster storage, simulated
services, a simulated event every ``--event-interval`` seconds) in a data directory of its own, and once
a minute records the size of Dagster's storage (``<data>/dagster``), of the product database and of the
logs (``<data>/logs``), and how many Dagster runs there are. After ``--minutes`` it prints:

- Dagster storage growth in the second half of that time (target: <= 20 MB in the second half hour),
  a run's share of it, and the storage by part (run event files, events index, runs, ticks);
- the baseline, measured first in the same run: the least Dagster stores for a run on the embedded
  storage (an asset that does nothing, one step, in-process, no metadata), and what the second
  half's runs would have stored had each been one of those;
- the daemon log's growth per hour (target: <= 2 MB an hour);
- how many log lines say a code server lost its parent's heartbeat, warn, or report a per-partition
  materialization (a quiet demo has none);
- how many code server processes were seen (a stack that keeps one has one) and the memory of the
  whole stack (every process on its Dagster instance, run workers included, summed RSS);

then, for ``--retention-minutes`` more, runs the retention job's purge of Dagster runs every
``--purge-every`` minutes with a cutoff of ``--keep-minutes`` minutes instead of its days (the purge
the daily job runs, on a shorter clock), and prints the storage each minute: once the purge keeps up,
the storage stops growing (SQLite reuses the freed pages; the file never shrinks without VACUUM).

Run by hand (about ``--minutes`` + ``--retention-minutes`` minutes); it prints figures and asserts
nothing:

    python bench/demo_storage.py [--minutes 60] [--retention-minutes 15] [--keep-minutes 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smartplex.column_types import utcnow  # noqa: E402
from smartplex_cli.supervisor import free_port  # noqa: E402

MB = 1024 * 1024


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def daemon_log(data: Path) -> Path:
    logs = sorted((data / "logs").glob("*daemon*")) if (data / "logs").exists() else []
    return logs[0] if logs else data / "logs" / "dagster-daemon.log"


#: Log lines a quiet demo should not repeat: a code server losing its parent, Dagster's warnings, and
#: per-partition chatter.
NOISE = ("No heartbeat received", "Warning", "Materialized value")


def noise(data: Path) -> dict[str, int]:
    counts = dict.fromkeys(NOISE, 0)
    for log in (data / "logs").glob("*.log"):
        for text in log.read_text(errors="replace").splitlines():
            for needle in NOISE:
                counts[needle] += needle in text
    return counts


def run_count(home: Path) -> int:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_run_records())


def checkpointed_size(home: Path) -> int:
    """The size of ``home`` with every WAL written into its database (each WAL holds up to a MB)."""
    import sqlite3

    for wal in home.rglob("*.db-wal"):
        with contextlib.closing(sqlite3.connect(wal.with_name(wal.name.removesuffix("-wal")))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return size_of(home)


def least_run_kb(runs: int = 100) -> float:
    """KB of Dagster storage a run adds when it materializes an asset that does nothing (one step, in
    process, no metadata, no partitions) on the embedded instance's storage: Dagster's own record of
    a run, the least any sync run can cost."""
    import dagster as dg

    from smartplex_cli import dagster_home

    @dg.asset
    def nothing() -> None:
        return None

    job = dg.Definitions(
        assets=[nothing], jobs=[dg.define_asset_job("nothing", executor_def=dg.in_process_executor)]
    ).resolve_job_def("nothing")
    data = Path(tempfile.mkdtemp(prefix="least-run-"))
    try:
        home = dagster_home.prepare(data)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for _ in range(10):  # the shared files' first pages and the job's snapshots
                job.execute_in_process(instance=instance)
            before = checkpointed_size(home)
            for _ in range(runs):
                job.execute_in_process(instance=instance)
            return (checkpointed_size(home) - before) / runs / 1024
    finally:
        shutil.rmtree(data, ignore_errors=True)


def purge(home: Path, keep: timedelta) -> dict[str, int]:
    """The retention job's purge of finished runs (and their event logs), with every cutoff ``keep``
    ago: its ``RunRetention`` is in whole days, so the clock it is given is moved on instead."""
    import dagster as dg

    from smartplex_dagster.defs.retention import RunRetention, purge_runs

    days = 1
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return purge_runs(instance, utcnow() + timedelta(days=days) - keep, RunRetention(days, days, days))


#: What a code server's command line says: ``smartplex-dagster-code-server`` (the stack's own), or
#: ``dagster api grpc`` (one a daemon or webserver starts for itself).
CODE_SERVER = ("smartplex-dagster-code-server", "api grpc")


def stack_processes(home: Path, code_servers: set[int]) -> float:
    """The summed RSS (MB) of every process on the instance in ``home``; adds the code servers' pids
    to ``code_servers``."""
    import psutil

    wanted, rss = home.resolve(), 0
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            value = process.environ().get("DAGSTER_HOME")
            if process.pid == os.getpid() or not value or Path(value).resolve() != wanted:
                continue
            rss += process.memory_info().rss
            if any(mark in " ".join(process.info["cmdline"] or ()) for mark in CODE_SERVER):
                code_servers.add(process.pid)
        except psutil.Error:
            continue
    return rss / MB


def sample(data: Path, began: float, code_servers: set[int]) -> dict[str, float]:
    return {
        "minute": (time.monotonic() - began) / 60,
        "dagster": size_of(data / "dagster") / MB,
        "product": sum(size_of(p) for p in data.glob("smartplex.db*")) / MB,  # with its WAL
        "logs": size_of(data / "logs") / MB,
        "daemon_log": size_of(daemon_log(data)) / MB,
        "runs": run_count(data / "dagster"),
        "rss": stack_processes(data / "dagster", code_servers),
        "code_servers": len(code_servers),
    }


def parts(home: Path) -> dict[str, float]:
    """Dagster's storage by part (MB): the runs' own event files, the events index (runs' asset and
    status events, check records), the runs database, and the ticks and automation evaluations."""
    history = home / "history"
    run_files = [p for p in (history / "runs").glob("*.db") if p.name != "index.db"]
    return {
        "run event files": sum(p.stat().st_size for p in run_files) / MB,
        "events index": sum(size_of(p) for p in (history / "runs").glob("index.db*")) / MB,
        "runs database": sum(size_of(p) for p in history.glob("runs.db*")) / MB,
        "ticks and evaluations": size_of(home / "schedules") / MB,
    }


def line(s: dict[str, float], note: str = "") -> str:
    return (
        f"| {s['minute']:5.1f} | {s['dagster']:8.1f} | {s['product']:7.1f} | {s['logs']:6.2f} "
        f"| {s['daemon_log']:6.2f} | {int(s['runs']):5d} | {s['rss']:6.0f} | {int(s['code_servers']):3d} | {note} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--retention-minutes", type=float, default=15)
    parser.add_argument("--keep-minutes", type=float, default=10)
    parser.add_argument("--purge-every", type=float, default=2)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--event-interval", type=float, default=4.0)
    parser.add_argument("--keep", action="store_true", help="leave the data directory behind")
    args = parser.parse_args()

    least = least_run_kb()
    print(f"the least Dagster stores for a run on this storage (an asset that does nothing): {least:.1f} KB")
    data = Path(tempfile.mkdtemp(prefix="demo-storage-"))
    env = {**os.environ, "SMARTPLEX_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "smartplex_cli", "demo", "--size", str(args.size),
               "--event-interval", str(args.event_interval),
               "--api-port", str(free_port()), "--dagster-port", str(free_port())]  # fmt: skip
    demo = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(
        f"demo in {data}, sampling every minute for {args.minutes:g} + {args.retention_minutes:g} minutes", flush=True
    )
    print(
        "| minute | Dagster MB | product MB | logs MB | daemon log MB | runs | stack RSS MB | code servers seen | |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    samples: list[dict[str, float]] = []
    code_servers: set[int] = set()
    began = time.monotonic()
    try:
        while time.monotonic() - began < args.minutes * 60:
            time.sleep(60)
            samples.append(sample(data, began, code_servers))
            print(line(samples[-1]), flush=True)
        half = next(s for s in samples if s["minute"] >= args.minutes / 2)
        end = samples[-1]
        hours = (end["minute"] - samples[0]["minute"]) / 60 or 1
        summary = [
            f"Dagster storage: {end['dagster']:.1f} MB after {end['minute']:.0f} min; "
            f"{end['dagster'] - half['dagster']:.1f} MB in the second half ({half['minute']:.0f}–{end['minute']:.0f} min)",
            f"daemon log: {end['daemon_log']:.2f} MB ({(end['daemon_log'] - samples[0]['daemon_log']) / hours:.2f} MB an hour); "
            f"all logs {end['logs']:.2f} MB; product database {end['product']:.1f} MB; {int(end['runs'])} runs",
            f"stack memory: {sum(s['rss'] for s in samples) / len(samples):.0f} MB on average (RSS summed over its "
            f"processes, runs included); code server processes seen: {len(code_servers)}",
        ]
        added = end["runs"] - half["runs"]
        if added > 0:
            summary.append(
                f"a run's share of the second half's growth: {(end['dagster'] - half['dagster']) * 1024 / added:.0f} KB "
                f"({int(added)} runs); by part, per run over the whole time: "
                + ", ".join(f"{name} {mb * 1024 / end['runs']:.1f} KB" for name, mb in parts(data / "dagster").items())
            )
            summary.append(
                f"the same runs as runs of an asset that does nothing ({least:.1f} KB each): "
                f"{added * least / 1024:.1f} MB; ours {(end['dagster'] - half['dagster']) * 1024 / added / least:.2f}x that"
            )
        last_purge = 0.0
        while time.monotonic() - began < (args.minutes + args.retention_minutes) * 60:
            note = ""
            if time.monotonic() - last_purge >= args.purge_every * 60:
                purged = purge(data / "dagster", timedelta(minutes=args.keep_minutes))
                last_purge = time.monotonic()
                note = "purged " + ", ".join(f"{n} {kind}" for kind, n in purged.items())
            time.sleep(60)
            samples.append(sample(data, began, code_servers))
            print(line(samples[-1], note), flush=True)
        if args.retention_minutes:
            tail = [s for s in samples if s["minute"] > args.minutes]
            summary.append(
                f"with retention (runs kept {args.keep_minutes:g} min, purged every {args.purge_every:g} min): "
                f"Dagster storage {tail[0]['dagster']:.1f} → {tail[-1]['dagster']:.1f} MB over "
                f"{tail[-1]['minute'] - tail[0]['minute']:.0f} min; runs {int(tail[0]['runs'])} → {int(tail[-1]['runs'])}"
            )
        summary.append("log lines: " + ", ".join(f'"{needle}" {n}' for needle, n in noise(data).items()))
        print("\n" + "\n".join(summary))
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
        if args.keep:
            print(f"left {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
