"""One direction of imports: smartplex_cli -> (webhook_api, smartplex_dagster, smartplex_simulators) -> smartplex.

The API must start fast and stay small (it never imports Dagster); the core (settings, kinds and
instances, routing, schema, the webhook queue, clients, the sync engine) is what every side builds
on and imports none of them. The command line (``smartplex_cli``) starts every part, so it alone
may name them all, and nothing imports it.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {  # package (or subpackage) -> top-level packages its modules must not import
    "smartplex": {"dagster", "webhook_api", "smartplex_dagster", "smartplex_simulators", "smartplex_cli", "fastapi"},
    "webhook_api": {"dagster", "smartplex_dagster", "smartplex_simulators", "smartplex_cli"},
    "smartplex_dagster": {"webhook_api", "smartplex_simulators", "smartplex_cli"},
    "smartplex_simulators": {"dagster", "smartplex_dagster", "webhook_api", "smartplex_cli"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_against_the_direction(package: str) -> None:
    offenders = {}
    for path in (ROOT / package).rglob("*.py"):
        wrong = _imports(path) & FORBIDDEN[package]
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}


def test_the_api_loads_without_dagster() -> None:
    code = "import sys, webhook_api.app, webhook_api.serve; print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'smartplex_dagster')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert loaded.strip() == "[]"


def test_dagster_runtime_never_imports_the_definitions() -> None:
    """``smartplex_dagster/runtime`` is how Dagster runs here, whatever is defined; only the runs' preload
    imports the definitions, which is its purpose."""
    runtime = ROOT / "smartplex_dagster" / "runtime"
    offenders = {
        path.name: sorted(names)
        for path in runtime.rglob("*.py")
        if path.name != "run_preload.py"
        and (
            names := {
                n
                for n in _module_imports(path)
                if n.startswith(("smartplex_dagster.defs", "smartplex_dagster.definitions"))
            }
        )
    }
    assert offenders == {}


def _module_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names
