"""Every kind is whole: its entry in ``smartplex/kinds.py`` and each piece of code and data a kind needs.

A kind added to ``KINDS`` without one of them fails here, naming the kind and what it lacks, rather
than with a ``KeyError`` on the first webhook, run or page that reaches for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from sqlalchemy import Engine, select

from smartplex.clients import CLIENTS
from smartplex.instances import Instance, instance_variables
from smartplex.kinds import KIND_NAMES, KINDS, Kind, KindName
from smartplex.routing import IGNORED_EVENTS, STALE_LIBRARIES
from smartplex.schema import metadata, sync_schedule
from smartplex.sync import SPECS
from smartplex_cli.simulate import DEFAULT_PORTS
from smartplex_simulators.serve import APP_FACTORIES
from webhook_api.events import event_type
from webhook_api.examples import example_body

ROOT = Path(__file__).resolve().parent.parent
BY_KIND = pytest.mark.parametrize("kind", KINDS, ids=KIND_NAMES)


@BY_KIND
def test_it_has_a_client_that_speaks_for_it(kind: Kind) -> None:
    assert kind.name in CLIENTS, f"{kind.name}: no client in smartplex.clients.CLIENTS"
    assert CLIENTS[kind.name].kind == kind.name


@BY_KIND
def test_it_has_a_table_and_a_sync_spec(kind: Kind) -> None:
    assert kind.name in SPECS, f"{kind.name}: no sync spec in smartplex/sync/specs.py"
    spec = SPECS[kind.name]
    assert spec.kind == kind.name
    assert spec.table is metadata.tables.get(spec.table.name), f"{kind.name}: its table is not in smartplex/schema.py"
    assert "instance" in spec.table.c and "deleted_at" in spec.table.c, (
        f"{kind.name}: its table lacks instance/deleted_at"
    )
    missing = [c for c in kind.natural_ids if c not in spec.table.c]
    assert not missing, f"{kind.name}: natural ids {missing} are not columns of {spec.table.name}"
    assert kind.library_asset.split("/")[0] == kind.name, f"{kind.name}: its library asset is not under its name"


@BY_KIND
def test_its_events_are_in_the_routing_table(kind: Kind) -> None:
    assert STALE_LIBRARIES.get(kind.name), f"{kind.name}: no event in STALE_LIBRARIES starts a sync"
    assert kind.name in IGNORED_EVENTS, f"{kind.name}: IGNORED_EVENTS does not say which of its events start nothing"
    unknown = {k for targets in STALE_LIBRARIES[kind.name].values() for k in targets} - set(KIND_NAMES)
    assert not unknown, f"{kind.name}: its events make unknown kinds stale: {unknown}"
    undeclared = set(kind.deletion_events) - set(STALE_LIBRARIES[kind.name])
    assert not undeclared, f"{kind.name}: deletion events {undeclared} are not routed"


@BY_KIND
def test_it_has_an_example_webhook_whose_event_is_known(kind: Kind) -> None:
    path = ROOT / "webhook_api" / "examples" / f"{kind.name}.json"
    assert path.is_file(), f"{kind.name}: no example body at {path.relative_to(ROOT)}"
    event = event_type(kind.name, example_body(kind.name), tautulli_keys=("action",))
    known = set(STALE_LIBRARIES[kind.name]) | set(IGNORED_EVENTS[kind.name])
    assert event in known, f"{kind.name}: its example's event {event!r} is not in the routing table"


@BY_KIND
def test_it_has_a_simulator(kind: Kind) -> None:
    assert kind.name in APP_FACTORIES, f"{kind.name}: no simulator in smartplex_simulators.serve.APP_FACTORIES"
    assert kind.name in DEFAULT_PORTS, f"{kind.name}: no usual port in smartplex_cli.simulate.DEFAULT_PORTS"


def test_the_kind_names_type_lists_every_kind_in_order() -> None:
    """``KindName`` types the API's path parameters; ``KINDS`` is the list it must follow."""
    assert get_args(KindName) == KIND_NAMES


@BY_KIND
def test_its_variables_are_documented(kind: Kind) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for variable in instance_variables(Instance(kind)):
        assert re.search(rf"`{variable}`", text), f"{kind.name}: {variable} is not in docs/configuration.md"


@BY_KIND
def test_its_webhooks_are_documented(kind: Kind) -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "webhooks.md").read_text(), re.M)
    assert kind.name in {h.lower() for h in headings}, f"{kind.name}: docs/webhooks.md has no section for it"


def test_every_kind_has_its_schedule_row_from_the_migrations(engine: Engine) -> None:
    """A kind's default instance gets its ``sync_schedule`` row from a migration, seeded from its kind."""
    with engine.connect() as connection:
        rows = {
            r.service: r for r in connection.execute(select(sync_schedule).where(sync_schedule.c.instance == "default"))
        }
    for kind in KINDS:
        assert kind.name in rows, f"{kind.name}: no sync_schedule row after the migrations"
        assert (rows[kind.name].enabled, rows[kind.name].interval_hours) == kind.schedule_seed, kind.name
