"""The Dagster code location: ``definitions.py`` assembles what ``defs/`` defines (the library
assets, the webhook sensor, the schedules); ``runtime/`` is how Dagster runs here (the code server,
the daemon, the embedded storage, orphaned runs, Dagster's private names)."""
