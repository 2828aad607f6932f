"""Instances: configured copies of a service kind, the unit everything per service is kept by.

An :class:`Instance` is ``sonarr`` (the default instance, configured by ``SMARTPLEX_SONARR_*``) or
``sonarr/4k`` (``SMARTPLEX_SONARR_4K_*``); ``smartplex.settings`` says which extra instances exist.
Code passes instances, not their ids: an id is parsed once, where it comes in (a URL, a row, a tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

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
        prefix = f"SMARTPLEX_{self.slug.upper()}"
        return f"{prefix}_URL", f"{prefix}_{self.kind.credential_setting.upper()}"

    @property
    def secret_env_name(self) -> str:
        """The variable holding a webhook secret for this instance alone."""
        if self.is_default:
            return f"SMARTPLEX_WEBHOOK_SECRET_{self.kind.name.upper()}"
        return f"SMARTPLEX_{self.slug.upper()}_WEBHOOK_SECRET"


DEFAULT_INSTANCES: tuple[Instance, ...] = tuple(Instance(k) for k in KINDS)
