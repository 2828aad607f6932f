"""``smartplex simulate``: run a simulator of every kind (and, asked, a 4K Sonarr and Radarr) until interrupted."""

from __future__ import annotations

import threading

import click

from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES, get_kind
from smartplex_simulators._arr import EXTRA_INSTANCES, INSTANCE_IDS

#: Each instance's usual port, for ``--default-ports`` and its help (a second Sonarr or Radarr is usually
#: on the next one).
DEFAULT_PORTS = {
    "plex": 32400,
    "tautulli": 8181,
    "sonarr": 8989,
    "sonarr/4k": 8990,
    "radarr": 7878,
    "radarr/4k": 7879,
    "overseerr": 5055,
}


def _parse_ports(values: tuple[str, ...]) -> dict[str, int]:
    ports = {}
    for value in values:
        instance_id, sep, port = value.partition("=")
        if not sep or instance_id not in INSTANCE_IDS or not port.isdigit():
            raise click.BadParameter(f"expected INSTANCE=PORT with INSTANCE one of {', '.join(INSTANCE_IDS)}")
        ports[instance_id] = int(port)
    return ports


@click.command()
@click.option("--seed", default=1, show_default=True, help="Seed of the generated media universe.")
@click.option("--size", default=5000, show_default=True, help="Plex items (movies + episodes) to generate.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="INSTANCE=PORT",
    help="Fixed port for an instance, by its id: plex=32400, sonarr/4k=8990 (repeatable).",
)
@click.option(
    "--default-ports",
    is_flag=True,
    help="Use each instance's usual port ("
    + ", ".join(f"{instance_id} {port}" for instance_id, port in DEFAULT_PORTS.items())
    + ").",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KIND_NAMES),
    help="Run only these kinds' simulators (repeatable; default: every kind).",
)
# The option's name before kinds had a word of their own; kept so older command lines still run.
@click.option("--service", "service_kinds", multiple=True, type=click.Choice(KIND_NAMES), hidden=True)
@click.option(
    "--with-4k",
    is_flag=True,
    help="Also run a 4K Sonarr and a 4K Radarr (sonarr/4k, radarr/4k) over a third of the library.",
)
@click.option(
    "--webhook-url",
    default=None,
    metavar="URL",
    help="Send each instance's webhooks here: {kind} becomes its kind, {instance_path} /4k for a 4K instance "
    "(empty otherwise), as in http://127.0.0.1:8765/api/webhooks/{kind}{instance_path}.",
)
@click.option(
    "--drop-webhooks",
    type=click.FloatRange(0, 1),
    default=0.0,
    metavar="RATE",
    help="Lose this share of the webhooks (0 to 1) on purpose, unsent, as a flaky network would; seeded by --seed.",
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
    kinds: tuple[str, ...],
    service_kinds: tuple[str, ...],
    with_4k: bool,
    webhook_url: str | None,
    drop_webhooks: float,
    now: int | None,
) -> None:
    """Start a simulated server of every kind (or of those --kind names) and print how to reach them."""
    from smartplex_cli.supervisor import stop_on_signals
    from smartplex_simulators.serve import run_simulators

    if drop_webhooks and not webhook_url:
        raise click.UsageError("--drop-webhooks needs --webhook-url: without it no webhook is sent.")
    stop_on_signals()
    if service_kinds:
        click.echo("--service is now --kind.", err=True)
    chosen_ports = {**(DEFAULT_PORTS if default_ports else {}), **_parse_ports(ports)}
    chosen_kinds = [get_kind(name).name for name in (*kinds, *service_kinds) or KIND_NAMES]
    extra_instances = [i.id for i in EXTRA_INSTANCES if with_4k and i.kind.name in chosen_kinds]
    if extra_instances and webhook_url and "{instance_path}" not in webhook_url:
        click.echo("The webhook URL has no {instance_path}: the 4K instances will send no webhooks.", err=True)
    click.echo(f"Generating a universe of {size} items (seed {seed})...")
    with run_simulators(
        size=size,
        seed=seed,
        kinds=chosen_kinds,
        extra_instances=extra_instances,
        ports=chosen_ports,
        host=host,
        webhook_url=webhook_url,
        drop_webhooks=drop_webhooks,
        now=now,
    ) as sims:
        for instance_id, url in sims.urls.items():
            click.echo(f"{Instance.parse(instance_id).title:<18} {url}  key {sims.keys[instance_id]}")
        click.echo("\nTo point SmartPlex at them:")
        for variable, value in sims.env().items():
            click.echo(f"export {variable}={value}")
        click.echo(f"\nControl: POST {next(iter(sims.urls.values()))}/_sim/movies, /_sim/plays, ... Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("Stopping.")
