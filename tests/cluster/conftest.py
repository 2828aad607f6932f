"""The cluster fixtures, for every test here."""

from tests.cluster.cluster import cluster, redis_cluster  # noqa: F401
