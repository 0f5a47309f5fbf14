"""Names and labels that mark what a run created (docs/kubernetes-backend.md).

They are what every safety check and the sweeper select on, so they live in one place: the
backend writes them on the namespace and every object, chaos checks them before touching a pod,
and ``ingress-chaos-sweep`` deletes only namespaces that carry them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pytest-ingress-chaos"
RUN_LABEL = "ingress-chaos.dev/run"
# Unix seconds, as a label (not an annotation) so that the sweeper can select on it.
CREATED_LABEL = "ingress-chaos.dev/created"
NAMESPACE_PREFIX = "ingress-chaos-"
SERVICE_PREFIX = "kubia-"


def namespace_name(run_id: str, worker: str) -> str:
    """The session's namespace: one per pytest run and xdist worker."""
    return f"{NAMESPACE_PREFIX}{run_id}-{worker}"


def session_labels(run_id: str, created: int) -> dict[str, str]:
    """The labels on the namespace and on every object in it."""
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_LABEL: run_id, CREATED_LABEL: str(created)}


def managed_selector() -> str:
    """A label selector for everything any run of the plugin created."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY}"


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.labels`` of an API object (a dict as the API sends it), never None."""
    labels: Mapping[str, str] | None = (obj.get("metadata") or {}).get("labels")
    return labels or {}


def created_by_run(obj: Mapping[str, Any], run_id: str) -> bool:
    """Whether ``obj`` carries this run's labels: managed by the plugin, and this run's id."""
    labels = labels_of(obj)
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY and labels.get(RUN_LABEL) == run_id

# Written by the local cluster's load balancer stand-in, which listens on a loopback port
# instead of port 80 (docs/kubernetes-backend.md, "Ingress address").
LOCAL_PORT_ANNOTATION = "ingress-chaos.dev/local-port"
