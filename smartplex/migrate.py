"""Alembic, driven from code: upgrade, downgrade, current revision and the plain-SQL rendering."""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQL_DIR = MIGRATIONS_DIR / "sql"


def _config(url: str | None = None, output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def _run(engine: Engine, action: str, revision: str) -> None:
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; a no-op when the database is already there."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    _run(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str:
    """The newest migration (read once per process: the scripts don't change while it runs)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def revisions() -> list[tuple[str, str | None, str]]:
    """(revision, down_revision, slug) from the first migration to the last."""
    script = ScriptDirectory.from_config(_config())
    ordered = reversed(list(script.walk_revisions()))
    return [(r.revision, r.down_revision, Path(r.path).stem.split("_", 1)[1]) for r in ordered]  # type: ignore[misc]


def sql_file(revision: str) -> Path:
    slug = {rev: slug for rev, _, slug in revisions()}[revision]
    return SQL_DIR / f"{revision}_{slug}.sql"


# Alembic writes its bookkeeping unguarded; these make a second run of the printed SQL a no-op.
# The first revision's stamp is only written into an empty table, so re-running it on a database that
# is already further along leaves the newer stamp alone (later revisions UPDATE from their parent).
_IDEMPOTENT_BOOKKEEPING = (
    (r"CREATE TABLE alembic_version", "CREATE TABLE IF NOT EXISTS alembic_version"),
    (
        r"INSERT INTO alembic_version \(version_num\) VALUES \('(\w+)'\) RETURNING alembic_version.version_num",
        r"INSERT INTO alembic_version (version_num) SELECT '\1' WHERE NOT EXISTS (SELECT 1 FROM alembic_version)",
    ),
)


def render_sql(revision: str) -> str:
    """One migration as plain PostgreSQL, safe to run twice (the Supabase SQL editor path)."""
    down = {rev: down for rev, down, _ in revisions()}[revision]
    out = io.StringIO()
    command.upgrade(_config(url="postgresql://", output=out), f"{down}:{revision}" if down else revision, sql=True)
    text = out.getvalue()
    if down is None:
        for pattern, replacement in _IDEMPOTENT_BOOKKEEPING:
            text, found = re.subn(pattern, replacement, text)
            if not found:
                raise RuntimeError(f"unexpected Alembic output: {pattern!r} not found")
    return text
