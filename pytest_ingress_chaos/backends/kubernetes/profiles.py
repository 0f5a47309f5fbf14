"""Profiles: how a target type ("ip" or "instance") is spelled for one ingress implementation.

The plugin speaks of target types because that is where the field report's question lives
(docs/alb-facts.md §1, §2): does the load balancer send to pod IPs, or through kube-proxy on the
nodes? Each ingress implementation spells that choice differently, so a profile is plain data
(:data:`PROFILES`) plus a few pure functions that turn a mode and the test's specs into a Service
type, an ingress class, annotations and namespace labels. Nothing here talks to a cluster, so
the mapping is checked without one (tests/kubernetes/test_manifests.py), and the manifests
(``manifests.py``) stay pure functions of the settings.

The profiles (docs/kubernetes-backend.md, "Profiles"):

- ``aws-alb`` (default): the AWS Load Balancer Controller. ``target-type`` selects the mode;
  instance targets are the nodes' NodePorts, so instance mode needs a NodePort Service. One ALB
  per run through an IngressGroup; the ``alb`` marker becomes target group and load balancer
  annotations; ``readiness_gate`` becomes the namespace label that turns on the controller's
  pod readiness gates (ip mode only, as in AWS).
- ``gke``: GKE Ingress (class ``gce``): ip = container-native load balancing (a NEG of pod IPs),
  instance = no NEG, instance groups on a NodePort.
- ``nginx``: ingress-nginx: ip = straight to the endpoints (its default), instance = through the
  Service's ClusterIP (``service-upstream``), that is through kube-proxy.
- ``generic``: any other implementation: the user names the ingress class and gives the Ingress
  annotations for each mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ...base.errors import SettingsError
from ...base.specs import MODES, AlbSpec, ServiceSpec

# Kubernetes and AWS take whole seconds; the rule lives with the other value forms, since the
# alb marker's own checks count in AWS's whole seconds too.
from ...base.units import whole_seconds as whole_seconds

DEFAULT_PROFILE = "aws-alb"

ALB_PREFIX = "alb.ingress.kubernetes.io/"
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
GKE_NEG = "cloud.google.com/neg"
NGINX_SERVICE_UPSTREAM = "nginx.ingress.kubernetes.io/service-upstream"
# The tests of a run share one ALB (an IngressGroup), each with a rule for "/": this header,
# sent with every request to a test's service, is the condition that keeps the rules apart.
ROUTE_HEADER = "X-Ingress-Chaos-Route"
# The Ingress that holds a namespace's place in the run's IngressGroup between tests.
ANCHOR = "ingress-chaos-anchor"


def _frozen(**per_mode: Mapping[str, str]) -> Mapping[str, Mapping[str, str]]:
    """A read-only ``{mode: {key: value}}`` table, so no caller can edit a profile in place."""
    return MappingProxyType({mode: MappingProxyType(dict(items))
                             for mode, items in per_mode.items()})


@dataclass(frozen=True)
class Profile:
    """One ingress implementation: what each mode means for the objects we create.

    ``ingress_class`` is the class used when none is given (``None``: one must be given).
    ``service_types`` maps each mode to the Service type; instance targets go through the
    nodes, and a NodePort Service is what every implementation needs for that.
    ``service_annotations`` and ``ingress_annotations`` are the fixed annotations per mode.
    ``aws_lbc`` marks the AWS Load Balancer Controller, which also takes the ``alb`` marker as
    annotations and the readiness gate as a namespace label.
    """

    name: str
    ingress_class: str | None
    service_types: Mapping[str, str]
    service_annotations: Mapping[str, Mapping[str, str]]
    ingress_annotations: Mapping[str, Mapping[str, str]]
    aws_lbc: bool = False


_SERVICE_TYPES: Mapping[str, str] = MappingProxyType({"ip": "ClusterIP", "instance": "NodePort"})
_NONE = _frozen(ip={}, instance={})

PROFILES: Mapping[str, Profile] = MappingProxyType({
    "aws-alb": Profile(
        name="aws-alb",
        ingress_class="alb",
        service_types=_SERVICE_TYPES,
        service_annotations=_NONE,
        # The target group and load balancer annotations depend on the run and the alb marker:
        # see alb_ingress_annotations().
        ingress_annotations=_NONE,
        aws_lbc=True,
    ),
    "gke": Profile(
        name="gke",
        ingress_class="gce",
        service_types=_SERVICE_TYPES,
        # Explicit both ways: NEGs are the default on VPC-native clusters, so instance mode
        # must switch them off, or GKE would still send to pod IPs (docs/alb-facts.md §8).
        service_annotations=_frozen(ip={GKE_NEG: '{"ingress": true}'},
                                    instance={GKE_NEG: '{"ingress": false}'}),
        ingress_annotations=_NONE,
    ),
    "nginx": Profile(
        name="nginx",
        ingress_class="nginx",
        service_types=_SERVICE_TYPES,
        service_annotations=_NONE,
        # ip: ingress-nginx sends to the endpoint IPs by default; instance: through the
        # ClusterIP, so kube-proxy picks the pod (docs/alb-facts.md §8).
        ingress_annotations=_frozen(ip={}, instance={NGINX_SERVICE_UPSTREAM: "true"}),
    ),
    "generic": Profile(
        name="generic",
        ingress_class=None,
        service_types=_SERVICE_TYPES,
        service_annotations=_NONE,
        ingress_annotations=_NONE,  # the user's, per mode: see ingress_annotations()
    ),
})


def profile(name: str) -> Profile:
    """The profile called ``name``; a :class:`SettingsError` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise SettingsError(f"unknown ingress profile {name!r}: expected one of "
                            f"{', '.join(map(repr, PROFILES))}") from None


