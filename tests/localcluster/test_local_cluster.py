"""The local cluster, for real: the control plane with the kubelet and ALB controller stand-ins.

Everything goes through the Kubernetes API, as the kubernetes backend will: a Deployment with
the manifest shape of docs/kubernetes-backend.md becomes pods run as sample-app processes, a
Service and an Ingress of class ``alb`` become a loopback ALB, and deleting pods runs the
termination sequence. The module ends with the field report (docs/alb-facts.md section 1) told
on this cluster: in ``ip`` mode a deleted pod costs errors until the controller's
deregistration lag passes, in ``instance`` mode kube-proxy routes around it.

Time runs five times faster (``TIME_SCALE``): a 5 s preStop takes 1 s, the controller's 10 s
lag 2 s. Skipped with the reason when the control-plane binaries are not built.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from pytest_ingress_chaos.localcluster.cluster import ClusterEvent, LocalCluster
from pytest_ingress_chaos.localcluster.controlplane import Binaries

from ..clusters import DEADLINE, binaries_or_skip, eventually, process_alive

TIME_SCALE = 0.2


def processes_mentioning(*texts: str) -> list[int]:
    """Live processes whose command line contains every one of ``texts`` (a /proc scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if all(t.encode() in cmdline for t in texts) and process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binaries() -> Binaries:
    return binaries_or_skip()


@pytest.fixture(scope="module")
def cluster(binaries: Binaries) -> Iterator[LocalCluster]:
    with LocalCluster(nodes=3, time_scale=TIME_SCALE, seed=7, binaries=binaries,
                      stand_in_nodes=True) as local:
        yield local


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> Iterator[Any]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    name = f"ingress-chaos-{uuid.uuid4().hex[:8]}-main"
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by":
                                               "pytest-ingress-chaos"}}})
    yield name
    # The kubelet stand-in confirms every pod's end, so the namespace does go away; not waited
    # for: its pods stop in the background while the next test runs.
    client.CoreV1Api(api).delete_namespace(name, grace_period_seconds=0)


# --- the manifests (docs/kubernetes-backend.md) ---------------------------------------------------


def labels_of(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "kubia", "ingress-chaos.dev/service": service}


def deployment(name: str, *, replicas: int = 3, prestop: float = 0, grace: int = 30,
               on_sigterm: str = "exit", readiness_gate: str = "") -> dict[str, Any]:
    labels = labels_of(name)
    container: dict[str, Any] = {
        "name": "kubia",
        "image": "luksa/kubia",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }
    if prestop:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", f"{prestop:g}"]}}}
    pod_spec: dict[str, Any] = {"terminationGracePeriodSeconds": grace,
                                "containers": [container]}
    if readiness_gate:  # what the controller's webhook would inject (there is none here)
        pod_spec["readinessGates"] = [{"conditionType": readiness_gate}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"ingress-chaos.dev/on-sigterm": on_sigterm}},
                "spec": pod_spec,
            },
        },
    }


def service(api: Any, namespace: str, name: str, kind: str = "ClusterIP") -> None:
    client.CoreV1Api(api).create_namespaced_service(namespace, {
        "metadata": {"name": name, "labels": labels_of(name)},
        "spec": {"type": kind, "selector": labels_of(name),
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    })


def service_and_ingress(api: Any, namespace: str, name: str, mode: str) -> None:
    """Instance mode needs a NodePort Service; ip mode works with any type."""
    service(api, namespace, name, "NodePort" if mode == "instance" else "ClusterIP")
    alb = "alb.ingress.kubernetes.io/"
    client.NetworkingV1Api(api).create_namespaced_ingress(namespace, {
        "metadata": {"name": name, "labels": labels_of(name), "annotations": {
            f"{alb}target-type": mode,
            f"{alb}scheme": "internet-facing",
            f"{alb}group.name": f"ingress-chaos-{namespace}",
            # 5 s checks (1 s here), so a new target is in service one second after it is
            # registered; the timeout must stay below the interval.
            f"{alb}healthcheck-interval-seconds": "5",
            f"{alb}healthcheck-timeout-seconds": "2",
            f"{alb}healthy-threshold-count": "2",
            f"{alb}unhealthy-threshold-count": "2",
            f"{alb}target-group-attributes": "deregistration_delay.timeout_seconds=300",
            f"{alb}load-balancer-attributes": "idle_timeout.timeout_seconds=60",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"name": "http"}}},
        }]}}]},
    })


# --- what the API says ----------------------------------------------------------------------------


def condition(pod: Any, kind: str) -> str | None:
    for c in pod.status.conditions or []:
        if c.type == kind:
            return str(c.status)
    return None


