"""The fence around Dagster's private API: every private thing the project uses is named, with its
reason, in :mod:`smartplex_dagster.runtime.dagster_internals` (its imports and its register), and the
installed Dagster still has each entry of the register.

:func:`scan` reads each module's syntax tree (importing only the Dagster names it imports, to resolve
them) and reports by file, line and name:

- an import of a private Dagster module or name (``dagster._…``, ``from dagster import _x``, and the
  same of the ``dagster_*`` packages) outside ``dagster_internals.py``;
- outside ``dagster_internals.py``, a string holding a private Dagster module path (``"dagster._core…"``)
  that is not an entry of ``PRIVATE_MODULE_PATHS``; docstrings aside;
- an assignment (``=``, augmented, annotated, ``del``, ``setattr``, ``delattr``) to an attribute of a
  Dagster module or class (a name the module imports from Dagster, a Dagster class it imports from
  ``dagster_internals``, or an attribute of either) anywhere but in ``dagster_internals.py``, and there
  unless it is in ``MONKEYPATCHES``;
- in a class deriving from a Dagster class (its bases resolved through those imports, or through the
  module's own classes deriving from one), a method named ``_x`` (one underscore) that is not in
  ``PRIVATE_METHODS`` for one of its Dagster bases;
- ``obj._x`` where ``_x`` is a private attribute Dagster defines on the object's class (see below) or a
  private name of a Dagster module, unless the register has it for that class or module
  (``PRIVATE_ATTRIBUTES``, or ``PRIVATE_METHODS`` for a method that an override calls).

It also fails when an entry of the register is no longer used, and when the installed Dagster no longer
has one (the module path imports, the class has the method or attribute, the module path names a class).

A Dagster class's private attributes (:func:`dagster_private_names`) are the ``_x`` in the ``__dict__``
of it and of its Dagster bases, with those their source assigns to ``self._x`` (the attributes an
instance gets in its constructor), less what Python makes for any named tuple, enum, ABC or protocol.
Which class an object is cannot be read from the source, so: on ``self``, ``cls`` or ``super()`` in a
class deriving from Dagster classes, the attributes of those classes count; on ``self`` in another
class, none (the object is ours); on any other object, the attributes of the Dagster classes the
module names, unless one of its own classes defines the name too. A private attribute reached through
an object whose class the module never names escapes: Dagster's private API is used in few modules,
and each names the classes it works on.
"""

import ast
import enum
import functools
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from abc import ABC
from collections import namedtuple
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Protocol

import dagster as dg
import pytest

