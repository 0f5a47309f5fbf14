"""The kubernetes backend's manifests and RBAC, checked without a cluster.

Two kinds of checks:

- Schema: every manifest (each profile x mode x a few service/ALB variations) and every object
  of deploy/rbac.yaml is validated with kubernetes-validate in strict mode (unknown fields are
  errors) against every Kubernetes version the installed package bundles from 1.25 up. The
  list comes from the package, so a newer kubernetes-validate brings newer versions into the
  test by itself. A deliberately broken manifest shows the helper does reject.
- Content: what a user of the manifests relies on: the annotations each profile needs for
  each mode, a NodePort Service for instance targets, the probe, the preStop hook, the grace
  period, the labels the sweeper and the selectors depend on, and the settings errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from pytest_ingress_chaos.backends.kubernetes import profiles
from pytest_ingress_chaos.backends.kubernetes.manifests import (
    KEEPALIVE_ANNOTATION,
    ON_SIGTERM_ANNOTATION,
    ManifestSettings,
    anchor_manifest,
    deployment_manifest,
    ingress_manifest,
    namespace_manifest,
    service_manifest,
    service_manifests,
)
from pytest_ingress_chaos.base.errors import SettingsError
from pytest_ingress_chaos.base.specs import MODES, AlbSpec, ServiceSpec

RBAC_FILE = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
OLDEST_SUPPORTED = Version("1.25")

RUN = "0a1b2c3d"
NAMESPACE = f"ingress-chaos-{RUN}-gw0"
SESSION_LABELS = {
    "app.kubernetes.io/managed-by": "pytest-ingress-chaos",
    "ingress-chaos.dev/run": RUN,
    "ingress-chaos.dev/created": "1767225600",
}
GENERIC = {
    "ip": {"example.com/backend-mode": "pod-ip"},
    "instance": {"example.com/backend-mode": "node-port"},
}


# --- the validation helper ----------------------------------------------------------------


@cache
def schema_versions() -> tuple[str, ...]:
    """Every Kubernetes version kubernetes-validate bundles, from 1.25 up, oldest first.

    The package lists each version twice (plain and strict schemas), hence the set.
    """
    versions = {v for v in all_versions() if Version(v) >= OLDEST_SUPPORTED}
    return tuple(sorted(versions, key=Version))


@cache
def _validate_json(manifest_json: str, version: str) -> str | None:
    """One strict validation; the error text or None. Cached on the manifest's JSON, because
    many cases build the same namespace or Deployment."""
    try:
        kubernetes_validate.validate(json.loads(manifest_json), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path) or "<root>"
        return f"{path}: {exc.message}"
    return None


def validate_everywhere(manifest: Mapping[str, Any]) -> None:
    """Validate ``manifest`` strictly against every bundled version from 1.25 up; raise
    AssertionError listing each version that rejects it. A kind or apiVersion without a
    schema raises kubernetes-validate's SchemaNotFoundError: never a silent pass."""
    text = json.dumps(manifest, sort_keys=True)
    failures = [f"Kubernetes {version}: {error}" for version in schema_versions()
                if (error := _validate_json(text, version)) is not None]
    if failures:
        kind = manifest.get("kind")
        name = manifest.get("metadata", {}).get("name")
        raise AssertionError(f"{kind}/{name} is invalid:\n  " + "\n  ".join(failures))


def test_schema_versions_come_from_the_package() -> None:
    versions = schema_versions()
    assert versions, "kubernetes-validate bundles no schema from 1.25 up"
    assert versions[0] == "1.25.0", (
        f"kubernetes-validate {kubernetes_validate.__version__} no longer bundles the 1.25 "
        f"schemas (oldest: {versions[0]}): the manifests are not checked against every "
        "supported version any more; pin an older kubernetes-validate or raise the floor")
    assert versions[-1] == kubernetes_validate.latest_version()