def ready_pods(api: Any, namespace: str, name: str, count: int) -> list[Any]:
    """Exactly ``count`` pods of the service, none terminating, every one Ready."""
    selector = f"ingress-chaos.dev/service={name}"

    def probe() -> list[Any] | None:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        if len(live) == count and all(condition(p, "Ready") == "True" for p in live):
            return live
        return None

    return eventually(probe, f"{count} Ready pods of {name}")


def loopback(pod: Any) -> tuple[str, int]:
    host, port = pod.metadata.annotations["ingress-chaos.dev/loopback"].split(":")
    return host, int(port)


def pid_of(pod: Any) -> int:
    return int(pod.status.container_statuses[0].container_id.removeprefix("local://"))


def ingress_url(api: Any, namespace: str, name: str) -> str:
    def probe() -> str | None:
        ingress = client.NetworkingV1Api(api).read_namespaced_ingress(name, namespace)
        balancer = ingress.status.load_balancer.ingress or []
        port = (ingress.metadata.annotations or {}).get("ingress-chaos.dev/local-port")
        return f"http://{balancer[0].ip}:{port}" if balancer and port else None

    return eventually(probe, f"the Ingress {name} has an address")


def gone(api: Any, namespace: str, pod: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_pod(pod, namespace)
    except ApiException as exc:
        return exc.status == 404
    return False


def endpoint_slices(api: Any, namespace: str, service: str) -> list[dict[str, Any]]:
    """discovery.k8s.io/v1 where served, else v1beta1 (Kubernetes 1.20)."""
    custom = client.CustomObjectsApi(api)
    for version in ("v1", "v1beta1"):
        try:
            listed = custom.list_namespaced_custom_object(
                "discovery.k8s.io", version, namespace, "endpointslices",
                label_selector=f"kubernetes.io/service-name={service}")
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        return list(listed["items"])
    raise AssertionError("no EndpointSlice API")


def get(url: str, timeout: float = 2.0) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=timeout) as http:
        return http.get(url)


def serve_every_pod(url: str, pods: list[str], timeout: float = DEADLINE) -> None:
    """Through ``url``, every one of ``pods`` answers ``You've hit <pod>``."""
    seen: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while not set(pods) <= set(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"not every pod answered through {url}: {dict(seen)}")
            with contextlib.suppress(httpx.HTTPError):
                response = http.get(url)
                if response.status_code == 200:
                    seen[response.text.strip().removeprefix("You've hit ")] += 1
            time.sleep(0.02)


def events_of(cluster: LocalCluster, pod: str, since: float) -> list[ClusterEvent]:
    return cluster.events.snapshot(since=since, subject=pod)


# --- pods -----------------------------------------------------------------------------------------


def test_deployment_becomes_running_ready_pods_with_documentation_range_ips(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    started = time.monotonic()
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("kubia-1"))
    pods = ready_pods(api, namespace, "kubia-1", 3)
    took = time.monotonic() - started
    print(f"3 pods Ready {took:.2f} s after the Deployment was created")

    ips = [p.status.pod_ip for p in pods]
    assert all(ip.startswith("198.51.100.") for ip in ips), ips
    assert len(set(ips)) == 3
    assert {p.spec.node_name for p in pods} <= set(cluster.node_names)
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.status.pod_ips[0].ip == pod.status.pod_ip
        assert {c.type: c.status for c in pod.status.conditions} == {
            "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True",
            "Ready": "True"}
        status = pod.status.container_statuses[0]
        assert (status.ready, status.restart_count, status.state.running is not None) == \
            (True, 0, True)
        host, port = loopback(pod)
        assert host == "127.0.0.1"
        assert get(f"http://{host}:{port}/").text == f"You've hit {pod.metadata.name}\n"
        assert process_alive(pid_of(pod))
    assert sorted(cluster.pids()["pods"]) >= sorted(pid_of(p) for p in pods)


def test_crashed_container_is_restarted_on_the_same_address(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("kubia-1", replicas=1))
    [pod] = ready_pods(api, namespace, "kubia-1", 1)
    os.kill(pid_of(pod), signal.SIGKILL)

    def restarted() -> Any:
        [again] = ready_pods(api, namespace, "kubia-1", 1)
        return again if again.status.container_statuses[0].restart_count == 1 else None

    again = eventually(restarted, "the container restarted and Ready")
    assert again.metadata.uid == pod.metadata.uid
    assert again.status.pod_ip == pod.status.pod_ip
    assert loopback(again) == loopback(pod)
    assert pid_of(again) != pid_of(pod)
    last = again.status.container_statuses[0].last_state.terminated
    assert (last.exit_code, last.signal) == (137, 9)
    assert get("http://{}:{}/".format(*loopback(again))).status_code == 200


