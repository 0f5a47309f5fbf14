"""What chaos may touch on a real cluster: by default, only what this run created.

On the simulator a wrong victim costs nothing; on a shared cluster, deleting someone else's pod
or cordoning a node that runs production traffic is an incident. So every chaos verb checks,
against the API, right before acting:

- a pod must carry this run's labels (managed-by and run id), unless ``foreign-pods`` is opted
  in;
- a node may be cordoned, or labelled to be excluded from load balancers, only while it runs a
  pod of this service, unless ``foreign-nodes`` is opted in; its other pods are never evicted,
  unless ``foreign-pods`` is opted in.

The opt-in is the session setting ``allow_chaos_on`` (a set of the names in :data:`OPT_INS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...base.errors import BackendError
from ...settings.options import SessionSettings
from . import pods
from .labels import MANAGED_BY_LABEL, RUN_LABEL, created_by_run, labels_of

OPT_INS: Mapping[str, str] = {  # the names of options.CHAOS_SCOPES, and what each allows
    "foreign-pods": "delete or evict pods this run did not create",
    "foreign-nodes": "cordon, label and drain nodes that run none of this service's pods",
}
OPT_IN_HINT = ("opt in with the session setting allow_chaos_on (--ingress-allow-chaos-on "
               "{name}, ini ingress_allow_chaos_on, env PYTEST_INGRESS_ALLOW_CHAOS_ON)")


def allowed_chaos(settings: SessionSettings) -> frozenset[str]:
    """The session's opt-ins (``--ingress-allow-chaos-on``, validated with the options)."""
    return settings.allow_chaos_on


class Guard:
    """The run's safety checks; every refusal says why and how to opt in."""

    def __init__(self, run_id: str, allowed: frozenset[str]) -> None:
        self.run_id = run_id
        self.allowed = allowed

    def may_touch(self, pod: Mapping[str, Any]) -> bool:
        """Whether chaos may act on ``pod``: this run created it, or foreign pods are allowed."""
        return created_by_run(pod, self.run_id) or "foreign-pods" in self.allowed

    def check_pod(self, pod: Mapping[str, Any], action: str) -> None:
        """Refuse ``action`` on ``pod`` unless this run created it (or foreign pods are
        allowed)."""
        if self.may_touch(pod):
            return
        labels = labels_of(pod)
        namespace = (pod.get("metadata") or {}).get("namespace")
        raise BackendError(
            f"refusing to {action} pod {pods.name(pod)} in namespace {namespace}: this run "
            f"({RUN_LABEL}={self.run_id}) did not create it (its labels: {MANAGED_BY_LABEL}="
            f"{labels.get(MANAGED_BY_LABEL)}, {RUN_LABEL}={labels.get(RUN_LABEL)}); to "
            f"{OPT_INS['foreign-pods']}, {OPT_IN_HINT.format(name='foreign-pods')}")

    def check_node(self, node: str, ours: int, service: str, action: str = "drain") -> None:
        """Refuse to ``action`` (drain, label) ``node`` unless it runs ``ours`` > 0 pods of the
        service (or foreign nodes are allowed)."""
        if ours or "foreign-nodes" in self.allowed:
            return
        raise BackendError(
            f"refusing to {action} node {node}: it runs no pod of {service}; to "
            f"{OPT_INS['foreign-nodes']}, {OPT_IN_HINT.format(name='foreign-nodes')}")

    @property
    def foreign_pods(self) -> bool:
        return "foreign-pods" in self.allowed
