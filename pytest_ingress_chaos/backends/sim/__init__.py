"""The embedded simulator: a small cluster and an AWS ALB on loopback.

The simulator runs in a process of its own (``server.py``), so its timing does not disturb the
load thread; :class:`~.client.SimBackend` starts it and talks to it over a JSON-lines pipe.
"""
