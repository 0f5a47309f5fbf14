"""Chaos that goes through the simulated control plane: rollouts, scaling, node drains.

Each mirrors what its Kubernetes controller does, on the cluster's primitives (create a pod,
delete a pod, cordon a node), so the termination sequence, endpoints and the ALB react exactly as
they do to a plain pod deletion.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math

from ...base.events import EventKind
from .cluster import Cluster

_POLL = 0.02  # wall seconds between looks at the cluster while a rollout or drain progresses


def _bound(value: int | str, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = replicas * float(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def rollout_bounds(replicas: int, max_surge: int | str,
                   max_unavailable: int | str) -> tuple[int, int]:
    """maxSurge / maxUnavailable as pod counts: percentages of the replicas, surge rounded up,
    unavailable down. Both 0 as numbers is refused, as the API server does; percentages that
    round to 0 and 0 get maxUnavailable 1, as the Deployment controller does."""
    surge = _bound(max_surge, replicas, round_up=True)
    unavailable = _bound(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        if isinstance(max_surge, int) and isinstance(max_unavailable, int):
            raise ValueError("max_surge and max_unavailable cannot both be 0: the rollout "
                             "could never make progress")
        unavailable = 1
    return surge, unavailable


async def rollout_restart(cluster: Cluster, surge: int, unavailable: int) -> None:
    """``kubectl rollout restart``: replace every pod with one of a new revision, never more
    than replicas + ``surge`` pods, never fewer than replicas - ``unavailable`` Ready."""
    replicas = cluster.spec.replicas
    cluster.revision += 1
    cluster.emit("cluster", EventKind.ROLLOUT_STARTED, "kubia",
                 f"rollout restart to revision {cluster.revision} (maxSurge {surge}, "
                 f"maxUnavailable {unavailable})")
    while old := [p for p in cluster.live_pods() if p.revision < cluster.revision]:
        new = [p for p in cluster.live_pods() if p.revision == cluster.revision]
        # Pods being created are all of the new revision (the ReplicaSet's too).
        while (len(old) + len(new) + cluster.starting < replicas + surge
               and len(new) + cluster.starting < replicas):
            cluster.start_pod()
        removable = len(cluster.ready_pods()) - (replicas - unavailable)
        # Old pods that are not Ready go first, as the ReplicaSet controller ranks them.
        for pod in sorted(old, key=lambda p: p.ready)[:max(0, removable)]:
            cluster.delete_pod(pod.name, None, False, reason="deleted by the rollout")
        await asyncio.sleep(_POLL)
    while len(cluster.ready_pods()) < replicas or cluster.starting:
        await asyncio.sleep(_POLL)
    cluster.emit("cluster", EventKind.ROLLOUT_DONE, "kubia",
                 f"rollout to revision {cluster.revision} complete: {replicas} pods Ready")


async def scale(cluster: Cluster, replicas: int) -> None:
    """``kubectl scale``: add pods, or delete the least useful ones (not Ready, then newest)."""
    before = cluster.spec.replicas
    cluster.spec = dataclasses.replace(cluster.spec, replicas=replicas)
    cluster.emit("cluster", EventKind.DEPLOYMENT_SCALED, "kubia",
                 f"deployment scaled from {before} to {replicas} replicas")
    live = cluster.live_pods()
    if len(live) > replicas:
        ranked = sorted(live, key=lambda p: (p.ready, -list(cluster.pods).index(p.name)))
        for pod in ranked[:len(live) - replicas]:
            cluster.delete_pod(pod.name, None, False, reason="deleted by scale-down")
    else:
        await asyncio.gather(*(cluster.start_pod()
                               for _ in range(cluster.desired_shortfall())))


async def drain_node(cluster: Cluster, node: str) -> None:
    """``kubectl drain`` then the node's termination: cordon, evict its pods (their
    replacements land elsewhere), wait until no pod is left on it, then its instance is
    terminated. Like kubectl drain, it also waits for pods already terminating there, and
    evicts a pod that was being created there when the node was cordoned (it is bound to the
    node). Nothing here waits for the load balancer: that is what the exclusion before the
    drain is for (``Cluster.label_node``, docs/alb-facts.md section 7)."""
    cluster.cordon(node)
    evicted = 0
    while True:
        for pod in [pod for pod in cluster.live_pods() if pod.node == node]:
            cluster.delete_pod(pod.name, None, False, reason=f"evicted from {node}")
            evicted += 1
        if not cluster.starting_on(node) and all(
                pod.gone for pod in cluster.pods.values() if pod.node == node):
            break
        await asyncio.sleep(_POLL)
    await cluster.terminate_node(node, f"drained ({evicted} pods evicted)")
