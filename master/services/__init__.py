"""What the master's readers see (the CLI, and the web console running inside the master).

Typed results only (pydantic models): ``courts`` (status, health, OBS, match), ``events``
(the central event query, paged), ``tournaments`` (days and the courts that worked them),
``ivr`` (the IVR desk: replays and their reviews, the one thing here that writes).
The database side goes through :mod:`master.db.repository`; the live side reads the running
master's links and :mod:`master.live`.
"""
