"""Dagster code location: the sync assets, the webhook sensor and the schedules."""