@pytest.mark.parametrize(("breakage", "where"), [
    (lambda d: d["spec"].__setitem__("replicas", "3"), "spec.replicas"),
    # A typo: strict mode refuses unknown fields.
    (lambda d: d["spec"].__setitem__("replica", 3), "'replica' was unexpected"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0]
     .__setitem__("containerPort", "8080"), "containerPort"),
    (lambda d: d["spec"]["template"]["metadata"]["annotations"]
     .__setitem__("ingress-chaos.dev/keepalive-timeout", 5), "annotations"),
])
def test_the_validation_helper_rejects_a_broken_manifest(breakage: Any, where: str) -> None:
    manifest = deployment_manifest(settings())
    validate_everywhere(manifest)  # intact: valid
    breakage(manifest)
    with pytest.raises(AssertionError, match="Deployment/kubia-1 is invalid") as failure:
        validate_everywhere(manifest)
    message = str(failure.value)
    assert where in message
    # Every version rejects it, each named.
    for version in schema_versions():
        assert f"Kubernetes {version}:" in message


def test_the_validation_helper_refuses_an_unknown_kind() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_everywhere({"apiVersion": "example.com/v1", "kind": "Nonesuch",
                             "metadata": {"name": "x"}})


# --- settings -----------------------------------------------------------------------------


def settings(**changes: Any) -> ManifestSettings:
    values: dict[str, Any] = {
        "namespace": NAMESPACE,
        "name": "kubia-1",
        "run_id": RUN,
        "mode": "instance",
        "profile": "aws-alb",
        "ingress_class": None,
        "host": None,
        "image": "luksa/kubia:latest",
        "service": ServiceSpec(),
        "alb": AlbSpec(),
        "labels": SESSION_LABELS,
    }
    values.update(changes)
    if values["profile"] == "generic":
        values.setdefault("generic_annotations", GENERIC)
        if values["ingress_class"] is None:
            values["ingress_class"] = "traefik"
    return ManifestSettings(**values)


# Variations that move every rounded, optional or mode-dependent field.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tuned": {
        "name": "kubia-12",
        "host": "chaos.example.com",
        "service": ServiceSpec(replicas=1, prestop_sleep=15.0, grace_period=45.5,
                               on_sigterm="drain", readiness_delay=1.5,
                               readiness_gate=True, external_traffic_policy="Local",
                               keepalive_timeout=5.0),
        "alb": AlbSpec(deregistration_delay=0.0, healthcheck_interval=5.0,
                       healthcheck_timeout=2.5, healthy_threshold=3, unhealthy_threshold=5,
                       idle_timeout=4.0, algorithm="least_outstanding_requests"),
    },
    "sub-second": {
        "host": "*.example.com",
        "service": ServiceSpec(replicas=10, prestop_sleep=0.25, grace_period=0.0,
                               on_sigterm="ignore", keepalive_timeout=0.5),
        "alb": AlbSpec(deregistration_delay=2.1, idle_timeout=60.0),
    },
}
CASES = [(profile, mode, variant)
         for profile in profiles.PROFILES for mode in MODES for variant in VARIANTS]


@pytest.mark.parametrize(("profile", "mode", "variant"), CASES)
def test_every_manifest_is_valid_in_every_kubernetes_version(
    profile: str, mode: str, variant: str,
) -> None:
    s = settings(profile=profile, mode=mode, **VARIANTS[variant])
    prof = profiles.profile(profile)
    objects = [namespace_manifest(s.namespace, SESSION_LABELS,
                                  profiles.namespace_labels(prof, mode, s.service)),
               *service_manifests(s)]
    assert [o["kind"] for o in objects] == ["Namespace", "Deployment", "Service", "Ingress"]
    for manifest in objects:
        validate_everywhere(manifest)
        # Plain data, as create_from_dict takes it: survives JSON unchanged.
        assert json.loads(json.dumps(manifest)) == manifest


