"""The sample app's answer, as the kubia image (``luksa/kubia``) gives it: ``You've hit <pod>``.

Every backend's sample Deployment answers any GET with the name of the pod that served it
(the simulator's and the local cluster's pods run ``backends/sim/sampleapp.py``, a standalone
script that writes the same line). The load generator reads it to count requests per pod; the
backends' steady-state waits read it to see every pod answer.
"""

from __future__ import annotations

PREFIX = b"You've hit "
_NAME_MAX = 253  # the longest Kubernetes object name


def serving_pod(body: bytes) -> str | None:
    """The pod name in a kubia answer (``You've hit kubia-x2x9k``), else None."""
    if body.startswith(PREFIX):
        name = body[len(PREFIX):len(PREFIX) + _NAME_MAX].split(None, 1)
        return name[0].decode("ascii", "replace") if name else None
    return None
