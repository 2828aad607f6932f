"""What the code location defines: the assets, jobs, sensors, schedules and resources that
``smartplex_dagster.definitions`` assembles, and the outcome logic they share."""