@pytest.mark.parametrize("ingress_class", [None, "alb-internal"])
def test_the_group_anchor_of_the_aws_alb_profile(ingress_class: str | None) -> None:
    """The anchor keeps the namespace's place in the run's IngressGroup between tests: a rule
    whose backend is a fixed-404 action, for a route header no request carries. Valid in every
    Kubernetes version; the other profiles, which share no load balancer, have none."""
    anchor = anchor_manifest(NAMESPACE, RUN, SESSION_LABELS, "aws-alb", ingress_class)
    assert anchor is not None
    validate_everywhere(anchor)
    assert anchor["metadata"]["name"] == "ingress-chaos-anchor"
    assert anchor["metadata"]["labels"] == SESSION_LABELS
    assert anchor["spec"]["ingressClassName"] == (ingress_class or "alb")
    (path,) = anchor["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"] == {"service": {"name": "ingress-chaos-anchor",
                                           "port": {"name": "use-annotation"}}}
    assert anchor["metadata"]["annotations"] == {
        alb("group.name"): f"ingress-chaos-{RUN}",  # the tests' group
        alb("scheme"): "internet-facing",  # as the tests' Ingresses: an exclusive setting
        alb("actions.ingress-chaos-anchor"):
            '{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain",'
            '"statusCode":"404"}}',
        alb("conditions.ingress-chaos-anchor"):
            '[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":'
            f'"X-Ingress-Chaos-Route","values":["{NAMESPACE}/ingress-chaos-anchor"]}}}}]',
    }
    assert ingress_manifest(settings())["metadata"]["annotations"][alb("group.name")] == \
        anchor["metadata"]["annotations"][alb("group.name")]
    for other in ("gke", "nginx", "generic"):
        assert anchor_manifest(NAMESPACE, RUN, SESSION_LABELS, other, "x") is None


# --- content: what every profile shares ---------------------------------------------------


