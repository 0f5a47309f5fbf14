"""Reading a pod as the API sends it (a dict): phase, conditions, containers, in one place.

The service (``pods()``), the waits, the watches and the diagnoses all ask the same questions of
a pod; answering them here keeps one definition of "Ready", "terminating" or "serving".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...base.backend import POD_PHASES, PodInfo
from .manifests import CONTAINER_PORT

Pod = Mapping[str, Any]


def name(pod: Pod) -> str:
    return str((pod.get("metadata") or {}).get("name", "?"))


def uid(pod: Pod) -> str | None:
    value = (pod.get("metadata") or {}).get("uid")
    return str(value) if value else None


def node(pod: Pod) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def phase(pod: Pod) -> str:
    value = str((pod.get("status") or {}).get("phase") or "Unknown")
    return value if value in POD_PHASES else "Unknown"


def conditions(pod: Pod) -> dict[str, bool]:
    """``{type: status == "True"}`` for every condition the pod reports."""
    return {str(c.get("type")): c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type")}


def condition_since(pod: Pod, kind: str) -> str:
    """The API's ``lastTransitionTime`` of a condition, for messages ("" when absent)."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("lastTransitionTime") or "")
    return ""


def ready(pod: Pod) -> bool:
    return conditions(pod).get("Ready", False)


def terminating(pod: Pod) -> bool:
    """Deletion requested: ``deletionTimestamp`` is set (the pod is still in the API)."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def serving(pod: Pod) -> bool:
    """Running, Ready and not terminating: a pod that counts toward a steady state."""
    return phase(pod) == "Running" and ready(pod) and not terminating(pod)


def container_statuses(pod: Pod) -> list[Mapping[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def exited(pod: Pod) -> bool:
    """Every container reported terminated (none known yet is not exited)."""
    statuses = container_statuses(pod)
    return bool(statuses) and all((status.get("state") or {}).get("terminated") is not None
                                  for status in statuses)


def restarts(pod: Pod) -> int:
    return sum(int(status.get("restartCount") or 0) for status in container_statuses(pod))


def address(pod: Pod) -> str:
    """podIP:port as the API reports it: a name only, nothing connects to it."""
    ip = (pod.get("status") or {}).get("podIP")
    return f"{ip}:{CONTAINER_PORT}" if ip else ""


def has_readiness_gates(pod: Pod) -> bool:
    return bool((pod.get("spec") or {}).get("readinessGates"))


def info(pod: Pod) -> PodInfo:
    """The contract's view. ``ready`` is the Ready condition of a pod that is not terminating:
    the condition of a deleted pod stays True until its kubelet gets round to the status, but
    the endpoints controllers, and so every load balancer, take the pod out at once; what the
    condition itself says is kept in ``conditions``."""
    return PodInfo(name=name(pod), node=node(pod), address=address(pod), phase=phase(pod),
                   ready=ready(pod) and not terminating(pod), terminating=terminating(pod),
                   exited=exited(pod),
                   restarts=restarts(pod), conditions=conditions(pod))


def container_state(status: Mapping[str, Any]) -> str:
    """One container's state in words: "running", "waiting: ImagePullBackOff (...)",
    "terminated: Error, exit code 1"."""
    state = status.get("state") or {}
    if state.get("waiting") is not None:
        waiting = state["waiting"]
        message = f" ({waiting['message']})" if waiting.get("message") else ""
        return f"waiting: {waiting.get('reason') or 'unknown'}{message}"
    if state.get("terminated") is not None:
        return f"terminated: {describe_termination(state['terminated'])}"
    if state.get("running") is not None:
        return "running"
    return "unknown"


def describe_termination(terminated: Mapping[str, Any]) -> str:
    reason = terminated.get("reason") or "exited"
    signal = f", signal {terminated['signal']}" if terminated.get("signal") else ""
    finished = f", finished {terminated['finishedAt']}" if terminated.get("finishedAt") else ""
    return f"{reason}, exit code {terminated.get('exitCode')}{signal}{finished}"


def describe(pod: Pod) -> str:
    """One line for a diagnosis: where it runs, phase, conditions, containers, deletion."""
    meta = pod.get("metadata") or {}
    parts = [f"{name(pod)} on {node(pod) or '(not scheduled)'}: {phase(pod)}"]
    if terminating(pod):
        parts.append(f"terminating since {meta.get('deletionTimestamp')}"
                     f" (grace {meta.get('deletionGracePeriodSeconds')}s)")
    conds = (pod.get("status") or {}).get("conditions") or []
    if conds:
        parts.append(", ".join(
            f"{c.get('type')}={c.get('status')}"
            f"{' (' + str(c.get('reason')) + ')' if c.get('reason') else ''}" for c in conds))
    for status in container_statuses(pod):
        parts.append(f"container {status.get('name')} {container_state(status)}, "
                     f"restarts {status.get('restartCount', 0)}")
    reason = (pod.get("status") or {}).get("reason")
    message = (pod.get("status") or {}).get("message")
    if reason or message:
        parts.append(f"{reason or ''} {message or ''}".strip())
    return "; ".join(parts)
