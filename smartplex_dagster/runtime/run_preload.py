"""What the runs' fork server (:mod:`smartplex_dagster.runtime.code_server`) does once, before it forks any run.

A run's process begins as a copy of the fork server, so whatever is done here is done for every run:

- the code location imported, and with it Dagster;
- the service clients' CA bundle loaded (20–50 ms, in every run that talks to a service);
- Dagster's migration scripts read (about 30 ms, in every run on the embedded storage, to stamp its
  new event file);
- then the objects made so far frozen out of the garbage collector's reach (:func:`gc.freeze`): a run's
  first full collection would otherwise walk every object copied from here, about 120 ms of the run,
  and write to each one, so that the copy-on-write pages it shared with the fork server became its own.

Importing it is all there is to it: the fork server only imports its preload modules.
"""

import gc

import smartplex_dagster.definitions  # noqa: F401 - imported for the fork server, see above
from smartplex.clients._http import tls_context
from smartplex_dagster.runtime.sqlite_storage import migrations

tls_context()
migrations()
gc.collect()
gc.freeze()
