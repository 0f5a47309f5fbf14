"""Chaos actions and their schedule, on any backend.

:class:`Chaos` is what the ``ingress_chaos`` fixture returns and what the markers' schedule
runs. Its methods take exactly what the chaos markers take and validate it through the same
specs, with the same messages. Victims are chosen with a seeded RNG from the pods the plugin
itself created, in the order the backend lists them, so a run replays with the same
``--ingress-seed``; the marker schedule and the imperative fixture each have their own RNG, so
a test that uses both replays too, whichever thread acts first. Every action is recorded on the
test's timeline before it is carried out. An imperative action outside the started load window
is refused: before it no verdict would count it, after it no report would show it.

:func:`check_against_service` checks the markers' counts against the service before the window
(more pods to kill than there are replicas, more nodes to drain than the cluster can lose), so
such a test fails at setup instead of after a whole window. The imperative methods can only be
checked when called: they raise :class:`ChaosError` saying what the service has.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from ..base.backend import EXCLUDE_LABEL, Capability, Service
from ..base.errors import ChaosError, SettingsError
from ..base.specs import (
    ChaosSpec,
    DrainNode,
    FieldError,
    KillPods,
    RolloutRestart,
    ScaleDeployment,
    ServiceSpec,
)
from ..base.units import boolean, format_seconds, shown
from .disruption import STEP
from .timeline import Timeline

# How long (test seconds) a chaos action that waits (rollout, drain) may take before the backend
# gives up and says what it saw: grace periods, readiness gates and health checks add up.
WAIT_DEADLINE = 900.0


def check_against_service(actions: Sequence[ChaosSpec], service: ServiceSpec,
                          nodes: tuple[str, int] | None, where: str) -> None:
    """Refuse marker actions the service cannot take, naming the marker, the count and what
    the service has then. ``nodes``: the marker that fixes the cluster's node count and that
    count (the simulator's ``sim``), None when the backend's cluster is not known in advance.

    Only what can never work is refused: the replicas at an action's time are the latest
    ``scale_deployment``'s before it (or at the same offset: the order of actions at one
    offset is not the user's), and only nodes that run pods can be drained, never the last
    one (the evicted pods need somewhere to go).
    """
    drained = 0
    for action in sorted(actions, key=lambda a: a.at):
        if not isinstance(action, (KillPods, DrainNode)):
            continue
        source = f"marker {action.kind} on {where}: count={action.count}"
        before = [a for a in actions if isinstance(a, ScaleDeployment) and a.at < action.at]
        latest = max(before, key=lambda a: a.at, default=None)
        replicas = latest.replicas if latest is not None else service.replicas
        same_time = [a.replicas for a in actions
                     if isinstance(a, ScaleDeployment) and a.at == action.at]
        has = (f"scale_deployment at={format_seconds(latest.at)} leaves replicas={replicas}"
               if latest is not None else f"sample_service has replicas={replicas}")
        limit = max([replicas, *same_time])
        if action.count > limit:
            what = (f"at most {limit} pods can be killed then" if isinstance(action, KillPods)
                    else f"only nodes running pods are drained, at most {limit} then")
            raise SettingsError(f"{source} at={format_seconds(action.at)}, but {has}: {what}; "
                                "lower count or raise the replicas")
        if isinstance(action, DrainNode) and nodes is not None:
            marker, count = nodes
            drained += action.count
            if drained >= count:
                earlier = f" (with {drained - action.count} drained before)" if \
                    drained > action.count else ""
                raise SettingsError(f"{source}{earlier}, but the {marker} marker has "
                                    f"nodes={count} and at least one must stay to run the "
                                    f"evicted pods; accepted: count <= {count - 1} in all")


class Chaos:
    """Imperative chaos on one provisioned service: what ``ingress_chaos`` exposes."""

    def __init__(self, service: Service, timeline: Timeline, rng: random.Random,
                 capabilities: frozenset[Capability] = frozenset(Capability)) -> None:
        self.service = service
        self.timeline = timeline
        self.rng = rng
        self.capabilities = capabilities
        self._interrupted = threading.Event()

    def _in_window(self, method: str) -> None:
        """Refuse an imperative action outside the started load window: before it, it would
        be judged as nothing (it happened at a negative offset); after it, it would be in no
        report at all."""
        start, end = self.timeline.load_start, self.timeline.load_end
        if start is None:
            raise ChaosError(f"ingress_chaos.{method}: the load window has not started, and "
                             "chaos before it is in no verdict: call ingress_load.start() "
                             "first, then act")
        if end is not None:
            raise ChaosError(f"ingress_chaos.{method}: the load window ended at "
                             f"{self.timeline.offset(end):.2f} s, and chaos after it is in no "
                             "report: act between ingress_load.start() and ingress_load.run(), "
                             "or lengthen ingress_load(duration=)")

    def _record(self, kind: str, subject: str, message: str) -> None:
        self.timeline.record(self.timeline.clock.now(), "chaos", kind, subject, message)

    @staticmethod
    def _spec(method: str, build: type[ChaosSpec], **values: object) -> ChaosSpec:
        try:
            return build(**values)  # type: ignore[arg-type]
        except FieldError as exc:
            raise SettingsError(f"ingress_chaos.{method}: {exc}") from None

    def kill_pods(self, count: int = 1, *, grace_period: float | str | None = None,
                  force: bool = False, signal: str | None = None) -> list[str]:
        """Delete ``count`` running pods, chosen at random (seeded); returns their names.

        With ``signal`` ("SIGTERM", "SIGKILL", ...) the pods are not deleted: their container
        process gets the signal and the kubelet restarts it in the same pod.
        """
        spec = self._spec("kill_pods", KillPods, count=count, grace_period=grace_period,
                          force=force, signal=signal)
        assert isinstance(spec, KillPods)
        self._in_window("kill_pods")
        return self._kill_pods(spec)

    def _kill_pods(self, spec: KillPods) -> list[str]:
        if spec.signal is not None and Capability.CONTAINER_KILL not in self.capabilities:
            raise ChaosError("kill_pods(signal=...) kills a container only, which this backend "
                             "cannot do; delete the pod instead (no signal=)")
        running = [pod for pod in self.service.pods() if pod.running]
        if spec.count > len(running):
            raise ChaosError(f"kill_pods count={spec.count}, but only {len(running)} pods are "
                             f"running: {', '.join(pod.name for pod in running) or 'none'}")
        victims = self.rng.sample(running, spec.count)
        for pod in victims:
            if spec.signal is not None:
                self._record("kill_pods", pod.name, f"kill_pods: {spec.signal} to the container "
                             f"of pod {pod.name} on {pod.node} (the pod stays)")
                self.service.kill_container(pod.name, spec.signal)
                continue
            if spec.force:
                how = "force, grace 0s"
            elif spec.grace_period is not None:
                how = f"grace {format_seconds(spec.grace_period)}"
            else:
                how = "the pod's grace period"
            self._record("kill_pods", pod.name,
                         f"kill_pods: deleting pod {pod.name} on {pod.node} ({how})")
            self.service.delete_pod(pod.name, grace_period=spec.grace_period, force=spec.force)
        return [pod.name for pod in victims]

    @staticmethod
    def _flag(method: str, name: str, value: object) -> bool:
        try:
            return boolean(value)
        except ValueError as exc:
            raise SettingsError(f"ingress_chaos.{method}: {name}={shown(value)}: {exc}") \
                from None

    def rollout_restart(self, *, max_surge: int | str = "25%",
                        max_unavailable: int | str = "25%", wait: bool = False) -> None:
        """``kubectl rollout restart``; with ``wait``, return once every pod is replaced."""
        spec = self._spec("rollout_restart", RolloutRestart, max_surge=max_surge,
                          max_unavailable=max_unavailable)
        assert isinstance(spec, RolloutRestart)
        waits = self._flag("rollout_restart", "wait", wait)
        self._in_window("rollout_restart")
        self._rollout_restart(spec, waits)

    def _rollout_restart(self, spec: RolloutRestart, wait: bool) -> None:
        name = self.service.identity.deployment
        self._record("rollout_restart", name, f"rollout_restart of {name} (maxSurge "
                     f"{spec.max_surge}, maxUnavailable {spec.max_unavailable})")
        self.service.rollout_restart(spec.max_surge, spec.max_unavailable, wait=wait,
                                     timeout=self.timeline.clock.wall(WAIT_DEADLINE))

    def scale_deployment(self, replicas: int) -> None:
        """``kubectl scale --replicas``."""
        spec = self._spec("scale_deployment", ScaleDeployment, replicas=replicas)
        assert isinstance(spec, ScaleDeployment)
        self._in_window("scale_deployment")
        self._scale(spec)

    def _scale(self, spec: ScaleDeployment) -> None:
        name = self.service.identity.deployment
        self._record("scale_deployment", name,
                     f"scale_deployment {name} to {spec.replicas} replicas")
        self.service.scale(spec.replicas)

    def drain_node(self, count: int = 1, *, wait: bool = False,
                   exclude_from_load_balancers: bool = False,
                   deregistration_wait: float | str | None = None) -> list[str]:
        """Drain ``count`` nodes that run pods (seeded choice) and terminate them; returns
        their names. With ``wait``, return once they are gone.

        With ``exclude_from_load_balancers``, label the nodes
        ``node.kubernetes.io/exclude-from-external-load-balancers`` first and wait
        ``deregistration_wait`` (default 30s) for the load balancer controller to deregister
        them, then drain: the call takes that long, ``wait`` or not.
        """
        spec = self._spec("drain_node", DrainNode, count=count,
                          exclude_from_load_balancers=exclude_from_load_balancers,
                          deregistration_wait=deregistration_wait)
        assert isinstance(spec, DrainNode)
        waits = self._flag("drain_node", "wait", wait)
        self._in_window("drain_node")
        return self._drain_node(spec, waits)

    def _drain_node(self, spec: DrainNode, wait: bool) -> list[str]:
        pods = [pod for pod in self.service.pods() if pod.running]
        nodes = sorted({pod.node for pod in pods})
        if spec.count > len(nodes):
            raise ChaosError(f"drain_node count={spec.count}, but only {len(nodes)} nodes run "
                             f"pods: {', '.join(nodes) or 'none'}")
        victims = self.rng.sample(nodes, spec.count)
        pause = spec.wait_before_drain
        if pause is not None:
            # docs/alb-facts.md section 7: the load balancer lets the nodes go before they do.
            for node in victims:
                self._record("drain_node", node, f"drain_node: excluding {node} from load "
                             f"balancers ({EXCLUDE_LABEL}), then waiting "
                             f"{format_seconds(pause)} for its deregistration before the drain")
                self.service.exclude_from_load_balancers(node)
            if self._interrupted.wait(self.timeline.clock.wall(pause)):
                raise ChaosError(f"drain_node: the load window ended during the "
                                 f"{format_seconds(pause)} deregistration wait of "
                                 f"{', '.join(victims)}, before the drain")
            pods = [pod for pod in self.service.pods() if pod.running]
        # After the exclusion the drain is the same action's second step, not an action of
        # its own: the disruption table lists the action once, from the exclusion on.
        kind = "drain_node" if pause is None else "drain_node" + STEP + "drain"
        for node in victims:
            self._record(kind, node, f"drain_node: draining {node} (cordon, evict "
                         f"{sum(pod.node == node for pod in pods)} pods, terminate)")
            self.service.drain_node(node, wait=wait,
                                    timeout=self.timeline.clock.wall(WAIT_DEADLINE))
        return victims

    def interrupt(self) -> None:
        """End a wait in progress (the load window is over): the action fails, saying so."""
        self._interrupted.set()

    def run(self, action: ChaosSpec) -> None:
        """Carry out a marker's action (validated already, when its spec was built)."""
        if isinstance(action, KillPods):
            self._kill_pods(action)
        elif isinstance(action, RolloutRestart):
            self._rollout_restart(action, wait=False)
        elif isinstance(action, ScaleDeployment):
            self._scale(action)
        else:
            self._drain_node(action, wait=False)


class ChaosSchedule:
    """Fires marker-scheduled actions at their offsets from load start, in a thread.

    ``at`` offsets are test seconds; the timeline's clock turns them into wall seconds.
    """

    def __init__(self, chaos: Chaos, actions: Sequence[ChaosSpec]) -> None:
        self.chaos = chaos
        self.clock = chaos.timeline.clock
        self.actions = sorted(actions, key=lambda action: action.at)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, load_start: float) -> None:
        if not self.actions:
            return
        self._thread = threading.Thread(target=self._fire_all, args=(load_start,),
                                        name="ingress-chaos", daemon=True)
        self._thread.start()

    def _fire_all(self, load_start: float) -> None:
        try:
            for action in self.actions:
                delay = load_start + self.clock.wall(action.at) - self.clock.now()
                if self._stop.wait(max(0.0, delay)):
                    return
                self.chaos.run(action)
        except BaseException as exc:  # re-raised in the test by stop()
            self.error = exc

    def stop(self) -> None:
        """Cancel what has not fired yet; re-raise an action's failure."""
        self._stop.set()
        self.chaos.interrupt()
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                raise ChaosError("the chaos thread did not stop within 60 s")
        if self.error is not None:
            error, self.error = self.error, None
            raise ChaosError(f"a scheduled chaos action failed: {error}") from error
