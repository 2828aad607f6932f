"""Docs that cannot drift: the tables in docs/ against the code they describe."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from smartplex.instances import Instance
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
    return [r for r in rows if r[0] not in ("variable", "source")]


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


def test_every_setting_is_documented_with_its_default_and_nothing_else_is() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented: dict[str, list[str]] = {}
    for row in _table_rows(text.replace(_section(text, "Tests"), "")):
        for name in re.findall(r"`(SMARTPLEX_[A-Z0-9_]+)`", row[0]):
            documented[name] = row
    per_source_secrets = {f"webhook_secret_{s.name}" for s in KINDS}
    per_service = {name.lower().removeprefix("smartplex_") for s in KINDS for name in Instance(s).env_names}
    for field_name, field in Settings.model_fields.items():
        variable = f"SMARTPLEX_{field_name.upper()}"
        if field_name in per_source_secrets:  # one row lists them as `…_PLEX`, `…_TAUTULLI`, ...
            assert variable in text or f"…_{field_name.removeprefix('webhook_secret_').upper()}" in text, variable
            continue
        assert variable in documented, f"{variable} is not in docs/configuration.md"
        if field_name in per_service:
            continue  # a two-column table: every one of them defaults to unset
        expected = _rendered(field.default) if not isinstance(field.default, SecretStr) else None
        cell = documented[variable][1]
        if expected is not None:
            assert f"`{expected}`" in cell, f"{variable}: the docs say {cell!r}, the code {expected!r}"
        elif field.default is None:
            assert "unset" in cell, f"{variable}: the docs say {cell!r}, the code has no default"
    known = {f"SMARTPLEX_{name.upper()}" for name in Settings.model_fields}
    assert set(documented) <= known, f"documented but not settings: {sorted(set(documented) - known)}"


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
