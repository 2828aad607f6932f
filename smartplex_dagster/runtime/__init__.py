"""Dagster's processes and storage as SmartPlex runs them: the code server and its runs' fork
server, the daemon, the embedded SQLite storage, runs orphaned by a dead worker, and every private
Dagster name the project uses (:mod:`smartplex_dagster.runtime.dagster_internals`)."""