def check_mode(mode: str) -> str:
    """``mode`` itself when it is a target type; a :class:`SettingsError` otherwise."""
    if mode not in MODES:
        raise SettingsError(f"unknown target type (mode) {mode!r}: expected one of "
                            f"{', '.join(map(repr, MODES))}")
    return mode


def service_type(prof: Profile, mode: str) -> str:
    """The Service type for ``mode``: ClusterIP for ip targets, NodePort for instance targets."""
    return prof.service_types[check_mode(mode)]


def ingress_class(prof: Profile, given: str | None) -> str:
    """The ingress class: the one given, else the profile's; the generic profile has none, so
    it must be given (``--ingress-class``)."""
    if given:
        return given
    if prof.ingress_class is None:
        raise SettingsError(f"the {prof.name} ingress profile needs an ingress class: give it "
                            "with --ingress-class (ini ingress_class, env "
                            "PYTEST_INGRESS_CLASS)")
    return prof.ingress_class


def route_headers(prof: Profile, namespace: str, name: str) -> dict[str, str]:
    """The headers a request needs to reach the service ``name``'s rule. With the AWS
    controller every test of a run has a rule for "/" on one shared ALB, told apart by
    :data:`ROUTE_HEADER`; the other profiles give each Ingress its own load balancer or
    address, and need none."""
    return {ROUTE_HEADER: f"{namespace}/{name}"} if prof.aws_lbc else {}


def alb_ingress_annotations(mode: str, run_id: str, alb: AlbSpec, *, service: str,
                            route: Mapping[str, str]) -> dict[str, str]:
    """The AWS Load Balancer Controller's annotations for one test's Ingress, whose rule goes
    to ``service`` for requests that carry the ``route`` headers.

    Annotation values are strings; AWS takes whole seconds, so every duration of the ``alb``
    marker is rounded up (:func:`whole_seconds`). Each annotation and its default is listed in
    docs/alb-facts.md §3 and §11.
    """
    target_group_attributes = [
        f"deregistration_delay.timeout_seconds={whole_seconds(alb.deregistration_delay)}",
        f"load_balancing.algorithm.type={alb.algorithm}",
    ]
    annotations = {
        "target-type": check_mode(mode),
        "scheme": "internet-facing",
        # IngressGroup: every test of the run shares one ALB, one rule each, instead of paying
        # for (and waiting minutes on) one ALB per test.
        "group.name": group_name(run_id, whole_seconds(alb.idle_timeout)),
        "healthcheck-path": "/",
        "healthcheck-interval-seconds": str(whole_seconds(alb.healthcheck_interval)),
        "healthcheck-timeout-seconds": str(whole_seconds(alb.healthcheck_timeout)),
        "healthy-threshold-count": str(alb.healthy_threshold),
        "unhealthy-threshold-count": str(alb.unhealthy_threshold),
        "success-codes": "200",
        "target-group-attributes": ",".join(target_group_attributes),
        "load-balancer-attributes":
            f"idle_timeout.timeout_seconds={whole_seconds(alb.idle_timeout)}",
        # Without a condition of its own, each test's rule for "/" would take the others'
        # requests on the shared ALB (the first rule by priority wins).
        f"conditions.{service}": _header_conditions(route),
    }
    return {ALB_PREFIX + key: value for key, value in annotations.items()}


