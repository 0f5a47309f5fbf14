"""Frozen, self-validating specs: what one test's markers (and the session's defaults) ask for.

Each spec is a keyword-only dataclass whose fields carry their parser in ``metadata["parse"]``.
``__post_init__`` runs every parser, so a spec is valid however it was built: from a marker
(:func:`markers.spec_from_marker` names the marker and the test in the message), from the
imperative ``ingress_chaos`` methods (which name the method), or from code. A bad value raises
:class:`FieldError`, which says which field and what is accepted; callers add where it came from.
"""

from __future__ import annotations

import dataclasses
import math
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import units
from .clock import TestClock
from .errors import SettingsError
from .outcomes import LABEL_CODES, RUNNER_SIDE_LABELS

MODES = ("ip", "instance")
DEFAULT_MODE = "instance"  # the AWS Load Balancer Controller's default target type
SIGTERM_BEHAVIOURS = ("exit", "drain", "ignore")
TRAFFIC_POLICIES = ("Cluster", "Local")
ALB_ALGORITHMS = ("round_robin", "least_outstanding_requests")
CONTAINER_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP")

# --- upper bounds: what a local run can hold; each says why -----------------------------------
# Requests per second. One load process holds up to about 18,000 (benchmarks/README.md) and
# processes=N adds more; beyond 100,000 no machine this runs on keeps the schedule, and the
# verdict would only come out void.
MAX_RATE = 100_000.0
# Requests in one window (rate x duration, the duration scaled by the time scale). Every request
# is a record of 36 bytes kept in memory until the verdict, and summarising briefly takes about
# as much again (benchmarks/README.md: 3.6 million requests peak at 308 MB), so ten million is
# under a gigabyte.
MAX_REQUESTS = 10_000_000
# A request's timeout: the window waits this long for its last requests after it ends. No user
# waits an hour for an answer, and a window that waits longer looks like a hang.
MAX_TIMEOUT = 3600.0
# Connections of one load window: each is a file descriptor and, to one address, a local port,
# and there are 65,535 ports.
MAX_CONNECTIONS = 65_535
# Load processes. A fixed number rather than one derived from os.cpu_count(), so that a test
# file valid on a laptop is valid on CI; more processes than cores only compete for them.
MAX_PROCESSES = 64
# Pods of the sample Deployment (also what a chaos action can count). Each pod is a process in
# the simulator (about 22 MB resident) and a rollout adds a surge on top: 100 is over 2 GB.
MAX_REPLICAS = 100


class FieldError(SettingsError):
    """A spec field has a bad value: ``field`` names it, the message says what is accepted."""

    def __init__(self, field_name: str, value: object, message: str) -> None:
        super().__init__(f"{field_name}={units.shown(value)}: {message}")
        self.field = field_name
        self.value = value
        self.reason = message


def outcome_names(value: object) -> tuple[str, ...]:
    """``ignore=`` of ingress_slo: outcome labels such as "502", "timeout", "reset".

    The runner's own failures ("not sent", "runner error", "dns failure") are refused: they are
    never counted against the ingress, so ignoring them could never change a verdict.
    """
    accepted = [name for name in LABEL_CODES if name not in RUNNER_SIDE_LABELS]
    expected = (f"expected an HTTP status code from '100' to '599' like '502' or one of "
                f"{', '.join(map(repr, accepted))}, or a list of them")
    items = (value,) if isinstance(value, (str, int)) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{expected}, got {units.shown(value)}")
    names = []
    for item in items:
        name = str(item) if isinstance(item, (str, int)) and not isinstance(item, bool) else ""
        # A status code is three ASCII digits, 100 to 599 (RFC 9110 §15).
        if not re.fullmatch(r"[1-5][0-9][0-9]", name, re.ASCII) and name not in accepted:
            raise ValueError(f"{expected}, got {units.shown(item)}")
        names.append(name)
    return tuple(names)


def ca_bundle(value: object) -> str:
    """``ca_bundle=`` of ingress_load: a PEM file of CA certificates, loaded now so that a
    wrong path or a file without a certificate is an error at setup, not a TLS failure."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected the path of a PEM file of CA certificates, got "
                         f"{units.shown(value)}")
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError) as exc:  # ssl.SSLError: no certificate in it
        raise ValueError(f"expected the path of a PEM file of CA certificates: cannot load "
                         f"it ({exc.strerror or exc})") from None
    return value


def parsed(parse: units.Parser, default: Any, *, shown: str | None = None) -> Any:
    """A spec field: ``parse`` validates and normalises it; ``shown`` is how its default reads
    in ``pytest --markers`` (the value itself when None)."""
    return field(default=default, metadata={"parse": parse, "shown": shown})


def field_parser(spec_type: type[Spec], name: str) -> units.Parser:
    """The parser of one field: an option that sets a field's default shares its range."""
    parse: units.Parser = next(spec_field.metadata["parse"]
                               for spec_field in dataclasses.fields(spec_type)
                               if spec_field.name == name)
    return parse


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

    rate: float = parsed(units.Number(0.0, MAX_RATE), 60.0, shown="60")
    duration: float = parsed(units.positive_duration, 20.0, shown="'20s'")
    connections: int = parsed(units.Count(1, MAX_CONNECTIONS), 100)
    max_connections: int | None = parsed(units.optional(units.Count(1, MAX_CONNECTIONS)), None)
    timeout: float = parsed(units.Duration(0.0, MAX_TIMEOUT, above_minimum=True), 2.0,
                            shown="'2s'")
    keepalive: bool = parsed(units.boolean, True)
    path: str = parsed(units.url_path, "/")
    url: str | None = parsed(units.optional(units.http_url), None)
    processes: int = parsed(units.Count(1, MAX_PROCESSES), 1)
    # Name resolution, before and apart from the connect timeout: a slow resolver is the
    # runner's "dns failure", never an ingress timeout. 5 s is glibc's resolver timeout.
    dns_timeout: float = parsed(units.Duration(0.0, MAX_TIMEOUT, above_minimum=True), 5.0,
                                shown="'5s'")
    # https:// only: trust these CAs (a PEM file) instead of the system's, as curl --cacert.
    ca_bundle: str | None = parsed(units.optional(ca_bundle), None)

    def check(self) -> None:
        if self.max_connections is not None and self.max_connections < self.connections:
            raise FieldError("max_connections", self.max_connections,
                             f"must be at least connections={self.connections}")
        if self.url is not None and self.path != "/":
            raise FieldError("path", self.path, f"goes with a provisioned service; with "
                             f"url={self.url!r} put the path into the URL")

    def requests(self, time_scale: float) -> int:
        """How many requests the window sends: the rate is per wall second, the duration in
        test seconds (as ``load.schedule.Schedule`` counts them)."""
        return max(0, math.ceil(self.rate * TestClock(time_scale).wall(self.duration) - 1e-9))

    def check_window(self, time_scale: float) -> None:
        """At least one request, at most :data:`MAX_REQUESTS`, at the session's time scale."""
        requests = self.requests(time_scale)
        if 1 <= requests <= MAX_REQUESTS:
            return
        window = (f"with duration={units.format_seconds(self.duration)} at time scale "
                  f"{time_scale:g}, the window has {requests:,} requests")
        raise FieldError("rate", self.rate, f"{window}; accepted: 1 to {MAX_REQUESTS:,} requests "
                         "per window (rate x duration): a window without one could never fail, "
                         "and each one is kept in memory until the verdict")


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
    recovered_after: int = parsed(units.Count(1, MAX_REQUESTS), 10)


