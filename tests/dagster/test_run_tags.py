"""Runs made before the kind and instance tags existed: still read, and given the current tags at a start."""

from __future__ import annotations

import tomllib
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.utils import make_new_run_id

from smartplex.dagster_names import (
    CODE_LOCATION,
    DEFINITIONS_MODULE,
    INSTANCE_TAG,
    KIND_TAG,
    LEGACY_SERVICE_TAG,
    instance_tags,
    tagged_instance,
)
from smartplex.instances import Instance
from smartplex_dagster.runtime.orphans import retag_legacy_runs

ROOT = Path(__file__).resolve().parents[2]
SONARR, SONARR_4K = Instance.parse("sonarr"), Instance.parse("sonarr/4k")


def _run(dagster_instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    run = dg.DagsterRun(
        job_name="webhook_sync", run_id=make_new_run_id(), status=dg.DagsterRunStatus.SUCCESS, tags=tags
    )
    dagster_instance.add_run(run)
    return run.run_id


def test_a_run_names_its_instance_by_the_current_tags_or_the_legacy_one() -> None:
    assert tagged_instance(instance_tags(SONARR_4K)) == SONARR_4K
    assert instance_tags(SONARR_4K) == {KIND_TAG: "sonarr", INSTANCE_TAG: "sonarr_4k"}
    assert tagged_instance({LEGACY_SERVICE_TAG: "sonarr/4k"}) == SONARR_4K
    assert tagged_instance({LEGACY_SERVICE_TAG: "sonarr"}) == SONARR
    assert tagged_instance({LEGACY_SERVICE_TAG: "jellyfin"}) is None  # a kind this version does not know
    assert tagged_instance({}) is None


def test_a_start_gives_legacy_runs_the_current_tags_once() -> None:
    with dg.instance_for_test() as dagster_instance:
        legacy_4k = _run(dagster_instance, {LEGACY_SERVICE_TAG: "sonarr/4k"})
        legacy = _run(dagster_instance, {LEGACY_SERVICE_TAG: "sonarr"})
        undeclared = _run(dagster_instance, {LEGACY_SERVICE_TAG: "radarr/4k"})  # no longer configured
        current = _run(dagster_instance, instance_tags(SONARR))

        assert retag_legacy_runs(dagster_instance, [SONARR, SONARR_4K]) == 2
        tags = {run_id: dagster_instance.get_run_by_id(run_id).tags for run_id in (legacy_4k, legacy, undeclared)}
        assert tags[legacy_4k][INSTANCE_TAG] == "sonarr_4k" and tags[legacy_4k][KIND_TAG] == "sonarr"
        assert tags[legacy][INSTANCE_TAG] == "sonarr" and tags[legacy][LEGACY_SERVICE_TAG] == "sonarr"
        assert INSTANCE_TAG not in tags[undeclared]
        # The UI's filter by the current tag now finds the old runs with the new.
        found = dagster_instance.get_runs(filters=dg.RunsFilter(tags={INSTANCE_TAG: "sonarr"}))
        assert {r.run_id for r in found} == {legacy, current}
        assert retag_legacy_runs(dagster_instance, [SONARR, SONARR_4K]) == 0  # a second start finds none


def test_the_workspace_and_the_project_name_the_code_location_as_dagster_names_does() -> None:
    (entry,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"] == {"module_name": DEFINITIONS_MODULE, "location_name": CODE_LOCATION}
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert (tool["module_name"], tool["code_location_name"]) == (DEFINITIONS_MODULE, CODE_LOCATION)
