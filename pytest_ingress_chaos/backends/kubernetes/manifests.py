"""The objects the kubernetes backend creates, as pure functions of its settings.

Every function here returns plain dicts, the form the official client's ``create_from_dict``
and its typed APIs (``create_namespaced_deployment(namespace, body)`` ...) accept, and builds
them from a frozen :class:`ManifestSettings` and nothing else: no client, no clock, no
randomness. So the same settings always give the same objects, and the test suite checks them
against the Kubernetes API schemas of every supported version without a cluster
(tests/kubernetes/test_manifests.py).

Names and labels follow docs/kubernetes-backend.md; the per-implementation parts (Service type,
ingress class, annotations) come from ``profiles.py``. :class:`ManifestSettings` checks its
values when built, so a bad name or label is a :class:`SettingsError` naming the setting,
raised before anything is sent to a cluster, instead of a 422 from the API server halfway
through a provision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ...base import kubenames
from ...base.errors import SettingsError
from ...base.specs import AlbSpec, ServiceSpec
from ...base.units import DurationStyle, format_duration
from . import profiles

PLAIN = DurationStyle.PLAIN  # seconds as `sleep` and our annotations read them
APP_NAME = "kubia"
CONTAINER_NAME = "app"
CONTAINER_PORT = 8080
PORT_NAME = "http"
SERVICE_PORT = 80

NAME_LABEL = "app.kubernetes.io/name"
SERVICE_LABEL = "ingress-chaos.dev/service"
HOSTNAME_LABEL = "kubernetes.io/hostname"  # the topology key that spreads pods over nodes
ON_SIGTERM_ANNOTATION = "ingress-chaos.dev/on-sigterm"
KEEPALIVE_ANNOTATION = "ingress-chaos.dev/keepalive-timeout"
# The sample app's environment (backends/sim/sampleapp.py), filled from the two annotations.
ON_SIGTERM_ENV = "INGRESS_CHAOS_ON_SIGTERM"
KEEPALIVE_ENV = "INGRESS_CHAOS_KEEPALIVE_TIMEOUT"



def _dns_label(what: str, value: object, *, must_start_with_letter: bool = False) -> str:
    if not kubenames.is_dns_label(value, must_start_with_letter=must_start_with_letter):
        first = "a lower-case letter" if must_start_with_letter else "a lower-case letter or digit"
        raise SettingsError(f"{what}={value!r}: expected a DNS label: at most 63 characters, "
                            f"lower-case letters, digits and '-', starting with {first} and "
                            "ending with a letter or digit")
    return value


def _dns_subdomain(what: str, value: object) -> str:
    if not kubenames.is_dns_subdomain(value):
        raise SettingsError(f"{what}={value!r}: expected {kubenames.DNS_NAME_FORM}")
    return value


def _qualified_name(what: str, key: object) -> str:
    """A label or annotation key: ``[prefix/]name``, prefix a DNS subdomain."""
    if not kubenames.is_qualified_name(key):
        raise SettingsError(f"{what} key {key!r}: expected {kubenames.QUALIFIED_NAME_FORM}")
    return key


def _labels(what: str, labels: Mapping[str, str]) -> Mapping[str, str]:
    checked = {}
    for key, value in labels.items():
        _qualified_name(what, key)
        if not kubenames.is_label_value(value):
            raise SettingsError(f"{what} {key}={value!r}: expected {kubenames.LABEL_VALUE_FORM}")
        checked[key] = value
    return MappingProxyType(checked)


def _annotations(what: str, annotations: Mapping[str, str]) -> Mapping[str, str]:
    checked = {}
    for key, value in annotations.items():
        _qualified_name(what, key)
        if not isinstance(value, str):
            raise SettingsError(f"{what} {key}={value!r}: annotation values are strings; "
                                f"write {str(value)!r}")
        checked[key] = value
    return MappingProxyType(checked)


@dataclass(frozen=True)
class ManifestSettings:
    """Everything one provisioned service's objects are built from.

    ``namespace``: the session's namespace (``ingress-chaos-<run>-<worker>``); ``name``: the
    service's name (``kubia-<n>``), shared by its Deployment, Service and Ingress; ``run_id``:
    the run's id (the AWS IngressGroup is named after it); ``mode``: ``ip`` or ``instance``;
    ``profile``: a name from :data:`profiles.PROFILES`; ``ingress_class``: ``None`` for the
    profile's own; ``host``: the Ingress rule's host, ``None`` for any; ``image``: the sample
    app; ``labels``: the labels every object carries (managed-by, run, created);
    ``generic_annotations``: the generic profile's Ingress annotations, per mode.

    Every value is checked when the settings are built (:class:`SettingsError`); the mappings
    are copied into read-only ones, so the settings stay what was checked.
    """

    namespace: str
    name: str
    run_id: str
    mode: str
    profile: str
    ingress_class: str | None
    host: str | None
    image: str
    service: ServiceSpec
    alb: AlbSpec
    labels: Mapping[str, str]
    generic_annotations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _dns_label("namespace", self.namespace)
        # The Service's name is the strictest of the three objects' (RFC 1035: a letter first).
        _dns_label("name", self.name, must_start_with_letter=True)
        _dns_label("run_id", self.run_id)
        profiles.check_mode(self.mode)
        prof = profiles.profile(self.profile)
        if self.ingress_class is not None:
            _dns_subdomain("ingress_class", self.ingress_class)
        profiles.ingress_class(prof, self.ingress_class)  # the generic profile needs one
        if self.host is not None:
            # A wildcard host ("*.example.com") is allowed by networking.k8s.io/v1; an IP is not.
            bare = self.host[2:] if self.host.startswith("*.") else self.host
            _dns_subdomain("host", bare)
            if bare.replace(".", "").isdigit():
                raise SettingsError(f"host={self.host!r}: an Ingress host is a DNS name, not an "
                                    "IP address")
        if not isinstance(self.image, str) or not self.image or any(
                char.isspace() for char in self.image):
            raise SettingsError(f"image={self.image!r}: expected an image reference such as "
                                "'luksa/kubia:latest'")
        if not isinstance(self.service, ServiceSpec):
            raise SettingsError(f"service={self.service!r}: expected a ServiceSpec")
        if not isinstance(self.alb, AlbSpec):
            raise SettingsError(f"alb={self.alb!r}: expected an AlbSpec")
        group = profiles.group_name(self.run_id, profiles.whole_seconds(self.alb.idle_timeout))
        if len(group) > 63:
            raise SettingsError(f"run_id={self.run_id!r}: too long for the IngressGroup name "
                                f"{group!r} (at most 63 characters)")
        object.__setattr__(self, "labels", _labels("labels", self.labels))
        generic = MappingProxyType({
            mode: _annotations(f"generic_annotations[{mode!r}]", annotations)
            for mode, annotations in self.generic_annotations.items()
        })
        object.__setattr__(self, "generic_annotations", generic)
        # Build the annotations once, so that annotations for an unknown mode or for a
        # profile that takes none are refused here.
        profiles.ingress_annotations(prof, self.mode, run_id=self.run_id, alb=self.alb,
                                     namespace=self.namespace, service=self.name,
                                     generic_annotations=generic)

    @property
    def route_headers(self) -> dict[str, str]:
        """What every request to this service through the ingress carries (see
        :func:`profiles.route_headers`)."""
        return profiles.route_headers(profiles.profile(self.profile), self.namespace, self.name)

    @property
    def selector(self) -> dict[str, str]:
        """The labels that pick this service's pods: the app and the service's own name, so two
        services of one session never share a pod. Stable across a rollout restart (a
        Deployment's selector cannot change)."""
        return {NAME_LABEL: APP_NAME, SERVICE_LABEL: self.name}

    @property
    def object_labels(self) -> dict[str, str]:
        """The labels on every object of this service: the session's, then the selector's (which
        win, so the selector always matches the pods)."""
        return {**self.labels, **self.selector}


def _metadata(s: ManifestSettings, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": s.name, "namespace": s.namespace,
                                "labels": s.object_labels}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def namespace_manifest(
    name: str, labels: Mapping[str, str], extra_labels: Mapping[str, str],
) -> dict[str, Any]:
    """The session's namespace, with the session's labels (so the sweeper can find it by run
    and age) and ``extra_labels`` (:func:`profiles.namespace_labels`, such as the AWS
    controller's readiness gate switch)."""
    _dns_label("namespace", name)
    all_labels = _labels("namespace labels", {**labels, **extra_labels})
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(all_labels)},
    }


