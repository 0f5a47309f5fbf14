"""What a timed-out wait saw, in words: the text of a BackendTimeout.

A provision that does not reach a steady state on a real cluster fails for reasons only the API
can tell: an image that cannot be pulled, no node with room, a load balancer controller that
never wrote an address. So a diagnosis lists the service's pods (phase, conditions, container
waiting reasons), its Deployment's status, the namespace's recent Events and the Ingress status.
Each part is fetched on its own with a short timeout, and one that cannot be fetched says so
instead of hiding the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import pods
from .apis import ApiError, JsonDict, KubeApi
from .labels import LOCAL_PORT_ANNOTATION
from .manifests import SERVICE_LABEL

LOOK_TIMEOUT = 5.0  # seconds for each request of a diagnosis
EVENTS_SHOWN = 15


def _part(title: str, fetch: Callable[[], str]) -> str:
    try:
        return fetch()
    except ApiError as exc:
        return f"{title}: could not be read ({exc})"


def describe_pods(listed: list[JsonDict]) -> str:
    if not listed:
        return "pods: none"
    return "pods:\n" + "\n".join(f"  - {pods.describe(pod)}" for pod in listed)


def describe_deployment(deployment: Mapping[str, Any]) -> str:
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    conditions = ", ".join(
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
        for c in status.get("conditions") or [])
    return (f"Deployment {meta.get('name')}: spec.replicas {spec.get('replicas')}, replicas "
            f"{status.get('replicas', 0)}, updated {status.get('updatedReplicas', 0)}, ready "
            f"{status.get('readyReplicas', 0)}, available {status.get('availableReplicas', 0)}, "
            f"generation {meta.get('generation')} (observed "
            f"{status.get('observedGeneration')}); {conditions or 'no conditions'}")


def describe_ingress(ingress: Mapping[str, Any]) -> str:
    meta = ingress.get("metadata") or {}
    spec = ingress.get("spec") or {}
    addresses = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    shown = ", ".join(entry.get("hostname") or entry.get("ip") or "?" for entry in addresses)
    port = (meta.get("annotations") or {}).get(LOCAL_PORT_ANNOTATION)
    return (f"Ingress {meta.get('name')}: class {spec.get('ingressClassName')}, "
            f"status.loadBalancer.ingress: {shown or 'empty (no address yet)'}"
            f"{f', {LOCAL_PORT_ANNOTATION}={port}' if port else ''}")


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or (event.get("metadata") or {})
               .get("creationTimestamp") or "")


def describe_events(events: list[JsonDict], limit: int = EVENTS_SHOWN) -> str:
    """The namespace's most recent Events, oldest first: what controllers and kubelets said."""
    if not events:
        return "events: none"
    recent = sorted(events, key=_event_time)[-limit:]
    lines = []
    for event in recent:
        involved = event.get("involvedObject") or {}
        count = f" (x{event['count']})" if (event.get("count") or 1) > 1 else ""
        lines.append(f"  - {_event_time(event)} {event.get('type')} {event.get('reason')} "
                     f"{str(involved.get('kind', '')).lower()}/{involved.get('name')}: "
                     f"{str(event.get('message') or '').strip()}{count}")
    more = f" (last {limit} of {len(events)})" if len(events) > limit else ""
    return f"events{more}:\n" + "\n".join(lines)


def diagnose(api: KubeApi, namespace: str, name: str, *, pods_too: bool = True,
             deployment: bool = True, ingress: bool = True, events: bool = True) -> str:
    """What the API shows of service ``name`` in ``namespace``, one part per line."""
    parts = []
    if pods_too:
        parts.append(_part("pods", lambda: describe_pods(api.items(
            f"list pods of {name}", api.core.list_namespaced_pod, namespace,
            label_selector=f"{SERVICE_LABEL}={name}", timeout=LOOK_TIMEOUT))))
    if deployment:
        parts.append(_part(f"Deployment {name}", lambda: describe_deployment(api.call(
            f"read Deployment {name}", api.apps.read_namespaced_deployment, name, namespace,
            timeout=LOOK_TIMEOUT))))
    if ingress:
        parts.append(_part(f"Ingress {name}", lambda: describe_ingress(api.call(
            f"read Ingress {name}", api.networking.read_namespaced_ingress, name, namespace,
            timeout=LOOK_TIMEOUT))))
    if events:
        parts.append(_part("events", lambda: describe_events(api.items(
            f"list events in {namespace}", api.core.list_namespaced_event, namespace,
            timeout=LOOK_TIMEOUT))))
    return "\n".join(parts)