def test_graceful_deletion_runs_prestop_then_sigterm_and_the_replacement_serves(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    """preStop sleep 5 s (1 s here) within a 30 s grace period: the endpoint turns terminating
    at once, the process gets SIGTERM after the preStop, exits, and only then does the pod
    leave the API; its address refuses, then blackholes."""
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("kubia-1", prestop=5))
    service(api, namespace, "kubia-1")
    pods = ready_pods(api, namespace, "kubia-1", 3)
    victim = pods[0]
    name, pid, address = victim.metadata.name, pid_of(victim), loopback(victim)
    deleted = time.monotonic()
    client.CoreV1Api(api).delete_namespaced_pod(name, namespace)

    def terminating_endpoint() -> dict[str, Any] | None:
        for slice_ in endpoint_slices(api, namespace, "kubia-1"):
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("targetRef") or {}).get("name") == name and \
                        endpoint["conditions"].get("terminating"):
                    return dict(endpoint["conditions"])
        return None

    # During the preStop the pod still serves: the 1.22+ conditions (feature gate on).
    conditions = eventually(terminating_endpoint, "a terminating endpoint", timeout=1.0)
    assert conditions == {"ready": False, "serving": True, "terminating": True}
    assert process_alive(pid)

    eventually(lambda: gone(api, namespace, name), f"{name} gone from the API")
    left = time.monotonic() - deleted
    assert not process_alive(pid)
    # The API may answer 404 a moment before the stand-in's thread hears back from its delete.
    cluster.events.wait_for(lambda e: e.kind == "pod.gone" and e.subject == name, 5,
                            since=deleted)
    events = {e.kind + (":" + e.message.split(": ")[-1] if e.kind == "pod.signal" else ""): e.at
              - deleted for e in events_of(cluster, name, deleted)}
    print("deletion sequence (s after the delete):", {k: round(v, 3) for k, v in events.items()},
          f"gone from the API at {left:.3f}")
    order = ["pod.deleting", "pod.prestop", "pod.signal:SIGTERM (exit on SIGTERM)",
             "pod.exited", "pod.gone"]
    assert [kind for kind in order if kind in events] == order, events
    assert sorted(order, key=events.__getitem__) == order
    prestop = events["pod.signal:SIGTERM (exit on SIGTERM)"] - events["pod.prestop"]
    assert 5 * TIME_SCALE * 0.9 <= prestop <= 5 * TIME_SCALE + 1.0
    exited = next(e for e in events_of(cluster, name, deleted) if e.kind == "pod.exited")
    assert "killed by SIGTERM" in exited.message

    # The replacement (the ReplicaSet's) is Ready and serves; the old address is released.
    replacements = ready_pods(api, namespace, "kubia-1", 3)
    new = [p for p in replacements if p.metadata.name not in {p.metadata.name for p in pods}]
    assert len(new) == 1
    assert get("http://{}:{}/".format(*loopback(new[0]))).text.startswith("You've hit kubia-1-")
    cluster.events.wait_for(lambda e: e.kind == "address.released" and e.subject == name, 10,
                            since=deleted)
    assert connect_times_out(address)


def connect_times_out(address: tuple[str, int]) -> bool:
    """A blackholed address: one connection may be queued, the next one hangs."""
    sockets = []
    try:
        for _ in range(2):
            sock = socket.socket()
            sockets.append(sock)
            sock.settimeout(0.5)
            try:
                sock.connect(address)
            except TimeoutError:
                return True
        return False
    finally:
        for sock in sockets:
            sock.close()


def test_sigkill_after_the_grace_period_and_at_once_when_forced(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    """An app that ignores SIGTERM is killed when its grace period (3 s, 0.6 s here) ends;
    a forced deletion (grace 0) kills it at once and removes the pod from the API at once."""
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("kubia-1", replicas=2, grace=3, on_sigterm="ignore"))
    graceful, forced = ready_pods(api, namespace, "kubia-1", 2)
    core = client.CoreV1Api(api)

    deleted = time.monotonic()
    core.delete_namespaced_pod(graceful.metadata.name, namespace)
    eventually(lambda: gone(api, namespace, graceful.metadata.name), "the graceful pod gone")
    cluster.events.wait_for(lambda e: e.kind == "pod.gone"
                            and e.subject == graceful.metadata.name, 5, since=deleted)
    events = events_of(cluster, graceful.metadata.name, deleted)
    signals = [(e.message.split(": ")[-1], e.at - deleted) for e in events
               if e.kind == "pod.signal"]
    assert [what for what, _ in signals] == [
        "SIGTERM (ignore on SIGTERM)", "SIGKILL after the 3s grace period"]
    assert signals[1][1] - signals[0][1] >= 3 * TIME_SCALE * 0.9
    assert not process_alive(pid_of(graceful))

    deleted = time.monotonic()
    core.delete_namespaced_pod(forced.metadata.name, namespace, grace_period_seconds=0)
    assert gone(api, namespace, forced.metadata.name)  # no waiting for the kubelet
    killed = cluster.events.wait_for(
        lambda e: e.subject == forced.metadata.name and e.kind == "pod.exited", 5,
        since=deleted)
    assert "killed by SIGKILL" in killed.message
    assert killed.at - deleted < 1.0
    assert not [e for e in events_of(cluster, forced.metadata.name, deleted)
                if "SIGTERM" in e.message]
    assert not process_alive(pid_of(forced))