from smartplex_cli import dagster_home
from smartplex_dagster.runtime import dagster_internals
from smartplex_dagster.runtime.dagster_internals import (
    MONKEYPATCHES,
    PRIVATE_ATTRIBUTES,
    PRIVATE_METHODS,
    PRIVATE_MODULE_PATHS,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("smartplex", "smartplex_cli", "smartplex_dagster", "webhook_api", "smartplex_simulators")
INTERNALS = Path(dagster_internals.__file__).resolve()
#: What ``obj._x`` may name: a registered attribute, or a registered method (which the override calls).
USABLE = {**PRIVATE_ATTRIBUTES, **PRIVATE_METHODS}
#: The module paths a string may hold: "module" (with the class beside it, as Dagster's config has
#: them) or "module.Class".
WRITABLE = {
    written: path for path in PRIVATE_MODULE_PATHS for written in (path.partition(":")[0], path.replace(":", "."))
}


class _Enum(enum.Enum):
    A = 1


class _ABC(ABC):  # noqa: B024 - only its attributes are read
    pass


class _Protocol(Protocol):
    pass


#: Private names Python itself gives a named tuple, an enum, an ABC or a protocol: not Dagster's.
PYTHON_MADE = frozenset(
    name for made in (namedtuple("T", "f"), _Enum, _ABC, _Protocol) for klass in made.__mro__ for name in vars(klass)
)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dagster_module(name: str) -> bool:
    top = name.split(".")[0]
    return top == "dagster" or top.startswith("dagster_")


def _private_module(name: str) -> bool:
    return _dagster_module(name) and any(part.startswith("_") for part in name.split(".")[1:])


def _is_dagster(found: object) -> bool:
    if isinstance(found, ModuleType):
        return _dagster_module(found.__name__)
    return isinstance(found, type) and _dagster_module(found.__module__)


def _path(found: object, names: list[str]) -> str:
    """``found``'s attribute ``names`` as the register names it: "module:Class.name" where Dagster defines it."""
    if isinstance(found, ModuleType):
        return f"{found.__name__}:{'.'.join(names)}"
    if found is None:  # a Dagster name that did not import: as written
        return ".".join(names)
    where = f"{getattr(found, '__module__', '?')}:{getattr(found, '__qualname__', '?')}"
    return ".".join([where, *names])


@functools.cache
def dagster_private_names(cls: type) -> frozenset[str]:
    """The private attributes Dagster defines on ``cls`` and its instances (see the module's docstring)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not _is_dagster(klass):
            continue
        names.update(vars(klass), vars(klass).get("__private_attributes__", {}))  # the latter, pydantic's
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # made at run time: no source of its own
            continue
        names.update(
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        )
    return frozenset(name for name in names if _private(name) and name not in PYTHON_MADE)


def _import(module: str, name: str | None = None) -> object:
    """``module`` or its attribute ``name`` (a submodule, say); None when it does not import."""
    try:
        found = importlib.import_module(module)
        if name is None:
            return found
        return getattr(found, name) if hasattr(found, name) else importlib.import_module(f"{module}.{name}")
    except ImportError:
        return None


class _Module(ast.NodeVisitor):
    """One module's uses of Dagster's private API; those not in the register are in ``found``."""

    def __init__(self, path: Path, internals: bool) -> None:
        self.path = path
        self.internals = internals
        self.tree = ast.parse(path.read_text(), str(path))
        self.found: list[str] = []
        self.used: set[str] = set()  # the entries of the register this module's uses match
        self.bound: dict[str, object] = {}  # local name -> the Dagster module or class (None: not importable)
        self.bases: dict[str, list[type]] = {}  # the module's classes deriving from Dagster's -> their Dagster bases
        self.named: set[type] = set()  # the Dagster classes the module names
        self.own: set[str] = set()  # the private names its other classes define
        self.classes: list[str] = []  # the classes the visit is in

    def scan(self) -> None:
        self._imports()
        self._classes()
        self.visit(self.tree)

    def _report(self, node: ast.AST, message: str) -> None:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        self.found.append(f"{where}:{getattr(node, 'lineno', '?')}: {message}")

    def _imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _private_module(alias.name) and not self.internals:
                        self._report(
                            node, f"imports {alias.name}: only dagster_internals.py imports Dagster's private modules"
                        )
                    if _dagster_module(alias.name):
                        top = alias.name.split(".")[0]
                        self.bound[alias.asname or top] = _import(alias.name if alias.asname else top)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    if _dagster_module(node.module):
                        if (_private_module(node.module) or _private(alias.name)) and not self.internals:
                            self._report(
                                node,
                                f"imports {node.module}.{alias.name}: only dagster_internals.py imports Dagster's private names",
                            )
                        self.bound[alias.asname or alias.name] = _import(node.module, alias.name)
                    elif node.module == dagster_internals.__name__:
                        found = _import(node.module, alias.name)
                        if _is_dagster(found):
                            self.bound[alias.asname or alias.name] = found

    def _resolve(self, node: ast.expr) -> tuple[object, list[str]] | None:
        """The Dagster module or class an expression ``name.attr…`` reaches, and the names after it."""
        names = []
        while isinstance(node, ast.Attribute):
            names.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.bound:
            return None
        found = self.bound[node.id]
        if found is None:
            return None, [node.id, *names]
        while names and _is_dagster(step := getattr(found, names[0], None)):
            found = step
            names.pop(0)
        return found, names

    def _classes(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name | ast.Attribute):
                resolved = self._resolve(node)
                if resolved and isinstance(resolved[0], type) and not resolved[1] and _is_dagster(resolved[0]):
                    self.named.add(resolved[0])
            if not isinstance(node, ast.ClassDef):
                continue
            bases: list[type] = []
            dagster = False
            for base in node.bases:
                if isinstance(base, ast.Subscript):  # a generic class: Base[T]
                    base = base.value
                resolved = self._resolve(base)
                if resolved is not None:
                    dagster = True
                    if isinstance(resolved[0], type) and not resolved[1]:
                        bases.append(resolved[0])
                elif isinstance(base, ast.Name) and base.id in self.bases:
                    dagster = True
                    bases.extend(self.bases[base.id])
            if dagster:
                self.bases[node.name] = bases
            else:
                self.own.update(name for item in ast.walk(node) for name in _defined(item) if _private(name))

    def _registered(self, name: str, classes: Iterable[type], register: dict[str, str]) -> bool:
        for cls in classes:
            for klass in cls.__mro__:
                if (path := _path(klass, [name])) in register:
                    self.used.add(path)
                    return True
        return False

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.name in self.bases:
            for item in node.body:
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and _private(item.name)
                    and not self._registered(item.name, self.bases[node.name], PRIVATE_METHODS)
                ):
                    of = ", ".join(_path(base, []) for base in self.bases[node.name]) or "a Dagster class"
                    self._report(
                        item, f"{node.name}.{item.name}: a private method in a subclass of {of}, not in PRIVATE_METHODS"
                    )
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring: it may name a private module, it does not use one
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str) or self.internals:
            return
        for written in re.findall(r"\bdagster\w*(?:\.\w+)+", node.value):
            if written in WRITABLE:
                self.used.add(WRITABLE[written])
            elif _private_module(written):
                self._report(node, f"the string {written!r}: a private Dagster module path not in PRIVATE_MODULE_PATHS")

    def _patch(self, node: ast.AST, target: ast.expr, name: str) -> None:
        resolved = self._resolve(target)
        if resolved is None:
            return
        path = _path(resolved[0], [*resolved[1], name])
        if not self.internals:
            self._report(node, f"sets {path} at run time: only dagster_internals.py patches Dagster (MONKEYPATCHES)")
        elif path in MONKEYPATCHES:
            self.used.add(path)
        else:
            self._report(node, f"sets {path} at run time: not in MONKEYPATCHES")

    def _targets(self, node: ast.AST, targets: Iterable[ast.expr]) -> None:
        for target in targets:
            if isinstance(target, ast.Tuple | ast.List):
                self._targets(node, target.elts)
            elif isinstance(target, ast.Starred):
                self._targets(node, [target.value])
            elif isinstance(target, ast.Attribute):
                self._patch(node, target.value, target.attr)

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node, node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets(node, [node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets(node, [node.target])
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node, node.targets)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and len(node.args) >= 2:
            name = node.args[1].value if isinstance(node.args[1], ast.Constant) else "?"
            self._patch(node, node.args[0], str(name))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if not _private(node.attr):
            return
        receiver = node.value
        on_self = (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")) or (
            isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) and receiver.func.id == "super"
        )
        if on_self and self.classes:
            if self.classes[-1] not in self.bases:
                return  # one of our own objects
            classes, own = self.bases[self.classes[-1]], set()
        else:
            resolved = self._resolve(receiver)
            if resolved is not None and isinstance(resolved[0], ModuleType) and not resolved[1]:
                path = _path(resolved[0], [node.attr])
                if path not in USABLE:
                    self._report(node, f"{path}: a private name of a Dagster module, not in PRIVATE_ATTRIBUTES")
                return
            classes, own = list(self.named), self.own
        defining = [cls for cls in classes if node.attr in dagster_private_names(cls)]
        if defining and node.attr not in own and not self._registered(node.attr, defining, USABLE):
            self._report(
                node,
                f".{node.attr}: a private attribute of {_path(defining[0], [])}, not in PRIVATE_ATTRIBUTES or PRIVATE_METHODS",
            )


def _defined(node: ast.AST) -> Iterable[str]:
    """The names a node of one of our own classes defines: methods, class attributes, ``self.x = …``."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield node.name
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        yield node.id
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
        yield node.attr


def scan(paths: Iterable[Path], internals: Path = INTERNALS) -> tuple[list[str], set[str]]:
    """Uses of Dagster's private API in ``paths`` that the register does not allow, and the register's
    entries the allowed ones match; ``internals`` is the module allowed to import and patch Dagster."""
    found: list[str] = []
    used: set[str] = set()
    for path in paths:
        module = _Module(path.resolve(), internals=path.resolve() == internals.resolve())
        module.scan()
        found += module.found
        used |= module.used
    return found, used


@functools.cache
def project_scan() -> tuple[list[str], set[str]]:
    return scan(sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")))


# --- the project


def test_nothing_uses_a_private_dagster_name_outside_the_register() -> None:
    found, _ = project_scan()
    assert found == [], (
        "Dagster's private API used outside smartplex_dagster/runtime/dagster_internals.py:\n" + "\n".join(found)
    )


def test_every_entry_of_the_register_is_used() -> None:
    _, used = project_scan()
    register = {**PRIVATE_ATTRIBUTES, **PRIVATE_METHODS, **MONKEYPATCHES, **PRIVATE_MODULE_PATHS}
    assert sorted(set(register) - used) == [], "no longer used: remove from dagster_internals.py's register"


def _owner(path: str) -> tuple[object, str]:
    """The module or class an entry of the register is on, and its name there."""
    module, _, qualname = path.partition(":")
    *owners, name = qualname.split(".")
    found: object = importlib.import_module(module)
    for owner in owners:
        found = getattr(found, owner)
    return found, name


def _still_there(path: str, has: bool) -> None:
    assert has, (
        f"Dagster {dg.__version__} no longer has {path}; update smartplex_dagster/runtime/dagster_internals.py and what uses it"
    )


def _owner_or_fail(path: str) -> tuple[object, str]:
    try:
        return _owner(path)
    except (ImportError, AttributeError) as error:
        pytest.fail(
            f"Dagster {dg.__version__} no longer has {path.rpartition('.')[0]} ({error}); update dagster_internals.py"
        )


@pytest.mark.parametrize("path", sorted(PRIVATE_ATTRIBUTES))
def test_each_registered_private_attribute_is_still_dagsters(path: str) -> None:
    owner, name = _owner_or_fail(path)
    assert isinstance(owner, type)
    _still_there(path, name in dagster_private_names(owner))


@pytest.mark.parametrize("path", sorted(PRIVATE_METHODS))
def test_each_registered_private_method_is_still_dagsters(path: str) -> None:
    owner, name = _owner_or_fail(path)
    assert isinstance(owner, type)
    _still_there(path, callable(getattr(owner, name, None)) and name in dagster_private_names(owner))


@pytest.mark.parametrize("path", sorted(MONKEYPATCHES))
def test_each_monkeypatched_name_is_still_dagsters(path: str) -> None:
    owner, name = _owner_or_fail(path)
    _still_there(path, hasattr(owner, name))


@pytest.mark.parametrize("path", sorted(PRIVATE_MODULE_PATHS))
def test_each_registered_module_path_still_names_a_class(path: str) -> None:
    owner, name = _owner_or_fail(path)
    _still_there(path, isinstance(getattr(owner, name, None), type))


def test_the_embedded_config_names_the_registered_no_op_compute_log_manager_without_importing_dagster() -> None:
    """The supervisor (``smartplex run``) writes the embedded instance's dagster.yaml without Dagster
    in memory, so the module path is written there as a string, and checked here against the register."""
    written = f"{dagster_home.NO_COMPUTE_LOGS['module']}:{dagster_home.NO_COMPUTE_LOGS['class']}"
    assert written in PRIVATE_MODULE_PATHS
    code = (
        "import sys, smartplex_cli.dagster_home; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert loaded.strip() == "[]"


# --- the fence fails: each kind of use, outside the register, is reported by line and name

FLAGGED = {
    "private import": (
        "from dagster._core.events import DagsterEvent\n",
        "1: imports dagster._core.events.DagsterEvent",
    ),
    "private module import": ("import dagster._daemon.sensor as sensor\n", "1: imports dagster._daemon.sensor"),
    "private name from dagster": ("from dagster import _check\n", "1: imports dagster._check"),
    "module path string": (
        'LOGS = {"module": "dagster._core.storage.local_compute_log_manager", "class": "LocalComputeLogManager"}\n',
        "1: the string 'dagster._core.storage.local_compute_log_manager'",
    ),
    "module path in an f-string": (
        'def command(x):\n    return f"python -m dagster._daemon.cli {x}"\n',
        "2: the string 'dagster._daemon.cli'",
    ),
    "monkeypatch of a public class": (
        "import dagster as dg\n\ndg.AssetKey.to_string = lambda self: ''\n",
        "3: sets dagster._core.definitions.asset_key:AssetKey.to_string at run time",
    ),
    "monkeypatch through dagster_internals": (
        "from smartplex_dagster.runtime.dagster_internals import SqliteRunStorage\n\nSqliteRunStorage.connect = None\n",
        "3: sets dagster._core.storage.runs.sqlite.sqlite_run_storage:SqliteRunStorage.connect at run time",
    ),
    "registered monkeypatch outside dagster_internals": (
        "import dagster as dg\n\nsetattr(dg._daemon.sensor, 'MIN_INTERVAL_LOOP_TIME', 1)\n",
        "3: sets dagster._daemon.sensor:MIN_INTERVAL_LOOP_TIME at run time: only dagster_internals.py",
    ),
    "private method override": (
        "from smartplex_dagster.runtime.dagster_internals import SqliteEventLogStorage\n\n"
        "class Storage(SqliteEventLogStorage):\n    def _delete_run_events(self, run_id):\n        pass\n",
        "4: Storage._delete_run_events: a private method in a subclass of "
        "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage",
    ),
    "private method of a subclass of a subclass": (
        "import dagster as dg\n\nclass Base(dg.ConfigurableResource):\n    pass\n\n"
        "class Resource(Base):\n    def _client(self):\n        pass\n",
        "7: Resource._client: a private method in a subclass of",
    ),
    "private attribute on self": (
        "from smartplex_dagster.runtime.dagster_internals import SqliteEventLogStorage\n\n"
        "class Storage(SqliteEventLogStorage):\n    def where(self):\n        return self._base_dir\n",
        "5: ._base_dir: a private attribute of dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage",
    ),
    "private attribute on another object": (
        "import dagster as dg\n\ndef events(instance: dg.DagsterInstance):\n    return instance._event_storage\n",
        "4: ._event_storage: a private attribute of dagster._core.instance.instance:DagsterInstance",
    ),
    "registered attribute of a class the module does not name": (
        "import dagster as dg\n\ndef runs(instance: dg.DagsterInstance):\n    return instance._run_storage\n",
        "4: ._run_storage: a private attribute of dagster._core.instance.instance:DagsterInstance",
    ),
    "private name of a Dagster module": (
        "import dagster as dg\n\nCHECK = dg._check\n",
        "3: dagster:_check: a private name of a Dagster module",
    ),
}


@pytest.mark.parametrize("kind", sorted(FLAGGED))
def test_the_fence_reports(kind: str, tmp_path: Path) -> None:
    source, expected = FLAGGED[kind]
    module = tmp_path / "module.py"
    module.write_text(source)
    found, _ = scan([module])
    assert any(f"{module}:{expected}" in line for line in found), found


def test_the_fence_reports_an_unregistered_monkeypatch_in_dagster_internals(tmp_path: Path) -> None:
    module = tmp_path / "dagster_internals.py"
    module.write_text(
        "import dagster._daemon.sensor as sensor_daemon\n\n"
        "sensor_daemon.MIN_INTERVAL_LOOP_TIME = 1\n"
        "sensor_daemon.TICK_THRESHOLD = 1\n"
    )
    found, used = scan([module], internals=module)
    assert found == [f"{module}:4: sets dagster._daemon.sensor:TICK_THRESHOLD at run time: not in MONKEYPATCHES"]
    assert used == {"dagster._daemon.sensor:MIN_INTERVAL_LOOP_TIME"}


CLEAN = {
    "registered overrides and attributes": (
        "from smartplex_dagster.runtime.dagster_internals import SqliteEventLogStorage, SqliteRunStorage\n\n"
        "class Runs(SqliteRunStorage):\n    def connect(self):\n        return self._conn_string\n\n"
        "class Events(SqliteEventLogStorage):\n    def _connect(self, shard):\n"
        "        with self._db_lock:\n            return super()._connect(shard)\n\n"
        "def forget(storage: SqliteEventLogStorage, run_id):\n    storage._initialized_dbs.discard(run_id)\n"
    ),
    "our own private names beside Dagster": (
        "import dagster as dg\n\nclass Pool:\n    def __init__(self):\n        self._instance = None\n\n"
        "    def _take(self):\n        return self._instance\n\n"
        "def take(pool: Pool, instance: dg.DagsterInstance):\n    return pool._instance, pool._take()\n"
    ),
    "dunder methods and public overrides": (
        "import dagster as dg\n\nclass Resource(dg.ConfigurableResource):\n"
        "    def __repr__(self):\n        return 'r'\n\n    def setup_for_execution(self, context):\n        pass\n"
    ),
    "a private attribute in a module without Dagster": "def events(instance):\n    return instance._event_storage\n",
    "a docstring naming a private module": '"""Dagster\'s ``dagster._daemon.sensor`` loops every 5 s."""\n',
    "the registered module path": (
        'LOGS = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}\n'
    ),
    "assignments to our own objects": (
        "import dagster as dg\n\nclass Config(dg.Config):\n    limit: int = 1\n\n"
        "def change(config: Config, other):\n    other.limit = config.limit\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(CLEAN))
def test_the_fence_lets_pass(kind: str, tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(CLEAN[kind])
    assert scan([module])[0] == []
