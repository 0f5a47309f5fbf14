"""The kubernetes backend against a real API server: the local cluster (control plane, kubelet
and ALB controller stand-ins), time compressed five times as in the contract suite.

Skipped with the reason when the control-plane binaries are missing. One cluster and one backend
serve the module; tests that close a backend make their own. What is asserted is what the API
shows (pods, conditions, objects, labels) and the events the backend derives from it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_ingress_chaos.backends import BackendConfig
from pytest_ingress_chaos.backends.kubernetes.apis import ApiError, JsonDict, KubeApi
from pytest_ingress_chaos.backends.kubernetes.backend import KubernetesBackend
from pytest_ingress_chaos.backends.kubernetes.labels import (
    CREATED_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RUN_LABEL,
    session_labels,
)
from pytest_ingress_chaos.backends.kubernetes.manifests import SERVICE_LABEL
from pytest_ingress_chaos.base.backend import EXCLUDE_LABEL, Capability, Service
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.errors import BackendError, BackendTimeout
from pytest_ingress_chaos.base.specs import ServiceSpec
from pytest_ingress_chaos.settings.options import SessionSettings

from ..clusters import local_cluster
from ..contract.support import (
    CLOCK,
    WAIT_TIMEOUT,
    Story,
    answers,
    check_pod,
    eventually,
    hits,
    wait_serving,
    wait_steady,
)

REPLICAS = 3
NODES = ("node-1", "node-2", "node-3")
STEADY_REQUESTS = 10  # enough for three pods behind round robin; the plugin's default is 30


def new_run_id() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with local_cluster(nodes=len(NODES), time_scale=CLOCK.time_scale,
                       stand_in_nodes=True) as running:
        yield running


def new_backend(cluster: Any, run_id: str | None = None, **settings_given: Any
                ) -> KubernetesBackend:
    settings = SessionSettings(backend="kubernetes", kubeconfig=cluster.kubeconfig,
                               steady_requests=STEADY_REQUESTS,
                               time_scale=CLOCK.time_scale, **settings_given)
    return KubernetesBackend(BackendConfig(run_id=run_id or new_run_id(), worker="main",
                                           clock=TestClock(CLOCK.time_scale),
                                           settings=settings))


@pytest.fixture(scope="module")
def backend(cluster: Any) -> Iterator[KubernetesBackend]:
    created = new_backend(cluster)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def api(cluster: Any) -> Iterator[KubeApi]:
    """A client of our own, to look at the API behind the backend's back."""
    with cluster.api_client() as api_client:
        yield KubeApi(api_client)


@pytest.fixture
def story(backend: KubernetesBackend, request: pytest.FixtureRequest) -> Iterator[Story]:
    """Tears down what the test provisioned, then checks every event (a known kind, stamped
    inside the test)."""
    current = Story(backend, request.node.nodeid)
    yield current
    current.finish()


