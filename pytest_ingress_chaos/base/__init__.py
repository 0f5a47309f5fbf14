"""The base vocabulary every other layer speaks; it imports nothing of the package above it.

- ``units``: durations, rates, percentages and counts: parse and format.
- ``clock``: test seconds <-> wall seconds, the one owner of the time scale.
- ``outcomes``: the kinds of request outcome and which of them are a success.
- ``errors``: the package's one exception tree.
- ``events``: what happened on the timeline, and the event kinds.
- ``kubenames``: the Kubernetes API server's naming rules.
- ``specs``: frozen, self-validating specs of a load window, an SLO, a service and chaos.
- ``backend``: the backend contract the core drives (provisioning request, Service, PodInfo,
  capabilities).
- ``stopsignals``: SIGTERM/SIGINT handling for the package's long-running processes.
"""