@pytest.mark.parametrize(("profile", "mode", "variant"), CASES)
def test_the_objects_fit_together(profile: str, mode: str, variant: str) -> None:
    s = settings(profile=profile, mode=mode, **VARIANTS[variant])
    deployment, service, ingress = service_manifests(s)
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]

    # One name for all three, in the session's namespace, with the session's labels (the
    # sweeper selects on them) on every object and on the pods.
    for obj in (deployment, service, ingress):
        assert obj["metadata"]["name"] == s.name
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert SESSION_LABELS.items() <= obj["metadata"]["labels"].items()
    pod_labels = template["metadata"]["labels"]
    assert SESSION_LABELS.items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/name"] == "kubia"
    assert pod_labels["ingress-chaos.dev/service"] == s.name

    # The selectors pick exactly these pods.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()

    # One pod per node as far as the nodes allow: a preference the scheduler weighs (so that a
    # drain takes one replica, not all), never a reason to leave a pod Pending (a cordoned node
    # still counts as a domain with no pods: DoNotSchedule would block replacements after a
    # drain).
    assert template["spec"]["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}]

    # Ingress -> Service port 80 -> the container's named port 8080.
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": s.name, "port": {"number": 80}}
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert port["targetPort"] == "http"
    assert rule.get("host") == s.host

    # Instance targets are the nodes' NodePorts; ip targets need no more than a ClusterIP, and
    # externalTrafficPolicy appears only where the API allows it.
    if mode == "instance":
        assert service["spec"]["type"] == "NodePort"
        assert service["spec"]["externalTrafficPolicy"] == s.service.external_traffic_policy
    else:
        assert service["spec"]["type"] == "ClusterIP"
        assert "externalTrafficPolicy" not in service["spec"]

    assert deployment["spec"]["replicas"] == s.service.replicas
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert container["name"] == "app"
    assert container["image"] == "luksa/kubia:latest"
    assert "readinessGates" not in template["spec"]  # the AWS controller injects its own


def test_the_pod_spec_carries_the_termination_story() -> None:
    tuned = deployment_manifest(settings(**VARIANTS["tuned"]))
    pod = tuned["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/", "port": "http"},
        "initialDelaySeconds": 2,  # 1.5 s rounded up: never Ready earlier than asked
        "periodSeconds": 1,
    }
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "15"]}}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 46  # 45.5 s rounded up
    assert pod["metadata"]["annotations"] == {ON_SIGTERM_ANNOTATION: "drain",
                                              KEEPALIVE_ANNOTATION: "5"}

    sub_second = deployment_manifest(settings(**VARIANTS["sub-second"]))
    pod = sub_second["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "0.25"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 0
    assert pod["metadata"]["annotations"] == {ON_SIGTERM_ANNOTATION: "ignore",
                                              KEEPALIVE_ANNOTATION: "0.5"}

    # The defaults: no preStop hook at all (it would delay SIGTERM), Kubernetes' 30 s grace,
    # the field report's app that exits on SIGTERM, no keep-alive timeout.
    default = deployment_manifest(settings())
    pod = default["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert "lifecycle" not in container
    assert container["readinessProbe"]["initialDelaySeconds"] == 0
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30
    assert pod["metadata"]["annotations"] == {ON_SIGTERM_ANNOTATION: "exit"}


def test_whole_seconds_round_up_but_ignore_float_noise() -> None:
    assert profiles.whole_seconds(0.0) == 0
    assert profiles.whole_seconds(0.001) == 1
    assert profiles.whole_seconds(2.5) == 3
    assert profiles.whole_seconds(3000 * 0.001) == 3
    assert profiles.whole_seconds(0.1 + 0.2 + 2.7) == 3


# --- content: per profile -----------------------------------------------------------------


def alb(name: str) -> str:
    return "alb.ingress.kubernetes.io/" + name


@pytest.mark.parametrize("mode", MODES)
def test_aws_alb_maps_the_alb_marker_to_the_controllers_annotations(mode: str) -> None:
    ingress = ingress_manifest(settings(mode=mode))
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["metadata"]["annotations"] == {
        alb("target-type"): mode,
        alb("scheme"): "internet-facing",
        alb("group.name"): f"ingress-chaos-{RUN}",
        alb("healthcheck-path"): "/",
        alb("healthcheck-interval-seconds"): "15",
        alb("healthcheck-timeout-seconds"): "5",
        alb("healthy-threshold-count"): "2",
        alb("unhealthy-threshold-count"): "2",
        alb("success-codes"): "200",
        alb("target-group-attributes"):
            "deregistration_delay.timeout_seconds=300,load_balancing.algorithm.type=round_robin",
        alb("load-balancer-attributes"): "idle_timeout.timeout_seconds=60",
        # The rule of kubia-1 (its backend) on the run's shared ALB is met only by requests
        # that carry its route header: the other tests' rules for "/" never take them.
        alb("conditions.kubia-1"):
            '[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":'
            f'"X-Ingress-Chaos-Route","values":["{NAMESPACE}/kubia-1"]}}}}]',
    }
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == \
        "kubia-1"
    assert settings(mode=mode).route_headers == {"X-Ingress-Chaos-Route": f"{NAMESPACE}/kubia-1"}
    assert "annotations" not in service_manifest(settings(mode=mode))["metadata"]

    tuned = ingress_manifest(settings(mode=mode, **VARIANTS["tuned"]))["metadata"]["annotations"]
    assert tuned[alb("healthcheck-interval-seconds")] == "5"
    assert tuned[alb("healthcheck-timeout-seconds")] == "3"  # 2.5 s rounded up
    assert tuned[alb("healthy-threshold-count")] == "3"
    assert tuned[alb("unhealthy-threshold-count")] == "5"
    assert tuned[alb("target-group-attributes")] == (
        "deregistration_delay.timeout_seconds=0,"
        "load_balancing.algorithm.type=least_outstanding_requests")
    assert tuned[alb("load-balancer-attributes")] == "idle_timeout.timeout_seconds=4"
    # The idle timeout is the whole ALB's ("exclusive" in an IngressGroup): tests that ask for
    # another one share an ALB of their own, one per value.
    assert tuned[alb("group.name")] == f"ingress-chaos-{RUN}-idle4"
    sub = ingress_manifest(settings(mode=mode, **VARIANTS["sub-second"]))
    assert sub["metadata"]["annotations"][alb("target-group-attributes")].startswith(
        "deregistration_delay.timeout_seconds=3,")


def test_aws_alb_readiness_gate_labels_the_namespace_in_ip_mode_only() -> None:
    prof = profiles.profile("aws-alb")
    gate = ServiceSpec(readiness_gate=True)
    assert profiles.namespace_labels(prof, "ip", gate) == {
        "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
    assert profiles.namespace_labels(prof, "instance", gate) == {}
    assert profiles.namespace_labels(prof, "ip", ServiceSpec()) == {}
    for other in ("gke", "nginx", "generic"):
        assert profiles.namespace_labels(profiles.profile(other), "ip", gate) == {}

    namespace = namespace_manifest(NAMESPACE, SESSION_LABELS,
                                   profiles.namespace_labels(prof, "ip", gate))
    assert namespace["metadata"] == {
        "name": NAMESPACE,
        "labels": {**SESSION_LABELS, "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"},
    }


def test_gke_switches_neg_on_for_ip_and_off_for_instance() -> None:
    ip = settings(profile="gke", mode="ip")
    instance = settings(profile="gke", mode="instance")
    assert service_manifest(ip)["metadata"]["annotations"] == {
        "cloud.google.com/neg": '{"ingress": true}'}
    assert service_manifest(instance)["metadata"]["annotations"] == {
        "cloud.google.com/neg": '{"ingress": false}'}
    assert json.loads(service_manifest(ip)["metadata"]["annotations"]["cloud.google.com/neg"]) \
        == {"ingress": True}
    assert service_manifest(instance)["spec"]["type"] == "NodePort"
    for s in (ip, instance):
        ingress = ingress_manifest(s)
        assert ingress["spec"]["ingressClassName"] == "gce"
        assert "annotations" not in ingress["metadata"]


def test_nginx_goes_through_the_cluster_ip_in_instance_mode() -> None:
    ip = ingress_manifest(settings(profile="nginx", mode="ip"))
    instance = ingress_manifest(settings(profile="nginx", mode="instance"))
    assert ip["spec"]["ingressClassName"] == instance["spec"]["ingressClassName"] == "nginx"
    assert "annotations" not in ip["metadata"]
    assert instance["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/service-upstream": "true"}


def test_generic_takes_the_users_class_and_annotations_per_mode() -> None:
    for mode in MODES:
        ingress = ingress_manifest(settings(profile="generic", mode=mode,
                                            ingress_class="haproxy"))
        assert ingress["spec"]["ingressClassName"] == "haproxy"
        assert ingress["metadata"]["annotations"] == GENERIC[mode]
    # A mode the user gave nothing for gets no annotations.
    bare = settings(profile="generic", mode="ip", generic_annotations={"instance": {"a/b": "c"}})
    assert "annotations" not in ingress_manifest(bare)["metadata"]


def test_only_the_shared_alb_needs_route_headers() -> None:
    """gke, nginx and generic give each Ingress its own load balancer or address."""
    for other in ("gke", "nginx", "generic"):
        assert settings(profile=other, ingress_class="x").route_headers == {}


def test_an_explicit_ingress_class_wins_over_the_profiles() -> None:
    s = settings(profile="nginx", ingress_class="nginx-internal")
    assert ingress_manifest(s)["spec"]["ingressClassName"] == "nginx-internal"


# --- settings errors ----------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"profile": "traefik"}, "unknown ingress profile 'traefik'"),
    ({"mode": "pod"}, "unknown target type"),
    ({"name": "Kubia_1"}, "name='Kubia_1'"),
    ({"name": "1-kubia"}, "starting with a lower-case letter"),
    ({"namespace": "x" * 64}, "at most 63 characters"),
    ({"run_id": "r" * 50}, "IngressGroup"),
    ({"run_id": "r" * 45, "alb": AlbSpec(idle_timeout=4000.0)}, "'ingress-chaos-r+-idle4000'"),
    ({"host": "10.0.0.1"}, "not an IP address"),
    ({"host": "Example.COM"}, "host="),
    ({"ingress_class": "my class"}, "ingress_class="),
    ({"image": ""}, "image="),
    ({"labels": {"ingress-chaos.dev/created": "not a label value!"}}, "label value"),
    ({"labels": {"bad key/with/slashes": "x"}}, "labels key"),
    # "$" in a pattern lets a trailing newline through; an empty prefix is no prefix.
    ({"ingress_class": "alb\n"}, "ingress_class="),
    ({"labels": {"ingress-chaos.dev/run\n": "x"}}, "labels key"),
    ({"labels": {"/run": "x"}}, "labels key"),
    ({"generic_annotations": GENERIC}, "generic profile only"),
])
def test_impossible_settings_are_refused_with_the_setting_named(
    changes: dict[str, Any], message: str,
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**changes)


def test_the_generic_profile_needs_an_ingress_class() -> None:
    with pytest.raises(SettingsError, match=r"needs an ingress class.*--ingress-class"):
        ManifestSettings(namespace=NAMESPACE, name="kubia-1", run_id=RUN, mode="ip",
                         profile="generic", ingress_class=None, host=None,
                         image="luksa/kubia:latest", service=ServiceSpec(), alb=AlbSpec(),
                         labels=SESSION_LABELS)


def test_generic_annotations_must_be_strings_for_known_modes() -> None:
    with pytest.raises(SettingsError, match="annotation values are strings"):
        settings(profile="generic", generic_annotations={"ip": {"a/b": 1}})
    with pytest.raises(SettingsError, match="unknown target types"):
        settings(profile="generic", generic_annotations={"nodeport": {"a/b": "c"}})


def test_settings_are_frozen_copies() -> None:
    labels = dict(SESSION_LABELS)
    s = settings(labels=labels)
    labels["ingress-chaos.dev/run"] = "changed"
    assert s.labels["ingress-chaos.dev/run"] == RUN
    with pytest.raises(TypeError):
        s.labels["x"] = "y"  # type: ignore[index]
    # Two calls give equal, independent dicts: a caller may edit one freely.
    first, second = service_manifests(s), service_manifests(s)
    assert first == second
    first[0]["spec"]["selector"]["matchLabels"]["x"] = "y"
    assert "x" not in second[0]["spec"]["selector"]["matchLabels"]
    assert replace(s, mode="ip").mode == "ip"


def test_the_manifest_layer_imports_neither_pytest_nor_the_other_backends() -> None:
    code = ("import sys\n"
            "import pytest_ingress_chaos.backends.kubernetes.manifests\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')\n"
            "             or m.startswith(('pytest_ingress_chaos.backends.sim',\n"
            "                              'pytest_ingress_chaos.localcluster')))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- RBAC ---------------------------------------------------------------------------------


def rbac_objects() -> list[dict[str, Any]]:
    with RBAC_FILE.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def test_rbac_objects_are_valid_in_every_kubernetes_version() -> None:
    objects = rbac_objects()
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole", "ClusterRoleBinding", "Namespace", "ServiceAccount"]
    for obj in objects:
        validate_everywhere(obj)


def test_rbac_grants_exactly_what_the_backend_needs() -> None:
    by_kind = {o["kind"]: o for o in rbac_objects()}
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in by_kind["ClusterRole"]["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}  # no resourceNames, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    read = {"get", "list", "watch"}
    assert granted == {
        ("", "namespaces"): {"create", "delete", "patch"} | read,  # patch: readiness-gate label
        ("apps", "deployments"): {"create", "delete", "patch"} | read,
        ("apps", "deployments/scale"): {"get", "patch", "update"},
        ("apps", "replicasets"): read,
        ("", "services"): {"create", "delete"} | read,
        ("networking.k8s.io", "ingresses"): {"create", "delete"} | read,
        ("", "pods"): {"delete"} | read,
        ("", "pods/eviction"): {"create"},
        ("discovery.k8s.io", "endpointslices"): read,
        ("", "endpoints"): read,
        ("", "events"): read,
        ("events.k8s.io", "events"): read,
        ("", "nodes"): {"patch"} | read,
        # the ALB's own view (docs/aws-evidence.md): the test's target group from its binding
        ("elbv2.k8s.aws", "targetgroupbindings"): {"get", "list"},
    }
    # The binding gives that role to the ServiceAccount the file creates, in its namespace.
    account = by_kind["ServiceAccount"]["metadata"]
    binding = by_kind["ClusterRoleBinding"]
    assert account["namespace"] == by_kind["Namespace"]["metadata"]["name"] == \
        "ingress-chaos-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole",
                                  "name": by_kind["ClusterRole"]["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]


def test_every_rbac_rule_says_why() -> None:
    """Each rule of the ClusterRole is preceded by a comment."""
    lines = RBAC_FILE.read_text().splitlines()
    rule_starts = [i for i, line in enumerate(lines) if line.startswith("  - apiGroups:")]
    assert len(rule_starts) == len(next(o for o in rbac_objects()
                                        if o["kind"] == "ClusterRole")["rules"])
    for i in rule_starts:
        assert lines[i - 1].lstrip().startswith("#"), lines[i]
