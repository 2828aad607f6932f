"""``smartplex simulate``: run all five simulators on loopback ports until interrupted."""

from __future__ import annotations

import threading

import click

from smartplex.services import SERVICE_NAMES, get_service

#: Each service's usual port, for ``--default-ports``.
DEFAULT_PORTS = {"plex": 32400, "tautulli": 8181, "sonarr": 8989, "radarr": 7878, "overseerr": 5055}


def _parse_ports(values: tuple[str, ...]) -> dict[str, int]:
    ports = {}
    for value in values:
        name, sep, port = value.partition("=")
        if not sep or name not in SERVICE_NAMES or not port.isdigit():
            raise click.BadParameter(f"expected SERVICE=PORT with SERVICE one of {', '.join(SERVICE_NAMES)}")
        ports[name] = int(port)
    return ports


@click.command()
@click.option("--seed", default=1, show_default=True, help="Seed of the generated media universe.")
@click.option("--size", default=5000, show_default=True, help="Plex items (movies + episodes) to generate.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "ports", multiple=True, metavar="SERVICE=PORT", help="Fixed port for a service (repeatable).")
@click.option("--default-ports", is_flag=True, help="Use each service's usual port (32400, 8181, 8989, 7878, 5055).")
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice(SERVICE_NAMES),
    help="Run only these (repeatable; default: all five).",
)
@click.option(
    "--webhook-url",
    default=None,
    metavar="URL",
    help="Send each service's webhooks here; {service} is replaced by the service name.",
)
@click.option(
    "--now",
    type=int,
    default=None,
    metavar="EPOCH",
    help="Fix the simulated clock at this Unix time (default: follow the real clock).",
)
def simulate(
    seed: int,
    size: int,
    host: str,
    ports: tuple[str, ...],
    default_ports: bool,
    services: tuple[str, ...],
    webhook_url: str | None,
    now: int | None,
) -> None:
    """Start simulated Plex, Tautulli, Sonarr, Radarr and Overseerr servers and print how to reach them."""
    from smartplex.cli.processes import stop_on_signals
    from smartplex_simulators.serve import run_simulators

    stop_on_signals()
    chosen = {**(DEFAULT_PORTS if default_ports else {}), **_parse_ports(ports)}
    click.echo(f"Generating a universe of {size} items (seed {seed})...")
    with run_simulators(
        size=size,
        seed=seed,
        services=services or SERVICE_NAMES,
        ports=chosen,
        host=host,
        webhook_url=webhook_url,
        now=now,
    ) as sims:
        for name, url in sims.urls.items():
            click.echo(f"{get_service(name).title:<18} {url}  key {sims.keys[name]}")
        click.echo("\nTo point SmartPlex at them:")
        for variable, value in sims.env().items():
            click.echo(f"export {variable}={value}")
        click.echo(f"\nControl: POST {next(iter(sims.urls.values()))}/_sim/movies, /_sim/plays, ... Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("Stopping.")
