"""DAGSTER_HOME for the embedded default: under the data directory, so run history survives restarts.

Its dagster.yaml is the repository's production ``dagster.yaml`` with SQLite files in DAGSTER_HOME
in place of the PostgreSQL storage (Dagster's own layout, through
:class:`smartplex_dagster.runtime.sqlite_storage.SqliteStorage`) and without the Celery run launcher (each
run is then a process of this machine, as the embedded stack and its orphan logic expect): one place
for the run queue, the per-instance concurrency limits, run monitoring and retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRODUCTION_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"


#: No per-step capture of stdout and stderr into files: each run's capture cost about 0.15 s of its
#: 0.25 s outside the sync step, and the files a few more per run on the disk. The steps log through
#: Dagster (the run's events); anything else they print goes to the code server's log. The module is
#: private: registered in ``smartplex_dagster.runtime.dagster_internals.PRIVATE_MODULE_PATHS``, and
#: written out here because the supervisor does not import Dagster.
NO_COMPUTE_LOGS = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}
#: Dagster's SQLite storage (the files of ``storage: sqlite``), lighter per event and per run.
SQLITE_STORAGE = {"module": "smartplex_dagster.runtime.sqlite_storage", "class": "SqliteStorage"}


def embedded_config(home: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["storage"] = {"custom": {**SQLITE_STORAGE, "config": {"base_dir": str(home)}}}
    config.pop("run_launcher", None)
    config["compute_logs"] = NO_COMPUTE_LOGS
    return config


def prepare(data_dir: Path) -> Path:
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "# Written by smartplex from the repository's dagster.yaml: SQLite in place of PostgreSQL, no Celery.\n"
        + yaml.safe_dump(embedded_config(home), sort_keys=False)
    )
    return home
