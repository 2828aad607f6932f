"""Instances: configured copies of a service kind, the unit everything per service is kept by.

An :class:`Instance` is ``sonarr`` (the default instance, configured by ``SMARTPLEX_SONARR_*``) or
``sonarr/4k`` (``SMARTPLEX_SONARR_4K_*``); ``smartplex.settings`` says which extra instances exist.
Code passes instances, not their ids: an id is parsed once, where it comes in (a URL, a row, a tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NamedTuple

from smartplex.kinds import KINDS, Kind, get_kind

#: The instance configured by the kind's own variables (``SMARTPLEX_SONARR_URL``), in every table.
DEFAULT_INSTANCE: Final = "default"
#: An extra instance's name: it becomes part of variable names, asset keys and URLs.
INSTANCE_NAME = re.compile(r"[a-z0-9]{1,32}")


@dataclass(frozen=True)
class Instance:
    """One configured copy of a service kind. Its id is the kind's name for the default instance
    (``sonarr``) and ``kind/name`` for the others (``sonarr/4k``)."""

    kind: Kind
    name: str = DEFAULT_INSTANCE

    @classmethod
    def parse(cls, instance_id: str) -> Instance:
        """``sonarr`` or ``sonarr/4k`` (``sonarr/default`` is ``sonarr``); ``ValueError`` otherwise."""
        kind, _, name = instance_id.partition("/")
        kind_ = get_kind(kind)
        if not name:
            return cls(kind_)
        if not INSTANCE_NAME.fullmatch(name):
            raise ValueError(f"bad instance name {name!r}: lowercase letters and digits, at most 32")
        return cls(kind_, name)

    @classmethod
    def from_slug(cls, slug: str) -> Instance:
        """The instance of a :attr:`slug` (``sonarr_4k``); ``ValueError`` otherwise."""
        return cls.parse(slug.replace("_", "/", 1))

    @classmethod
    def of(cls, kind: str, name: str) -> Instance:
        """The instance a row names by its kind and instance columns."""
        return cls(get_kind(kind), name)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_INSTANCE

    @property
    def id(self) -> str:
        return self.kind.name if self.is_default else f"{self.kind.name}/{self.name}"

    @property
    def slug(self) -> str:
        """The id as one identifier: asset key prefix, pool, schedule and resource names."""
        return self.kind.name if self.is_default else f"{self.kind.name}_{self.name}"

    @property
    def title(self) -> str:
        return self.kind.title if self.is_default else f"{self.kind.title} ({self.name})"

    @property
    def library_asset(self) -> str:
        return f"{self.slug}/{self.kind.asset_name}"

    @property
    def env_names(self) -> tuple[str, str]:
        """The variables that configure it: its URL and its credential."""
        variables = instance_variables(self)
        return variables.url, variables.credential

    @property
    def secret_env_name(self) -> str:
        """The variable holding a webhook secret for this instance alone."""
        return instance_variables(self).webhook_secret


class InstanceVariables(NamedTuple):
    """The names of the variables that configure one instance."""

    url: str
    credential: str
    webhook_secret: str


def instance_variables(instance: Instance) -> InstanceVariables:
    """The one place the names of an instance's variables are made, for every kind; the settings
    read them, ``docs/configuration.md`` lists them and ``tests/test_docs.py`` holds the two together.

    ``sonarr``: ``SMARTPLEX_SONARR_URL``, ``SMARTPLEX_SONARR_API_KEY``, ``SMARTPLEX_WEBHOOK_SECRET_SONARR``;
    ``plex``: ``SMARTPLEX_PLEX_URL``, ``SMARTPLEX_PLEX_TOKEN``, ``SMARTPLEX_WEBHOOK_SECRET_PLEX``;
    ``sonarr/4k``: ``SMARTPLEX_SONARR_4K_URL``, ``SMARTPLEX_SONARR_4K_API_KEY``, ``SMARTPLEX_SONARR_4K_WEBHOOK_SECRET``.
    """
    prefix = f"SMARTPLEX_{instance.slug.upper()}"
    credential = f"{prefix}_{instance.kind.credential_setting.upper()}"
    if instance.is_default:
        # The default instance's secret reads as the installation's, narrowed to one kind.
        return InstanceVariables(f"{prefix}_URL", credential, f"SMARTPLEX_WEBHOOK_SECRET_{instance.kind.name.upper()}")
    return InstanceVariables(f"{prefix}_URL", credential, f"{prefix}_WEBHOOK_SECRET")


DEFAULT_INSTANCES: tuple[Instance, ...] = tuple(Instance(k) for k in KINDS)
