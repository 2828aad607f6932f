"""The ``smartplex`` command. Subcommands import their modules lazily so each starts fast."""

from __future__ import annotations

import importlib

import click

# Subcommand name -> "module:attribute" of its click command.
_COMMANDS = {
    "db": "smartplex.cli.db:db",
    "api": "webhook_api.serve:api",
    "check": "smartplex.cli.check:check",
    "simulate": "smartplex_simulators.cli:simulate",
    "demo": "smartplex.cli.stack:demo",
    "run": "smartplex.cli.stack:run",
    "worker": "smartplex.cli.worker:worker",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_LazyGroup)
def main() -> None:
    """SmartPlex Sync: keep a database in step with Plex, Tautulli, Sonarr, Radarr and Overseerr."""