# --- the ALB controller ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ip", "instance"])
def test_ingress_gets_an_address_and_reaches_every_pod(
    cluster: LocalCluster, api: Any, namespace: str, mode: str
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("kubia-1"))
    service_and_ingress(api, namespace, "kubia-1", mode)
    url = ingress_url(api, namespace, "kubia-1")
    assert url.startswith("http://127.0.0.1:")
    pods = ready_pods(api, namespace, "kubia-1", 3)
    serve_every_pod(url, [p.metadata.name for p in pods])

    # Deleting the Ingress closes its listener.
    client.NetworkingV1Api(api).delete_namespaced_ingress("kubia-1", namespace)
    cluster.events.wait_for(lambda e: e.kind == "alb.deleted" and e.subject == "kubia-1"
                            and namespace in e.message, 10)
    with pytest.raises(httpx.ConnectError):
        get(url)


def test_readiness_gate_turns_true_once_the_target_is_healthy(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    gate = "target-health.elbv2.k8s.aws/k8s-kubia1-abcdef"
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("kubia-1", replicas=2, readiness_gate=gate))
    service_and_ingress(api, namespace, "kubia-1", "ip")
    core = client.CoreV1Api(api)
    selector = "ingress-chaos.dev/service=kubia-1"

    def held_back() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        ok = len(pods) == 2 and all(condition(p, "ContainersReady") == "True" for p in pods)
        return pods if ok else None

    for pod in eventually(held_back, "containers ready"):
        # Not Ready before the controller registered the target and a health check passed
        # (the registration lag alone is 2 s +- 0.4 s here).
        if condition(pod, gate) != "True":
            assert condition(pod, "Ready") == "False"
    pods = ready_pods(api, namespace, "kubia-1", 2)
    assert all(condition(p, gate) == "True" for p in pods)
    healthy = {e.subject for e in cluster.events.snapshot() if e.kind == "target.healthy"}
    assert {p.metadata.name for p in pods} <= healthy


# --- the field report on the local cluster --------------------------------------------------------


def run_load(url: str, *, rate: float, duration: float, timeout: float,
             at: float, action: Callable[[], None]) -> list[tuple[float, str, str]]:
    """Open-model load (request i due at i / rate, whatever happened to the others), with
    ``action`` run in a thread ``at`` seconds in. Returns (due time, outcome, body) per
    request; the outcome is the status code, ``timeout`` or the error's class name."""

    async def load() -> list[tuple[float, str, str]]:
        loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
        async with httpx.AsyncClient(trust_env=False, timeout=timeout, limits=limits) as http:

            async def one(due: float) -> tuple[float, str, str]:
                try:
                    response = await http.get(url)
                except httpx.TimeoutException:
                    return due, "timeout", ""
                except httpx.HTTPError as exc:
                    return due, type(exc).__name__, ""
                return due, str(response.status_code), response.text.strip()

            start = loop.time()
            requests, acted = [], None
            for i in range(int(rate * duration)):
                due = i / rate
                await asyncio.sleep(max(0.0, start + due - loop.time()))
                if acted is None and due >= at:
                    acted = asyncio.ensure_future(asyncio.to_thread(action))
                requests.append(asyncio.ensure_future(one(due)))
            results = await asyncio.gather(*requests)
            if acted is not None:
                await acted
            return results

    return asyncio.run(load())