# The ALB's idle timeout is a load balancer attribute, "exclusive" in an IngressGroup (every
# Ingress of the group must give the same value, or none): the default's group is the run's.
DEFAULT_IDLE_TIMEOUT = 60


def group_name(run_id: str, idle_timeout: int = DEFAULT_IDLE_TIMEOUT) -> str:
    """The run's IngressGroup: one ALB for every test of the run; tests that ask for another
    idle timeout (``alb(idle_timeout=)``, whole seconds) share one ALB per value."""
    suffix = "" if idle_timeout == DEFAULT_IDLE_TIMEOUT else f"-idle{idle_timeout}"
    return f"ingress-chaos-{run_id}{suffix}"


def _header_conditions(route: Mapping[str, str]) -> str:
    return json.dumps([{"field": "http-header",
                        "httpHeaderConfig": {"httpHeaderName": header, "values": [value]}}
                       for header, value in route.items()], separators=(",", ":"))


def anchor_annotations(run_id: str, namespace: str) -> dict[str, str]:
    """The AWS controller's annotations of a namespace's group anchor: an Ingress of the run's
    group whose one rule answers a fixed 404 to a route no request carries. The controller
    deletes a group's ALB with the group's last Ingress, and a worker's tests follow one
    another, each deleting its own: without the anchor every test would wait minutes for a new
    ALB (docs/alb-facts.md §12). It goes with the namespace."""
    never_sent = {ROUTE_HEADER: f"{namespace}/{ANCHOR}"}
    fixed_404 = {"type": "fixed-response",
                 "fixedResponseConfig": {"contentType": "text/plain", "statusCode": "404"}}
    annotations = {
        "group.name": group_name(run_id),
        "scheme": "internet-facing",
        f"actions.{ANCHOR}": json.dumps(fixed_404, separators=(",", ":")),
        f"conditions.{ANCHOR}": _header_conditions(never_sent),
    }
    return {ALB_PREFIX + key: value for key, value in annotations.items()}


def ingress_annotations(
    prof: Profile,
    mode: str,
    *,
    run_id: str,
    alb: AlbSpec,
    namespace: str,
    service: str,
    generic_annotations: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The Ingress annotations for ``mode``: the profile's fixed ones, the AWS controller's from
    the ``alb`` marker and the service's route, and, for the generic profile, the user's for
    that mode."""
    check_mode(mode)
    annotations = dict(prof.ingress_annotations[mode])
    if prof.aws_lbc:
        annotations.update(alb_ingress_annotations(
            mode, run_id, alb, service=service, route=route_headers(prof, namespace, service)))
    if generic_annotations:
        if prof.name != "generic":
            raise SettingsError(f"annotations per mode are given for the {prof.name} ingress "
                                "profile, which sets its own: they are taken by the generic "
                                "profile only")
        unknown = sorted(set(generic_annotations) - set(MODES))
        if unknown:
            raise SettingsError(f"annotations given for unknown target types {unknown}: "
                                f"expected keys among {', '.join(map(repr, MODES))}")
        annotations.update(generic_annotations.get(mode, {}))
    return annotations


def service_annotations(prof: Profile, mode: str) -> dict[str, str]:
    """The Service annotations for ``mode`` (GKE's NEG switch; none for the others)."""
    return dict(prof.service_annotations[check_mode(mode)])


def namespace_labels(prof: Profile, mode: str, service: ServiceSpec) -> dict[str, str]:
    """The labels the namespace needs for ``mode``: with the AWS controller, a readiness gate
    in ip mode is switched on per namespace (its webhook injects the gate into new pods there).
    In instance mode the targets are nodes and the controller adds no gate, as in AWS
    (docs/alb-facts.md §5), so the label is left off."""
    check_mode(mode)
    if prof.aws_lbc and service.readiness_gate and mode == "ip":
        return {READINESS_GATE_LABEL: "enabled"}
    return {}
