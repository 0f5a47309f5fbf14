"""The kubernetes backend: the sample service on a real cluster, through the official client.

- ``backend.py``: :class:`~.backend.KubernetesBackend`, the session's backend: namespaces,
  provisioning, the shared per-run objects; ``service.py``: one provisioned service (the
  contract's ``Service``: its chaos verbs and its watches).
- ``connect.py``: which cluster, decided once; ``apis.py``: the API as dicts, every failure a
  ``BackendError``; ``deadline.py``: deadlines a teardown ends early.
- ``manifests.py`` and ``profiles.py``: the objects created, as pure functions of the
  settings, and how each ingress implementation spells a target type; ``labels.py``: the names
  and labels that mark what a run created.
- ``watches.py`` and ``observers.py``: list-then-watch threads, their sightings translated into
  the contract's events (``base.events.EventKind``); ``pods.py``: reading a pod's dict.
- ``waits.py``: from "the API accepted the objects" to "a load window may open";
  ``diagnosis.py``: what a timed-out wait saw, in words.
- ``guard.py``: what chaos may touch (by default only what this run created);
  ``lifecycle.py``: cleanup at interpreter exit and on SIGTERM; ``sweeper.py``:
  ``ingress-chaos-sweep``, for what killed sessions left behind.

``localcluster/`` runs a real control plane on this machine, for the backend's own tests and
for anyone who wants a cluster to point a test at; this package never imports it.
"""