@pytest.fixture(params=["ip", "instance"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def read(api: KubeApi, what: str, method: Any, *args: Any) -> JsonDict | None:
    """The object, or None when the API says 404."""
    try:
        return api.call(what, method, *args)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def node_labels(api: KubeApi, node: str) -> dict[str, str]:
    return dict(api.call("node", api.core.read_node, node)["metadata"].get("labels") or {})


def node_unschedulable(api: KubeApi, node: str) -> bool:
    return bool(api.call("node", api.core.read_node, node).get("spec", {}).get("unschedulable"))


def bare_pod(name: str, labels: dict[str, str], node: str | None = None) -> JsonDict:
    spec: JsonDict = {"containers": [{"name": "app", "image": "luksa/kubia:latest",
                                      "ports": [{"containerPort": 8080}]}],
                      "terminationGracePeriodSeconds": 1}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec}


def figure(request: pytest.FixtureRequest, name: str, seconds: float) -> None:
    """A timing for the JUnit XML (user properties, which every junit_family accepts) and for
    ``-rP``."""
    request.node.user_properties.append((name, round(seconds, 2)))
    print(f"{name}: {seconds:.2f} s")


def force_delete(api: KubeApi, namespace: str, name: str) -> None:
    try:
        api.call("delete", api.core.delete_namespaced_pod, name, namespace,
                 grace_period_seconds=0)
    except ApiError as exc:
        if exc.status != 404:
            raise


# --- provisioning -----------------------------------------------------------------------------


def test_provision_serves_from_every_pod(story: Story, mode: str, api: KubeApi,
                                         backend: KubernetesBackend,
                                         request: pytest.FixtureRequest) -> None:
    service = story.provision(mode)
    figure(request, "provision_seconds", story.provision_seconds)
    assert service.url.startswith("http://127.0.0.1:"), service.url
    assert service.mode == mode
    pods = service.pods()
    assert len(pods) == REPLICAS, pods
    for pod in pods:
        check_pod(pod)
        assert pod.address.startswith("198.51.100.") and pod.address.endswith(":8080"), pod
        assert pod.conditions == {"Initialized": True, "ContainersReady": True, "Ready": True,
                                  "PodScheduled": True}, pod
        assert pod.restarts == 0
    assert {pod.node for pod in pods} == set(NODES), f"not spread over the nodes: {pods}"
    names = {pod.name for pod in pods}
    assert set(hits(service, names)) == names  # with the service's route header
    # The run shares one ALB (aws-alb profile): this service's rule needs its route header,
    # and the ALB controller stand-in honours the condition: without it, the ALB's 404.
    identity = service.identity
    assert service.request_headers == {
        "X-Ingress-Chaos-Route": f"{identity.namespace}/{identity.deployment}"}
    with httpx.Client(trust_env=False) as bare:
        assert bare.get(service.url + "/").status_code == 404

    # What the API holds: the session's labels on the namespace and on every object.
    namespace = api.call("ns", api.core.read_namespace, identity.namespace)
    labels = namespace["metadata"]["labels"]
    assert labels[MANAGED_BY_LABEL] == MANAGED_BY
    assert labels[RUN_LABEL] == backend.config.run_id
    assert abs(int(labels[CREATED_LABEL]) - time.time()) < 600
    for kind, method in (("Deployment", api.apps.read_namespaced_deployment),
                         ("Service", api.core.read_namespaced_service),
                         ("Ingress", api.networking.read_namespaced_ingress)):
        obj = api.call(kind, method, identity.deployment, identity.namespace)
        assert obj["metadata"]["labels"][RUN_LABEL] == backend.config.run_id, kind
        assert obj["metadata"]["labels"][SERVICE_LABEL] == identity.deployment, kind
    service_type = api.call("svc", api.core.read_namespaced_service, identity.service,
                            identity.namespace)["spec"]["type"]
    assert service_type == ("ClusterIP" if mode == "ip" else "NodePort")

    # The events of the provisioning, from the watches.
    log = story.log
    assert names <= {e.subject for e in log.of("pod.created")}
    assert names <= {e.subject for e in log.of("pod.ready")}
    assert log.of("endpoints.updated") and log.of("alb.ready")
    assert log.of("alb.ready")[0].t >= max(e.t for e in log.of("pod.ready"))


def test_the_generic_profile_applies_the_users_class_and_annotations_per_mode(
        cluster: Any, api: KubeApi, mode: str, request: pytest.FixtureRequest) -> None:
    """The generic profile, configured by hand to spell the AWS Load Balancer Controller: the
    Ingress carries the user's class and the annotations of its own mode only, and the
    controller stand-in, which takes Ingresses of class alb, serves the service through it."""
    annotations = {
        "ip": {"alb.ingress.kubernetes.io/target-type": "ip", "example.com/owner": "team-ip"},
        "instance": {"alb.ingress.kubernetes.io/target-type": "instance"},
    }
    generic = new_backend(cluster, profile="generic", ingress_class="alb",
                          ip_annotations=annotations["ip"],
                          instance_annotations=annotations["instance"])
    try:
        story = Story(generic, request.node.nodeid)
        service = story.provision(mode)
        identity = service.identity
        ingress = api.call("ingress", api.networking.read_namespaced_ingress,
                           identity.deployment, identity.namespace)
        assert ingress["spec"]["ingressClassName"] == "alb"
        users = {key: value for key, value in ingress["metadata"]["annotations"].items()
                 if not key.startswith("ingress-chaos.dev/")}  # the stand-in's own
        assert users == annotations[mode]
        names = {pod.name for pod in service.pods()}
        assert set(hits(service, names)) == names
        story.finish()
    finally:
        generic.close()


def test_the_group_anchor_outlives_each_test_and_goes_with_the_namespace(
        cluster: Any, api: KubeApi, request: pytest.FixtureRequest) -> None:
    """aws-alb: the namespace's anchor Ingress keeps its place in the run's IngressGroup while
    a worker's tests come and go (each deletes its own Ingress), so the ALB is not deleted
    and recreated between them; it goes with the namespace."""
    own = new_backend(cluster)
    try:
        story = Story(own, request.node.nodeid)
        service = story.provision("ip")
        namespace = service.identity.namespace
        story.finish()
        ingresses = api.call("ingresses", api.networking.list_namespaced_ingress, namespace)
        assert [i["metadata"]["name"] for i in ingresses["items"]] == ["ingress-chaos-anchor"]
        (anchor,) = ingresses["items"]
        assert anchor["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"] == \
            f"ingress-chaos-{own.config.run_id}"
        assert anchor["metadata"]["labels"][RUN_LABEL] == own.config.run_id
    finally:
        own.close()
    assert read(api, "namespace", api.core.read_namespace, namespace) is None


def test_backend_describes_itself(backend: KubernetesBackend, cluster: Any) -> None:
    # the cluster on the first line, the ALB's own view on the second (here off: no credentials)
    line, aws = backend.describe().split("\n")
    assert line.startswith("kubernetes (context local, server https://127.0.0.1:"), line
    assert "profile aws-alb" in line and backend.namespace in line
    assert aws.startswith("the ALB's own view (AWS API) is off: no AWS credentials found"), aws
    assert backend.name == "kubernetes"
    assert not backend.capabilities & {Capability.CONTAINER_KILL, Capability.NODE_TERMINATION,
                                       Capability.TARGET_STATES}


def test_api_versions_fall_back_to_what_the_cluster_serves(backend: KubernetesBackend) -> None:
    """The local control plane is Kubernetes 1.20: EndpointSlices and Evictions are v1beta1
    there, while current clusters serve v1."""
    assert backend.api.endpointslice_version() == "v1beta1"
    assert backend.api.eviction_api_version() == "policy/v1beta1"


def test_provision_past_its_timeout_says_what_it_saw(backend: KubernetesBackend,
                                                     api: KubeApi,
                                                     request: pytest.FixtureRequest) -> None:
    # Pods that take ten minutes (two wall minutes) to become Ready: the provision gives up.
    story = Story(backend, request.node.nodeid)
    began = time.monotonic()
    with pytest.raises(BackendTimeout) as raised:
        story.provision("ip", ServiceSpec(readiness_delay=600.0), timeout=3.0)
    assert time.monotonic() - began < 15.0, "the provision did not keep its deadline"
    message = str(raised.value)
    assert "0 of 3 pods Running and Ready" in message, message
    assert "Ready=False (ContainersNotReady)" in message, message
    assert "container app running" in message, message
    assert "Deployment kubia-" in message and "events" in message, message
    # The failed provision removed what it created.
    name = message.split("provision of ", 1)[1].split(" ", 1)[0]
    assert read(api, "deploy", api.apps.read_namespaced_deployment, name,
                backend.namespace) is None
    assert read(api, "ing", api.networking.read_namespaced_ingress, name,
                backend.namespace) is None
    story.finish()


# --- delete_pod -------------------------------------------------------------------------------


def test_delete_pod_reports_the_termination_in_order(story: Story, mode: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # A preStop sleep keeps the victim terminating long enough to be seen doing so.
    service = story.provision(mode, ServiceSpec(prestop_sleep=2.0))
    before = service.pods()
    victim = before[0]
    service.delete_pod(victim.name, grace_period=None, force=False)
    listed = {pod.name: pod for pod in service.pods()}
    assert listed[victim.name].terminating and not listed[victim.name].running

    pods = wait_steady(service, REPLICAS)
    assert victim.name not in {pod.name for pod in pods}
    log = story.log
    deleted = log.wait_for("pod.deleted", victim.name)
    left = [e for e in log.events if e.subject == victim.name
            and e.kind in ("endpoint.not_ready", "endpoint.removed")]
    exited = log.wait_for("pod.exited", victim.name)
    gone = log.wait_for("pod.gone", victim.name)
    assert left, f"no endpoint event for {victim.name}: {log.events}"
    assert deleted.t <= left[0].t <= exited.t <= gone.t, (deleted, left[0], exited, gone)
    assert exited.t - deleted.t >= CLOCK.wall(2.0) * 0.9, "exited before its preStop sleep"
    assert "grace 30s" in deleted.message
    assert len(log.of("pod.deleted", victim.name)) == 1
    assert len(log.of("pod.gone", victim.name)) == 1
    replacement = {pod.name for pod in pods} - {pod.name for pod in before}
    assert len(replacement) == 1
    assert log.wait_for("pod.created", replacement.pop()).t >= deleted.t
    # The watches never failed or reconnected meanwhile (they log a warning when they do).
    complaints = [record.getMessage() for record in caplog.records
                  if record.name.startswith("pytest_ingress_chaos.backends.kubernetes")
                  and record.levelno >= logging.WARNING]
    assert not complaints, complaints


def test_force_delete_removes_the_pod_at_once(story: Story) -> None:
    # The app ignores SIGTERM and has a minute's grace (12 s wall): only force ends it early.
    stubborn = ServiceSpec(on_sigterm="ignore", grace_period=60.0)
    service = story.provision("instance", stubborn)
    victim = service.pods()[0]
    began = time.monotonic()
    service.delete_pod(victim.name, grace_period=None, force=True)
    eventually(lambda: victim.name not in {pod.name for pod in service.pods()},
               f"{victim.name} left the API", timeout=5.0)
    assert time.monotonic() - began < 5.0
    story.log.wait_for("pod.gone", victim.name)
    wait_serving(service, REPLICAS)


def test_deleting_an_unknown_pod_names_it(story: Story) -> None:
    service = story.provision("instance")
    with pytest.raises(BackendError, match=r"kubia-nosuchpod.*NotFound"):
        service.delete_pod("kubia-nosuchpod", grace_period=None, force=False)


def test_chaos_refuses_a_pod_this_run_did_not_create(story: Story, api: KubeApi) -> None:
    """A pod that matches the service's selector, but another run's labels: the backend lists
    it (it is in the API), and refuses to delete it."""
    service = story.provision("instance")
    namespace = service.identity.namespace
    labels = {**session_labels("otherrun", int(time.time())), **service.identity.selector}
    api.call("create", api.core.create_namespaced_pod, namespace,
             bare_pod("kubia-foreign", labels))
    try:
        with pytest.raises(BackendError, match=r"refusing to delete pod kubia-foreign.*"
                                               r"did not create it.*allow_chaos_on"):
            service.delete_pod("kubia-foreign", grace_period=None, force=True)
        # Draining its node evicts our pod there and leaves the look-alike alone.
        node = eventually(lambda: api.call("read", api.core.read_namespaced_pod, "kubia-foreign",
                                           namespace)["spec"].get("nodeName"),
                          "the foreign pod is scheduled")
        service.drain_node(node, wait=True, timeout=WAIT_TIMEOUT)
        assert not [pod for pod in service.pods() if pod.node == node and pod.running
                    and pod.name != "kubia-foreign"]
        pod = api.call("read", api.core.read_namespaced_pod, "kubia-foreign", namespace)
        assert not pod["metadata"].get("deletionTimestamp"), "the foreign pod is being deleted"
        assert not story.log.of("pod.deleted", "kubia-foreign")
    finally:
        force_delete(api, namespace, "kubia-foreign")


def test_kill_container_is_refused_saying_why(story: Story) -> None:
    service = story.provision("instance")
    victim = service.pods()[0]
    with pytest.raises(BackendError, match=r"cannot send SIGKILL.*container-kill"):
        service.kill_container(victim.name, "SIGKILL")
    assert victim.name in {pod.name for pod in service.pods() if pod.running}


# --- rollout_restart and scale ----------------------------------------------------------------


def test_rollout_restart_waits_until_every_pod_is_new(story: Story, api: KubeApi) -> None:
    service = story.provision("ip")
    old = {pod.name for pod in service.pods()}
    service.rollout_restart(1, 0, wait=True, timeout=WAIT_TIMEOUT)
    current = [pod for pod in service.pods() if pod.running]
    assert len(current) == REPLICAS and all(pod.ready for pod in current), current
    assert not old & {pod.name for pod in current}, current
    started = story.log.wait_for("rollout.started")
    done = story.log.wait_for("rollout.done")
    assert started.t <= done.t <= time.monotonic()
    deployment = api.call("deploy", api.apps.read_namespaced_deployment,
                          service.identity.deployment, service.identity.namespace)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                              "maxUnavailable": 0}
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in template
    for name in old:
        story.log.wait_for("pod.gone", name)
    # A second restart right after the first is a second rollout (microsecond stamps).
    service.rollout_restart("25%", "25%", wait=True, timeout=WAIT_TIMEOUT)
    assert len(story.log.of("rollout.done")) == 2


def test_rollout_restart_past_its_timeout_says_what_it_saw(story: Story) -> None:
    # Each new pod takes 10 test seconds (2 s wall) to become Ready.
    service = story.provision("instance", ServiceSpec(readiness_delay=10.0))
    old = {pod.name for pod in service.pods()}
    began = time.monotonic()
    with pytest.raises(BackendTimeout) as raised:
        service.rollout_restart(1, 0, wait=True, timeout=0.5)
    assert time.monotonic() - began < 3.0, "the wait did not keep its deadline"
    message = str(raised.value)
    assert "rollout_restart of kubia-" in message and "not done within 0.5 s" in message
    assert "Deployment kubia-" in message and "updated" in message, message
    assert any(name in message for name in old), message
    wait_serving(service, REPLICAS, timeout=WAIT_TIMEOUT)


def test_scale_up_then_down(story: Story) -> None:
    service = story.provision("instance")
    before = {pod.name for pod in service.pods()}
    service.scale(5)
    pods = wait_steady(service, 5)
    assert before < {pod.name for pod in pods}
    service.scale(2)
    remaining = wait_steady(service, 2)
    assert len(story.log.of("deployment.scaled")) == 2
    for name in {pod.name for pod in pods} - {pod.name for pod in remaining}:
        story.log.wait_for("pod.deleted", name)
        story.log.wait_for("pod.gone", name)
    with pytest.raises(BackendError, match="-1"):
        service.scale(-1)


# --- drain_node ----------------------------------------------------------------------------


def test_drain_node_cordons_evicts_ours_only_and_uncordons_at_teardown(
        story: Story, api: KubeApi) -> None:
    service = story.provision("ip")
    victim = service.pods()[0]
    node = victim.node
    namespace = service.identity.namespace
    # Someone else's pod on the same node: the drain must leave it alone.
    api.call("create", api.core.create_namespaced_pod, namespace,
             bare_pod("bystander", {"app": "someone-else"}, node=node))
    try:
        service.drain_node(node, wait=True, timeout=WAIT_TIMEOUT)
        assert node_unschedulable(api, node)
        assert not [pod for pod in service.pods() if pod.node == node]
        assert story.log.of("node.cordoned", node)
        story.log.wait_for("pod.deleted", victim.name)
        story.log.wait_for("pod.gone", victim.name)
        pods = wait_steady(service, REPLICAS)
        assert node not in {pod.node for pod in pods}, pods
        bystander = api.call("read", api.core.read_namespaced_pod, "bystander", namespace)
        assert not bystander["metadata"].get("deletionTimestamp"), "the drain evicted it"
        service.teardown()
        assert not node_unschedulable(api, node), "teardown left the node cordoned"
    finally:
        force_delete(api, namespace, "bystander")


def test_drain_node_refuses_a_node_without_our_pods(story: Story, api: KubeApi) -> None:
    service = story.provision("instance")
    service.scale(1)
    (only,) = wait_steady(service, 1)
    other = next(node for node in NODES if node != only.node)
    with pytest.raises(BackendError, match=f"refusing to drain node {other}.*foreign-nodes"):
        service.drain_node(other, wait=False, timeout=WAIT_TIMEOUT)
    assert not node_unschedulable(api, other)
    assert not story.log.of("node.cordoned")


def test_exclude_from_load_balancers_before_the_drain_and_unlabel_at_teardown(
        story: Story, api: KubeApi, cluster: Any) -> None:
    """The mitigation of docs/alb-facts.md section 7 through the API: the label goes on the
    node, the ALB controller stand-in (newest behaviour) deregisters it before anything else
    happens to it, and teardown takes the label off with the cordon."""
    service = story.provision("instance")
    node = service.pods()[0].node
    since = time.monotonic()
    service.exclude_from_load_balancers(node)
    assert node_labels(api, node).get(EXCLUDE_LABEL) == "true"
    labelled = story.log.wait_for("node.labelled", node)
    assert labelled.message == f"{node} labelled {EXCLUDE_LABEL}=true"
    deregistered = cluster.events.wait_for(
        lambda e: e.kind == "target.draining" and e.subject == node, WAIT_TIMEOUT, since=since)
    service.drain_node(node, wait=True, timeout=WAIT_TIMEOUT)
    assert deregistered.at < story.log.wait_for("node.cordoned", node).t
    wait_steady(service, REPLICAS)
    service.teardown()
    assert EXCLUDE_LABEL not in node_labels(api, node), "teardown left the label on"
    assert not node_unschedulable(api, node)


def test_exclude_from_load_balancers_refuses_a_node_without_our_pods(
        story: Story, api: KubeApi) -> None:
    service = story.provision("instance")
    service.scale(1)
    (only,) = wait_steady(service, 1)
    other = next(node for node in NODES if node != only.node)
    with pytest.raises(BackendError, match=f"refusing to label node {other}.*foreign-nodes"):
        service.exclude_from_load_balancers(other)
    assert EXCLUDE_LABEL not in node_labels(api, other)
    assert not story.log.of("node.labelled")


def test_a_label_someone_else_set_stays_after_teardown(story: Story, api: KubeApi) -> None:
    service = story.provision("ip")
    node = service.pods()[0].node
    api.call("label", api.core.patch_node, node,
             {"metadata": {"labels": {EXCLUDE_LABEL: "ops"}}})
    try:
        service.exclude_from_load_balancers(node)
        assert "already" in story.log.wait_for("node.labelled", node).message
        service.teardown()
        assert node_labels(api, node).get(EXCLUDE_LABEL) == "ops"
    finally:
        api.call("unlabel", api.core.patch_node, node,
                 {"metadata": {"labels": {EXCLUDE_LABEL: None}}})


# --- teardown and close ---------------------------------------------------------------------


def test_teardown_ends_a_wait_in_progress_and_is_idempotent(story: Story,
                                                           api: KubeApi) -> None:
    # New pods take 20 test seconds (4 s wall) to become Ready: the rollout lasts.
    service: Service = story.provision("ip", ServiceSpec(readiness_delay=20.0))
    outcome: list[BaseException | None] = []

    def rollout() -> None:
        try:
            service.rollout_restart(1, 0, wait=True, timeout=WAIT_TIMEOUT)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=rollout, daemon=True)
    thread.start()
    story.log.wait_for("rollout.started")
    time.sleep(0.2)
    assert thread.is_alive(), outcome
    began = time.monotonic()
    service.teardown()
    thread.join(5.0)
    assert not thread.is_alive(), "the wait still runs 5 s after teardown()"
    assert time.monotonic() - began < 5.0
    assert outcome and isinstance(outcome[0], BackendError), outcome
    assert "torn down" in str(outcome[0])
    identity = service.identity
    for what, method in (("Deployment", api.apps.read_namespaced_deployment),
                         ("Service", api.core.read_namespaced_service),
                         ("Ingress", api.networking.read_namespaced_ingress)):
        assert read(api, what, method, identity.deployment, identity.namespace) is None, what
    eventually(lambda: not answers(service), f"{service.url} stopped answering", 10.0)
    watching = [thread.name for thread in threading.enumerate()
                if f" {identity.deployment} in namespace " in thread.name]
    assert not watching, f"watches still running after teardown: {watching}"
    service.teardown()
    with pytest.raises(BackendError, match="torn down"):
        service.scale(2)


