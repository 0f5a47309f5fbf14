"""Frozen, self-validating specs: what one test's markers (and the session's defaults) ask for.

Each spec is a keyword-only dataclass whose fields carry their parser in ``metadata["parse"]``.
``__post_init__`` runs every parser, so a spec is valid however it was built: from a marker
(:func:`markers.spec_from_marker` names the marker and the test in the message), from the
imperative ``ingress_chaos`` methods (which name the method), or from code. A bad value raises
:class:`FieldError`, which says which field and what is accepted; callers add where it came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import units
from .errors import SettingsError
from .outcomes import LABEL_CODES, RUNNER_SIDE_LABELS

MODES = ("ip", "instance")
DEFAULT_MODE = "instance"  # the AWS Load Balancer Controller's default target type
SIGTERM_BEHAVIOURS = ("exit", "drain", "ignore")
TRAFFIC_POLICIES = ("Cluster", "Local")
ALB_ALGORITHMS = ("round_robin", "least_outstanding_requests")
CONTAINER_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP")


class FieldError(SettingsError):
    """A spec field has a bad value: ``field`` names it, the message says what is accepted."""

    def __init__(self, field_name: str, value: object, message: str) -> None:
        super().__init__(f"{field_name}={value!r}: {message}")
        self.field = field_name
        self.value = value
        self.reason = message


def outcome_names(value: object) -> tuple[str, ...]:
    """``ignore=`` of ingress_slo: outcome labels such as "502", "timeout", "reset".

    The runner's own failures ("not sent", "runner error", "dns failure") are refused: they are
    never counted against the ingress, so ignoring them could never change a verdict.
    """
    items = (value,) if isinstance(value, (str, int)) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"expected an outcome or a list of outcomes, got {value!r}")
    accepted = [name for name in LABEL_CODES if name not in RUNNER_SIDE_LABELS]
    names = []
    for item in items:
        name = str(item)
        if not (name.isdigit() and len(name) == 3) and name not in accepted:
            raise ValueError(f"expected HTTP status codes like '502' or one of "
                             f"{', '.join(map(repr, accepted))}, got {item!r}")
        names.append(name)
    return tuple(names)


def parsed(parse: units.Parser, default: Any, *, shown: str | None = None) -> Any:
    """A spec field: ``parse`` validates and normalises it; ``shown`` is how its default reads
    in ``pytest --markers`` (the value itself when None)."""
    return field(default=default, metadata={"parse": parse, "shown": shown})


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Base of every spec: parses and checks its fields when built."""

    def __post_init__(self) -> None:
        for spec_field in dataclasses.fields(self):
            raw = getattr(self, spec_field.name)
            try:
                value = spec_field.metadata["parse"](raw)
            except ValueError as exc:
                raise FieldError(spec_field.name, raw, str(exc)) from None
            object.__setattr__(self, spec_field.name, value)
        self.check()

    def check(self) -> None:
        """Rules across fields; raise :class:`FieldError` naming the field to change."""


@dataclass(frozen=True, kw_only=True)
class LoadSpec(Spec):
    """``@pytest.mark.ingress_load``: the constant-rate load window.

    ``connections`` is the pool opened before the window; a request due while every one is
    busy opens another, up to ``max_connections`` (default: enough for ``rate`` x ``timeout``
    requests in flight, so a stalled ingress shows as latency and timeouts, never as a load
    generator that could not keep up).
    """

    rate: float = parsed(units.positive_number, 60.0, shown="60")
    duration: float = parsed(units.positive_duration, 20.0, shown="'20s'")
    connections: int = parsed(units.count_at_least_one, 100)
    max_connections: int | None = parsed(units.optional(units.count_at_least_one), None)
    timeout: float = parsed(units.positive_duration, 2.0, shown="'2s'")
    keepalive: bool = parsed(units.boolean, True)
    path: str = parsed(units.url_path, "/")
    url: str | None = parsed(units.optional(units.http_url), None)
    processes: int = parsed(units.count_at_least_one, 1)

    def check(self) -> None:
        if self.max_connections is not None and self.max_connections < self.connections:
            raise FieldError("max_connections", self.max_connections,
                             f"must be at least connections={self.connections}")
        if self.url is not None and self.path != "/":
            raise FieldError("path", self.path, f"goes with a provisioned service; with "
                             f"url={self.url!r} put the path into the URL")


@dataclass(frozen=True, kw_only=True)
class SLOSpec(Spec):
    """``@pytest.mark.ingress_slo``: the verdict. ``None`` switches a check off."""

    max_errors: int | None = parsed(units.optional(units.count_at_least_zero), 0)
    max_error_rate: float | None = parsed(units.optional(units.fraction), None)
    p99: float | None = parsed(units.optional(units.positive_duration), None)
    ignore: tuple[str, ...] = parsed(outcome_names, ())
    # The longest disruption after a chaos action (disruption.py); combine with max_errors=None
    # to allow short disruptions.
    max_disruption: float | None = parsed(units.optional(units.duration), None)
    # Consecutive successful requests that end a disruption.
    recovered_after: int = parsed(units.count_at_least_one, 10)


