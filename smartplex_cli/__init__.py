"""The ``smartplex`` command. Subcommands import their modules lazily so each starts fast."""

from __future__ import annotations

import importlib
from typing import Any

import click

# Subcommand name -> "module:attribute" of its click command.
_COMMANDS = {
    "db": "smartplex_cli.db:db",
    "api": "smartplex_cli.api:api",
    "check": "smartplex_cli.check:check",
    "simulate": "smartplex_cli.simulate:simulate",
    "demo": "smartplex_cli.demo:demo",
    "run": "smartplex_cli.run:run",
    "worker": "smartplex_cli.worker:worker",
}


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except ValidationError as exc:  # the settings: say what to fix, not where pydantic noticed
            raise click.ClickException("; ".join(_problem(error) for error in exc.errors())) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


def _problem(error: Any) -> str:
    if error["loc"]:  # one variable's value
        return f"SMARTPLEX_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
    return str(error["ctx"]["error"]) if "ctx" in error else str(error["msg"])  # the instances' own message


@click.group(cls=_LazyGroup)
def main() -> None:
    """SmartPlex Sync: keep a database in step with Plex, Tautulli, Sonarr, Radarr and Overseerr."""
