"""The rule for a missing dependency (tests/requirements.py): skipped on a developer's machine, failed
in a strict run, and the flag read one way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requirements import flag, require_or_skip, strict

ROOT = Path(__file__).parent.parent
#: Named here, not taken from the module, so dropping one there fails a test.
FLAGS = ("CI", "SMARTPLEX_REQUIRE_POSTGRES")


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Neither flag set, whatever the run around this test has."""
    for name in FLAGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("True", True), ("yes", True), (" yes ", True), ("on", True),
    ("", False), ("0", False), ("false", False), ("FALSE", False), ("no", False), ("off", False),
])  # fmt: skip
def test_a_flag_is_set_by_a_true_value_only(unset: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    unset.setenv("CI", value)
    assert flag("CI") is expected
    assert strict() is expected


def test_an_unset_flag_is_not_set(unset: pytest.MonkeyPatch) -> None:
    assert not flag("CI")
    assert not strict()


@pytest.mark.parametrize("name", FLAGS)
def test_either_name_makes_the_run_strict(unset: pytest.MonkeyPatch, name: str) -> None:
    unset.setenv(name, "1")
    assert strict()


#: Both outcomes caught, so a skip where a failure is expected fails this test instead of skipping it.
OUTCOMES = (pytest.skip.Exception, pytest.fail.Exception)


def test_a_missing_dependency_skips_outside_a_strict_run(unset: pytest.MonkeyPatch) -> None:
    unset.setenv("CI", "0")
    with pytest.raises(OUTCOMES, match="no widget here") as outcome:
        require_or_skip("no widget here")
    assert outcome.type is pytest.skip.Exception


def test_a_missing_dependency_fails_a_strict_run(unset: pytest.MonkeyPatch) -> None:
    unset.setenv("CI", "true")
    with pytest.raises(OUTCOMES, match=r"no widget here \(CI is set") as outcome:
        require_or_skip("no widget here")
    assert outcome.type is pytest.fail.Exception


def _run_without_chromium(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One browser test in a pytest of its own, on a PATH with no Chromium on it."""
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not any(Path(entry, name).exists() for name in ("chromium", "chromium-browser"))
    ]
    base = {name: value for name, value in os.environ.items() if name not in FLAGS}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", "--basetemp", str(tmp_path),
         "tests/api/test_docs_offline.py", "-k", "without_internet and redoc"],
        cwd=ROOT, env={**base, "PATH": os.pathsep.join(path), **env}, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_chromium_missing_skips_the_browser_test_or_fails_a_strict_run(tmp_path: Path) -> None:
    skipped = _run_without_chromium(tmp_path / "plain")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout and "Chromium is not installed" in skipped.stdout, skipped.stdout
    # The summary names the test's own line, not the helper's.
    assert "SKIPPED [1] tests/api/test_docs_offline.py:" in skipped.stdout, skipped.stdout

    failed = _run_without_chromium(tmp_path / "strict", CI="true")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "1 failed" in failed.stdout and "Chromium is not installed" in failed.stdout, failed.stdout