@dataclass(frozen=True, kw_only=True)
class ServiceSpec(Spec):
    """``@pytest.mark.sample_service``: how the sample app is deployed (any backend)."""

    replicas: int = parsed(units.count_at_least_one, 3)
    prestop_sleep: float = parsed(units.duration, 0.0, shown="'0s'")
    grace_period: float = parsed(units.duration, 30.0, shown="'30s'")
    on_sigterm: str = parsed(units.choice(*SIGTERM_BEHAVIOURS), "exit")
    readiness_delay: float = parsed(units.duration, 0.0, shown="'0s'")
    readiness_gate: bool = parsed(units.boolean, False)
    external_traffic_policy: str = parsed(units.choice(*TRAFFIC_POLICIES), "Cluster")
    # How long the app keeps an idle keep-alive connection open; None: until the client
    # closes it. Node.js defaults to 5 s, shorter than the ALB's 60 s idle timeout.
    keepalive_timeout: float | None = parsed(units.optional(units.positive_duration), None)


@dataclass(frozen=True, kw_only=True)
class AlbSpec(Spec):
    """``@pytest.mark.alb``: the load balancer's own settings, with the AWS Load Balancer
    Controller's defaults; each maps to one of its annotations (docs/alb-facts.md)."""

    deregistration_delay: float = parsed(units.duration, 300.0, shown="'300s'")
    healthcheck_interval: float = parsed(units.positive_duration, 15.0, shown="'15s'")
    healthcheck_timeout: float = parsed(units.positive_duration, 5.0, shown="'5s'")
    healthy_threshold: int = parsed(units.count_at_least_one, 2)
    unhealthy_threshold: int = parsed(units.count_at_least_one, 2)
    idle_timeout: float = parsed(units.positive_duration, 60.0, shown="'60s'")
    algorithm: str = parsed(units.choice(*ALB_ALGORITHMS), "round_robin")


# --- chaos --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KillPods(Spec):
    """``@pytest.mark.kill_pods``: delete ``count`` pods ``at`` seconds after load start; with
    ``signal``, signal their container process instead (the pod stays and restarts it)."""

    kind: ClassVar[str] = "kill_pods"
    at: float = parsed(units.duration, 0.0, shown="'0s'")
    count: int = parsed(units.count_at_least_one, 1)
    grace_period: float | None = parsed(units.optional(units.duration), None)
    force: bool = parsed(units.boolean, False)
    signal: str | None = parsed(units.optional(units.choice(*CONTAINER_SIGNALS)), None)

    def check(self) -> None:
        if self.signal is not None and (self.force or self.grace_period is not None):
            raise FieldError("signal", self.signal,
                             "kills the container only and does not go with force= or "
                             "grace_period=, which delete the pod")


@dataclass(frozen=True, kw_only=True)
class RolloutRestart(Spec):
    """``@pytest.mark.rollout_restart``: ``kubectl rollout restart`` at ``at``."""

    kind: ClassVar[str] = "rollout_restart"
    at: float = parsed(units.duration, 0.0, shown="'0s'")
    max_surge: int | str = parsed(units.count_or_percent, "25%")
    max_unavailable: int | str = parsed(units.count_or_percent, "25%")

    def check(self) -> None:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise FieldError("max_unavailable", self.max_unavailable,
                             "max_surge and max_unavailable are both 0: the rollout could never "
                             "make progress; allow one of them")


@dataclass(frozen=True, kw_only=True)
class ScaleDeployment(Spec):
    """``@pytest.mark.scale_deployment``: scale the sample Deployment to ``replicas``."""

    kind: ClassVar[str] = "scale_deployment"
    at: float = parsed(units.duration, 0.0, shown="'0s'")
    replicas: int = parsed(units.count_at_least_zero, 1)


# How long a drain with exclude_from_load_balancers waits for the deregistration: the AWS Load
# Balancer Controller's reconcile and the ELB API's propagation, about 10 s, and a deregistered
# target still gets requests for about 15 s more (docs/alb-facts.md sections 3 and 7).
DEREGISTRATION_WAIT = 30.0


@dataclass(frozen=True, kw_only=True)
class DrainNode(Spec):
    """``@pytest.mark.drain_node``: cordon ``count`` nodes that run pods, evict their pods, and
    terminate the nodes. With ``exclude_from_load_balancers``, first label the nodes
    ``node.kubernetes.io/exclude-from-external-load-balancers`` and wait
    ``deregistration_wait`` for the load balancer to let them go."""

    kind: ClassVar[str] = "drain_node"
    at: float = parsed(units.duration, 0.0, shown="'0s'")
    count: int = parsed(units.count_at_least_one, 1)
    exclude_from_load_balancers: bool = parsed(units.boolean, False)
    deregistration_wait: float | None = parsed(
        units.optional(units.positive_duration), None,
        shown=f"None ({DEREGISTRATION_WAIT:g}s with exclude_from_load_balancers)")

    def check(self) -> None:
        if self.deregistration_wait is not None and not self.exclude_from_load_balancers:
            raise FieldError("deregistration_wait", self.deregistration_wait,
                             "goes with exclude_from_load_balancers=True: without the "
                             "exclusion no deregistration comes before the drain")

    @property
    def wait_before_drain(self) -> float | None:
        """Test seconds between the exclusion and the drain; None: no exclusion."""
        if not self.exclude_from_load_balancers:
            return None
        return DEREGISTRATION_WAIT if self.deregistration_wait is None else \
            self.deregistration_wait


ChaosSpec = KillPods | RolloutRestart | ScaleDeployment | DrainNode
CHAOS_SPECS: dict[str, type[ChaosSpec]] = {
    spec.kind: spec for spec in (KillPods, RolloutRestart, ScaleDeployment, DrainNode)
}