def test_close_deletes_the_namespace(cluster: Any, api: KubeApi,
                                     request: pytest.FixtureRequest) -> None:
    backend = new_backend(cluster)
    story = Story(backend, request.node.nodeid)
    try:
        service = story.provision("instance")
        namespace = service.identity.namespace
        assert read(api, "ns", api.core.read_namespace, namespace) is not None
    finally:
        began = time.monotonic()
        backend.close()
        seconds = time.monotonic() - began
    figure(request, "close_seconds", seconds)
    assert read(api, "ns", api.core.read_namespace, namespace) is None
    backend.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        story.provision("instance")
    story.finish()


def test_a_second_backend_of_the_same_run_shares_the_namespace(
        cluster: Any, api: KubeApi, request: pytest.FixtureRequest) -> None:
    """Two backends of one run and worker (the contract suite makes a fresh one): the second
    uses the namespace and leaves its deletion to the first."""
    run_id = new_run_id()
    first, second = new_backend(cluster, run_id), new_backend(cluster, run_id)
    try:
        a = Story(first, request.node.nodeid)
        a.provision("instance")
        b = Story(second, request.node.nodeid)
        service = b.provision("instance")
        assert service.identity.namespace == first.namespace
        second.close()
        assert read(api, "ns", api.core.read_namespace, first.namespace) is not None
        assert a.services[0].pods()
        a.finish()
        b.finish()
    finally:
        second.close()
        first.close()
    assert read(api, "ns", api.core.read_namespace, first.namespace) is None