def anchor_manifest(namespace: str, run_id: str, labels: Mapping[str, str], profile: str,
                    ingress_class: str | None) -> dict[str, Any] | None:
    """The namespace's anchor in the run's IngressGroup (:func:`profiles.anchor_annotations`),
    for the profiles that share one load balancer (aws-alb); None for the others. Its rule's
    backend is the controller's action, not a Service (``use-annotation``)."""
    prof = profiles.profile(profile)
    if not prof.aws_lbc:
        return None
    _dns_label("namespace", namespace)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": profiles.ANCHOR, "namespace": namespace,
                     "labels": dict(_labels("labels", labels)),
                     "annotations": profiles.anchor_annotations(run_id, namespace)},
        "spec": {
            "ingressClassName": profiles.ingress_class(prof, ingress_class),
            "rules": [{"http": {"paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": profiles.ANCHOR,
                                        "port": {"name": "use-annotation"}}},
            }]}}],
        },
    }


def deployment_manifest(s: ManifestSettings) -> dict[str, Any]:
    """The sample app's Deployment.

    - Readiness probe ``GET /`` on the ``http`` port every second, so a pod is Ready about as
      soon as it answers, plus the test's ``readiness_delay`` (rounded up: the API takes whole
      seconds).
    - preStop ``sleep`` only when the test asked for one: the hook delays SIGTERM, which is
      exactly what a test without one must not get.
    - ``terminationGracePeriodSeconds``: the test's grace period, rounded up so a pod never
      gets less time than asked for.
    - How the app answers SIGTERM and its keep-alive timeout cannot be set on a public image;
      they are recorded as pod annotations, and handed to the container as environment
      variables through the downward API (``INGRESS_CHAOS_ON_SIGTERM``,
      ``INGRESS_CHAOS_KEEPALIVE_TIMEOUT``): the local cluster's sample-app image reads them,
      any other image ignores them.
    - ``imagePullPolicy: IfNotPresent``: on a cluster without a registry (the local cluster
      imports its images before any pod asks) an image that is present is used and none is
      ever pulled; on EKS the image is pulled once per node. Never ``Always`` (the default
      for a ``:latest`` tag), which needs a registry on every start.
    - No ``readinessGates``: the AWS controller's webhook injects its own when the namespace is
      labelled for it (``profiles.namespace_labels``); one written here would never turn True
      on any other ingress.
    - A topology spread constraint, one pod per node as far as the nodes allow, so that a
      drain takes one replica and not all of them. The scheduler's default spreading (soft,
      ``maxSkew`` 3 per node) is weaker than its other scores: on the local cluster, with an
      earlier test's pods still terminating, 6 provisions in 10 put two of three pods on one
      node without this constraint, none with it. ``ScheduleAnyway``: a preference, never a
      reason to leave a pod Pending; with ``DoNotSchedule`` a cordoned node (a domain with no
      pods) would block every replacement after a drain.
    """
    spec = s.service
    pod_annotations = {ON_SIGTERM_ANNOTATION: spec.on_sigterm}
    if spec.keepalive_timeout is not None:
        pod_annotations[KEEPALIVE_ANNOTATION] = format_duration(spec.keepalive_timeout, PLAIN)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": s.image,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": env, "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{annotation}']"}}}
            for env, annotation in ((ON_SIGTERM_ENV, ON_SIGTERM_ANNOTATION),
                                    (KEEPALIVE_ENV, KEEPALIVE_ANNOTATION))
        ],
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": PORT_NAME},
            "initialDelaySeconds": profiles.whole_seconds(spec.readiness_delay),
            "periodSeconds": 1,
        },
    }
    if spec.prestop_sleep > 0:
        container["lifecycle"] = {
            "preStop": {"exec": {"command": ["sleep", format_duration(spec.prestop_sleep, PLAIN)]}},
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(s),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": s.selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": s.object_labels, "annotations": pod_annotations},
                "spec": {
                    "terminationGracePeriodSeconds": profiles.whole_seconds(spec.grace_period),
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": HOSTNAME_LABEL,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": s.selector},
                    }],
                    "containers": [container],
                },
            },
        },
    }