@pytest.mark.parametrize("mode", ["ip", "instance"])
def test_field_report_a_deleted_pod_costs_errors_in_ip_mode_only(
    cluster: LocalCluster, api: Any, namespace: str, mode: str
) -> None:
    """3 kubia pods that exit on SIGTERM, no preStop; one is deleted under constant load.
    ip: the ALB keeps sending to the dead pod's address until the controller's
    deregistration lag (10 s +- 2 s, 2 s +- 0.4 s here) has passed: 502s, then timeouts.
    instance: kube-proxy drops the endpoint before the kubelet's SIGTERM, no error."""
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("kubia-1"))
    service_and_ingress(api, namespace, "kubia-1", mode)
    url = ingress_url(api, namespace, "kubia-1")
    pods = ready_pods(api, namespace, "kubia-1", 3)
    serve_every_pod(url, [p.metadata.name for p in pods])  # the steady state
    victim = pods[0].metadata.name
    delete_at, lag = 1.0, 10 * TIME_SCALE
    duration = delete_at + lag * 1.2 + 1.5
    results = run_load(url, rate=50, duration=duration, timeout=1.0, at=delete_at,
                       action=lambda: client.CoreV1Api(api).delete_namespaced_pod(
                           victim, namespace))
    errors = [(due, outcome) for due, outcome, _ in results if outcome != "200"]
    served = collections.Counter(body.removeprefix("You've hit ") for _, outcome, body in results
                                 if outcome == "200")
    outcomes = collections.Counter(outcome for _, outcome in errors)
    window = f"{errors[0][0]:.2f} .. {errors[-1][0]:.2f}" if errors else "none"
    print(f"{mode}: {len(results)} requests, {len(errors)} errors {dict(outcomes)} "
          f"(window {window} s; pod deleted at {delete_at} s); served {dict(served)}")
    if mode == "ip":
        assert errors, "ip mode: the deleted pod's target was still in the target group"
        assert errors[0][0] >= delete_at
        # Deregistered by the end of the lag (+ jitter): later requests go elsewhere.
        assert errors[-1][0] <= delete_at + lag * 1.2 + 0.5, errors[-5:]
        assert set(outcomes) <= {"502", "504", "timeout"}
        dereg = cluster.events.wait_for(
            lambda e: e.kind == "target.draining" and e.subject == victim, 5)
        assert "draining for 300s" in dereg.message
    else:
        assert not errors, f"instance mode: {dict(outcomes)} at {[d for d, _ in errors][:10]}"
    assert served[victim] > 0
    assert len(served) >= 3


# --- the command ----------------------------------------------------------------------------------


def test_command_prints_the_kubeconfig_first_and_sigterm_leaves_nothing(
    binaries: Binaries, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTEST_INGRESS_KUBE_BIN": str(binaries.kube_apiserver.parent),
           "TMPDIR": str(tmp_path)}
    stderr: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_ingress_chaos.localcluster", "--nodes", "1",
         "--time-scale", str(TIME_SCALE), "--stand-in-nodes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as command:
        assert command.stderr is not None and command.stdout is not None
        reader = threading.Thread(target=lambda: stderr.extend(command.stderr or []),
                                  daemon=True)
        reader.start()
        try:
            first = command.stdout.readline().strip()
            kubeconfig = Path(first)
            assert kubeconfig.name == "kubeconfig" and kubeconfig.is_file(), (first, stderr)
            workdir = kubeconfig.parent
            assert workdir.parent == tmp_path
            with config.new_client_from_config(config_file=str(kubeconfig)) as from_file:
                core = client.CoreV1Api(from_file)
                assert [n.metadata.name for n in core.list_node().items] == ["node-1"]
                core.create_namespaced_pod("default", {
                    "metadata": {"name": "kubia-cli",
                                 "annotations": {"ingress-chaos.dev/on-sigterm": "ignore"}},
                    "spec": {"containers": [{"name": "kubia", "image": "luksa/kubia"}]}})

                def running() -> Any:
                    pod = core.read_namespaced_pod("kubia-cli", "default")
                    return pod if condition(pod, "Ready") == "True" else None

                pid = pid_of(eventually(running, "the pod runs"))
            assert process_alive(pid)
            assert processes_mentioning(str(workdir))  # etcd and the kube-* components
            signalled = time.monotonic()
            command.send_signal(signal.SIGTERM)
            assert command.wait(timeout=30) == 0
            print(f"the command stopped {time.monotonic() - signalled:.2f} s after SIGTERM")
            assert command.stdout.read() == ""  # the path was the only thing on stdout
        finally:
            if command.poll() is None:
                command.kill()
                command.wait()
            reader.join(5)
    log = "".join(stderr)
    assert "Traceback" not in log, log
    assert not process_alive(pid)
    assert not processes_mentioning(str(workdir))
    assert not processes_mentioning("sampleapp.py", "kubia-cli")
    assert not workdir.exists()
    assert not list(tmp_path.glob("pytest-ingress-kube-*"))
