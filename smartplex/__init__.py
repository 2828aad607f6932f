"""SmartPlex Sync shared core: settings, the service registry, the schema and the service clients.

Imports neither ``webhook_api`` nor ``smartplex_dagster``; both of those import it.
"""