@dataclass(frozen=True, kw_only=True)
class ServiceSpec(Spec):
    """``@pytest.mark.sample_service``: how the sample app is deployed (any backend)."""

    replicas: int = parsed(units.Count(1, MAX_REPLICAS), 3)
    prestop_sleep: float = parsed(units.duration, 0.0, shown="'0s'")
    grace_period: float = parsed(units.duration, 30.0, shown="'30s'")
    on_sigterm: str = parsed(units.choice(*SIGTERM_BEHAVIOURS), "exit")
    readiness_delay: float = parsed(units.duration, 0.0, shown="'0s'")
    readiness_gate: bool = parsed(units.boolean, False)
    external_traffic_policy: str = parsed(units.choice(*TRAFFIC_POLICIES), "Cluster")
    # How long the app keeps an idle keep-alive connection open; None: until the client
    # closes it. Node.js defaults to 5 s, shorter than the ALB's 60 s idle timeout.
    keepalive_timeout: float | None = parsed(units.optional(units.positive_duration), None)


AWS = ", as AWS allows"


@dataclass(frozen=True, kw_only=True)
class AlbSpec(Spec):
    """``@pytest.mark.alb``: the load balancer's own settings, with the AWS Load Balancer
    Controller's defaults; each maps to one of its annotations (docs/alb-facts.md)."""

    # AWS's ranges (docs/alb-facts.md §3 "Valid ranges"); AWS takes whole seconds, and the
    # kubernetes backend rounds a fraction up (profiles.whole_seconds).
    deregistration_delay: float = parsed(units.Duration(0.0, 3600.0, note=AWS), 300.0,
                                         shown="'300s'")
    healthcheck_interval: float = parsed(units.Duration(5.0, 300.0, note=AWS), 15.0,
                                         shown="'15s'")
    healthcheck_timeout: float = parsed(units.Duration(2.0, 120.0, note=AWS), 5.0, shown="'5s'")
    healthy_threshold: int = parsed(units.Count(2, 10, note=AWS), 2)
    unhealthy_threshold: int = parsed(units.Count(2, 10, note=AWS), 2)
    idle_timeout: float = parsed(units.Duration(1.0, 4000.0, note=AWS), 60.0, shown="'60s'")
    algorithm: str = parsed(units.choice(*ALB_ALGORITHMS), "round_robin")

    def check(self) -> None:
        # AWS refuses a target group whose health-check timeout is not below its interval
        # ("Health check interval must be greater than the timeout"), in the whole seconds it
        # is given.
        timeout = units.whole_seconds(self.healthcheck_timeout)
        interval = units.whole_seconds(self.healthcheck_interval)
        if timeout >= interval:
            raise FieldError("healthcheck_timeout", self.healthcheck_timeout,
                             f"must be below healthcheck_interval="
                             f"{units.format_seconds(self.healthcheck_interval)}, in whole seconds "
                             f"({timeout}s is not below {interval}s), as AWS requires")


# --- chaos --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KillPods(Spec):
    """``@pytest.mark.kill_pods``: delete ``count`` pods ``at`` seconds after load start; with
    ``signal``, signal their container process instead (the pod stays and restarts it)."""

    kind: ClassVar[str] = "kill_pods"
    at: float = parsed(units.duration, 0.0, shown="'0s'")
    count: int = parsed(units.Count(1, MAX_REPLICAS), 1)
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
    # Beyond the replicas (or 100%) a bound changes nothing: the new ReplicaSet never grows
    # past the replicas, and no more pods than exist can be unavailable.
    max_surge: int | str = parsed(units.CountOrPercent(MAX_REPLICAS), "25%")
    max_unavailable: int | str = parsed(units.CountOrPercent(MAX_REPLICAS), "25%")

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
    replicas: int = parsed(units.Count(0, MAX_REPLICAS), 1)


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
    # Only nodes that run pods are drained: never more of them than pods.
    count: int = parsed(units.Count(1, MAX_REPLICAS), 1)
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
