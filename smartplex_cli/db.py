"""``smartplex db``: upgrade, downgrade, show and print the schema migrations."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.settings import get_settings


def _engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.resolved_database_url, timeout=settings.db_timeout_seconds)


@click.group()
def db() -> None:
    """Manage the product database's schema (SMARTPLEX_DATABASE_URL)."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Apply migrations; running it again is a no-op."""
    engine = _engine()
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> {after}")


@db.command()
@click.option("--revision", default="-1", show_default=True, help="Target revision; 'base' removes everything.")
def downgrade(revision: str) -> None:
    """Revert migrations (by default the last one)."""
    engine = _engine()
    migrate.downgrade(engine, revision)
    click.echo(f"now at {migrate.current_revision(engine) or 'base (empty)'}")


@db.command()
def current() -> None:
    """Print the database's revision and the newest one available."""
    click.echo(f"database: {migrate.current_revision(_engine()) or 'empty'}; newest: {migrate.head_revision()}")


@db.command()
@click.option("--revision", default=None, help="One migration; default: all, in order.")
@click.option("--write", is_flag=True, help="Rewrite the committed files in migrations/sql/ instead of printing.")
def sql(revision: str | None, write: bool) -> None:
    """Print the migrations as plain PostgreSQL, for databases managed by hand (Supabase SQL editor)."""
    chosen = [revision] if revision else [rev for rev, _, _ in migrate.revisions()]
    for rev in chosen:
        text = migrate.render_sql(rev)
        if write:
            migrate.sql_file(rev).write_text(text)
            click.echo(f"wrote {migrate.sql_file(rev)}")
        else:
            click.echo(text)
