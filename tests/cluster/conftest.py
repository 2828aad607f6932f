"""The cluster fixtures, for every test here."""

from tests.cluster.cluster import cluster, private_broker_cluster, redis_cluster  # noqa: F401
from tests.cluster.rabbitmq import private_rabbitmq  # noqa: F401