def service_manifest(s: ManifestSettings) -> dict[str, Any]:
    """The Service in front of the pods: port 80 to the pods' ``http`` port, of the type the
    profile needs for the mode (NodePort for instance targets).

    ``externalTrafficPolicy`` only on NodePort (and LoadBalancer) Services: the API server
    rejects it on a ClusterIP Service, and in ip mode the load balancer bypasses kube-proxy
    anyway.
    """
    prof = profiles.profile(s.profile)
    kind = profiles.service_type(prof, s.mode)
    spec: dict[str, Any] = {
        "type": kind,
        "selector": s.selector,
        "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME,
                   "protocol": "TCP"}],
    }
    if kind in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = s.service.external_traffic_policy
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(s, profiles.service_annotations(prof, s.mode)),
        "spec": spec,
    }


def ingress_manifest(s: ManifestSettings) -> dict[str, Any]:
    """The Ingress: one rule (for ``host`` when given), ``/`` and everything under it to the
    Service's port 80, with the profile's ingress class and annotations."""
    prof = profiles.profile(s.profile)
    annotations = profiles.ingress_annotations(prof, s.mode, run_id=s.run_id, alb=s.alb,
                                               namespace=s.namespace, service=s.name,
                                               generic_annotations=s.generic_annotations)
    rule: dict[str, Any] = {
        "http": {
            "paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": s.name, "port": {"number": SERVICE_PORT}}},
            }],
        },
    }
    if s.host is not None:
        rule = {"host": s.host, **rule}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(s, annotations),
        "spec": {
            "ingressClassName": profiles.ingress_class(prof, s.ingress_class),
            "rules": [rule],
        },
    }


def service_manifests(s: ManifestSettings) -> list[dict[str, Any]]:
    """One provisioned service's objects in apply order: the Deployment, the Service that
    selects its pods, the Ingress that routes to the Service, so that each object already
    finds what it refers to when the cluster's controllers first see it."""
    return [deployment_manifest(s), service_manifest(s), ingress_manifest(s)]
