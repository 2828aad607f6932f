"""SmartPlex Sync's shared core: the service kinds and their instances, settings, the routing table, the schema,
the ``webhook_log`` queue, the service clients and the sync engine. It imports no other package of the
project; every other package imports it.
"""
