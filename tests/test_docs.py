"""Docs that cannot drift: the tables in docs/ against the code they describe."""

from __future__ import annotations

import contextlib
import io
import re
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from smartplex.instances import Instance, instance_variables
from smartplex.kinds import KINDS
from smartplex.routing import IGNORED_EVENTS, STALE_LIBRARIES, stale_assets
from smartplex.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row (header and rule rows excluded)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]*", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [r for r in rows if r[0] not in ("variable", "source", "service")]


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _rendered(default: object) -> str | None:
    """How a scalar default is written in the docs' default column."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, int | float | str):
        return str(default)
    if isinstance(default, date):
        return default.isoformat()
    return None


def _variables(cell: str) -> list[str]:
    return re.findall(r"`(SMARTPLEX_[A-Z0-9_]+)`", cell)


def test_every_setting_is_documented_with_its_default_and_nothing_else_is() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented: dict[str, list[str]] = {}
    for row in _table_rows(text.replace(_section(text, "Tests"), "")):
        for name in _variables(row[0]):
            documented[name] = row
    for field_name, field in Settings.model_fields.items():
        variable = f"SMARTPLEX_{field_name.upper()}"
        assert variable in documented, f"{variable} is not in docs/configuration.md"
        expected = _rendered(field.default) if not isinstance(field.default, SecretStr) else None
        cell = documented[variable][1]
        if expected is not None:
            assert f"`{expected}`" in cell, f"{variable}: the docs say {cell!r}, the code {expected!r}"
        elif field.default is None:
            assert "unset" in cell, f"{variable}: the docs say {cell!r}, the code has no default"
    known = {f"SMARTPLEX_{name.upper()}" for name in Settings.model_fields}
    assert set(documented) <= known, f"documented but not settings: {sorted(set(documented) - known)}"


def test_each_services_variables_are_documented_as_the_settings_name_them() -> None:
    services, several = _section((DOCS / "configuration.md").read_text(), "Services").split("\n### ", 1)
    rows = {row[0]: row[1:] for row in _table_rows(services)}
    assert set(rows) == {kind.title for kind in KINDS}, "one row per kind in docs/configuration.md's Services"
    for kind in KINDS:
        expected = [[variable] for variable in instance_variables(Instance(kind))]  # URL, credential, secret
        assert [_variables(cell) for cell in rows[kind.title]] == expected, kind.title
    # An extra instance's, by their pattern: SMARTPLEX_<SERVICE>_<NAME>_URL is SMARTPLEX_SONARR_4K_URL.
    patterns = [
        name for row in _table_rows(several) for name in re.findall(r"`(SMARTPLEX_<SERVICE>_<NAME>_\w+)`", row[0])
    ]
    example = [pattern.replace("<SERVICE>_<NAME>", "SONARR_4K") for pattern in patterns]
    assert example == list(instance_variables(Instance.parse("sonarr/4k")))


def test_the_command_that_prints_every_setting_prints_every_documented_one() -> None:
    text = (DOCS / "configuration.md").read_text()
    command = re.search(r'```bash\n\.venv/bin/python -c "(.*?)"\n```', text, re.DOTALL)
    assert command, "the command printing every setting is in docs/configuration.md"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(command[1], {})
    documented = {
        name for row in _table_rows(text.replace(_section(text, "Tests"), "")) for name in _variables(" ".join(row))
    }
    documented -= set(instance_variables(Instance.parse("sonarr/4k")))  # examples of an extra instance's
    assert documented <= set(re.findall(r"SMARTPLEX_[A-Z0-9_]+", printed.getvalue()))


def test_the_routing_table_in_the_docs_is_the_one_in_the_code() -> None:
    section = _section((DOCS / "webhooks.md").read_text(), "Which events start a sync")
    routed: dict[tuple[str, str], tuple[str, ...]] = {}
    logged: dict[str, set[str]] = {}
    for source, events, target in _table_rows(section):
        names = re.findall(r"`([^`]+)`", events)
        if source == "any":
            continue
        if target.startswith("nothing"):
            logged.setdefault(source, set()).update(names)
        else:
            assets = tuple(re.findall(r"`([a-z_]+/[a-z_]+)`", target))
            routed.update({(source, name): assets for name in names})
    assert routed == {
        (s, e): stale_assets(Instance.parse(s), e) for s, events in STALE_LIBRARIES.items() for e in events
    }
    assert logged == {s: set(events) for s, events in IGNORED_EVENTS.items()}
