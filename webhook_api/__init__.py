"""The FastAPI service: webhook intake into ``webhook_log``, the status and admin APIs, and the admin page.

It never imports Dagster; it is assembled in :mod:`webhook_api.app`.
"""

#: The API's OpenAPI title; also how ``smartplex demo`` and ``smartplex run`` tell this API from
#: another server on its port. Here, so they can read it without loading the app.
API_TITLE = "SmartPlex Sync webhook API"
