"""The local cluster's real nodes: kubelet, containerd and kube-proxy in network namespaces.

What a user of ``ingress-local-cluster`` relies on, observed from outside as a user would:
pods run as containers (``containerd-shim`` processes) with IPs from 198.18.0.0/15 that answer
``You've hit <pod>``; a NodePort answers through kube-proxy's rules; the ALB stand-in's targets
are those real addresses; a deleted pod gets its preStop hook and SIGTERM from the real kubelet;
and nothing of the run (processes, network namespaces, the uplink, mounts, cgroups) is left
after a stop, nor after a SIGKILL once the sweep ran. These need root, as real nodes do; where
they cannot run, the cluster refuses at start (tested here too) and the test fails, never skips.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from kubernetes import client

from pytest_ingress_chaos.localcluster import nodesweep
from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.controlplane import Binaries
from pytest_ingress_chaos.localcluster.netplan import NETWORK, ROOT, host_link, slot_directory
from pytest_ingress_chaos.localcluster.nodes import NodesUnavailable

from ..clusters import DEADLINE, binaries_or_skip, eventually


def _require_root() -> None:
    # Not a skip: a machine that cannot run real nodes must fail these tests loudly.
    assert os.geteuid() == 0, "real nodes need root; CI runs as root"


@pytest.fixture(scope="module")
def binaries() -> Binaries:
    return binaries_or_skip()


@pytest.fixture(scope="module")
def cluster(binaries: Binaries) -> Iterator[LocalCluster]:
    _require_root()
    # The controller's lags are the field report's (10 s +- 2 s), as for a user.
    with LocalCluster(nodes=2, seed=3, binaries=binaries) as local:
        yield local


@pytest.fixture(scope="module")
def core(cluster: LocalCluster) -> Iterator[Any]:
    with cluster.api_client() as api:
        yield client.CoreV1Api(api)


def _manifests(name: str, *, mode: str, prestop: int = 0) -> list[dict[str, Any]]:
    labels = {"app": name}
    container: dict[str, Any] = {
        "name": "app", "image": "ingress-chaos.local/kubia:1", "imagePullPolicy": "Never",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        "env": [{"name": "INGRESS_CHAOS_ON_SIGTERM", "value": "exit"}],
    }
    if prestop:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(prestop)]}}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"terminationGracePeriodSeconds": 10,
                                        "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name,
                      "annotations": {"alb.ingress.kubernetes.io/target-type": mode}},
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": name, "annotations": {
             "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "1",
             "alb.ingress.kubernetes.io/healthy-threshold-count": "2"}},
         "spec": {"ingressClassName": "alb", "defaultBackend": {
             "service": {"name": name, "port": {"number": 80}}}}},
    ]


@pytest.fixture
def app(cluster: LocalCluster, core: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    mode = getattr(request, "param", "ip")
    namespace = f"nodes-{mode}-{int(time.time() * 1000) % 100000}"
    core.create_namespace({"metadata": {"name": namespace}})
    with cluster.api_client() as api:
        from kubernetes import utils

        for manifest in _manifests("kubia", mode=mode, prestop=1):
            utils.create_from_dict(api, manifest, namespace=namespace)
    yield namespace
    core.delete_namespace(namespace)


def _ready_pods(core: Any, namespace: str, count: int = 2) -> list[Any]:
    def ready() -> list[Any] | None:
        pods = [p for p in core.list_namespaced_pod(namespace).items
                if p.metadata.deletion_timestamp is None and any(
                    c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        return pods if len(pods) >= count else None

    return eventually(ready, f"{count} Ready pods in {namespace}", timeout=60)


def _get(url: str) -> str:
    with httpx.Client(trust_env=False, timeout=3) as http:
        return http.get(url).text


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ingress_url(core: Any, cluster: LocalCluster, namespace: str) -> str:
    with cluster.api_client() as api:
        net = client.NetworkingV1Api(api)

        def port() -> str | None:
            ingress = net.read_namespaced_ingress("kubia", namespace)
            return (ingress.metadata.annotations or {}).get("ingress-chaos.dev/local-port")

        return f"http://127.0.0.1:{eventually(port, 'the ALB listens')}"


@pytest.mark.parametrize("app", ["ip", "instance"], indirect=True)
def test_pods_are_containers_on_198_18_reached_by_ip_nodeport_and_the_alb(
        cluster: LocalCluster, core: Any, app: str) -> None:
    pods = _ready_pods(core, app)
    for pod in pods:
        assert ipaddress.ip_address(pod.status.pod_ip) in NETWORK
        assert _get(f"http://{pod.status.pod_ip}:8080/") == f"You've hit {pod.metadata.name}\n"
    assert cluster.slot is not None and len(_shims_in(cluster.slot)) >= 2  # a shim per pod
    service = core.read_namespaced_service("kubia", app)
    node_port = service.spec.ports[0].node_port
    assert ipaddress.ip_address(service.spec.cluster_ip) in NETWORK
    names = {pod.metadata.name for pod in pods}
    for node in core.list_node().items:
        address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        assert ipaddress.ip_address(address) in NETWORK
        url = f"http://{address}:{node_port}/"

        def spread(url: str = url) -> bool:
            try:
                return {_get(url).split()[-1] for _ in range(20)} == names
            except httpx.HTTPError:  # kube-proxy has not written the Service's rules yet
                return False

        # kube-proxy spreads over every pod, on either node, once it synced (at most 1/s)
        eventually(spread, f"{url} reaches every pod through kube-proxy")
    url = _ingress_url(core, cluster, app)
    eventually(lambda: {_get(url).split()[-1] for _ in range(20)} == names,
               "the ALB reaches every pod", timeout=DEADLINE)


@pytest.mark.parametrize("app", ["ip", "instance"], indirect=True)
def test_the_elbv2_api_shows_the_real_targets(cluster: LocalCluster, core: Any, app: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              request: pytest.FixtureRequest) -> None:
    """aws.env, as a user sources it, reaches the ELBv2 API stand-in through boto3, and it
    names the real nodes' targets as AWS would: the pods' IPs in 198.18.0.0/15 on their
    container port (ip), the nodes at the Service's NodePort (instance)."""
    for key, value in (line.split("=", 1) for line in cluster.aws_env.read_text().splitlines()):
        monkeypatch.setenv(key, value)
    elbv2 = boto3.client("elbv2")
    pods = _ready_pods(core, app)
    with cluster.api_client() as api:
        (binding,) = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "elbv2.k8s.aws", "v1beta1", app, "targetgroupbindings")["items"]
    arn = binding["spec"]["targetGroupARN"]
    mode = request.node.callspec.params["app"]  # the fixture's value is the namespace
    assert binding["spec"]["targetType"] == mode
    if mode == "ip":
        expected = {(pod.status.pod_ip, 8080) for pod in pods}
        assert all(ipaddress.ip_address(ip) in NETWORK for ip, _ in expected)
    else:
        node_port = core.read_namespaced_service("kubia", app).spec.ports[0].node_port
        expected = {((node.spec.provider_id or "").rsplit("/", 1)[-1] or node.metadata.name,
                     node_port) for node in core.list_node().items}

    def healthy() -> bool:
        described = elbv2.describe_target_health(TargetGroupArn=arn)
        return {(t["Target"]["Id"], t["Target"]["Port"])
                for t in described["TargetHealthDescriptions"]
                if t["TargetHealth"]["State"] == "healthy"} == expected

    eventually(healthy, f"DescribeTargetHealth lists {sorted(expected)} healthy", timeout=60)


def test_deleting_a_pod_runs_its_prestop_then_the_replacement_serves(
        cluster: LocalCluster, core: Any, app: str) -> None:
    victim = _ready_pods(core, app)[0]
    deleted = time.monotonic()
    core.delete_namespaced_pod(victim.metadata.name, app)

    def gone() -> bool:
        names = {p.metadata.name for p in core.list_namespaced_pod(app).items}
        return victim.metadata.name not in names

    eventually(gone, "the pod is gone from the API", timeout=30)
    # preStop sleep 1, then SIGTERM: the sample app exits at once.
    assert time.monotonic() - deleted >= 1.0
    replacement = _ready_pods(core, app)
    assert victim.metadata.name not in {p.metadata.name for p in replacement}


def test_without_node_binaries_the_cluster_refuses_and_names_the_stand_in(
        binaries: Binaries, tmp_path: Path) -> None:
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        (tmp_path / name).symlink_to(binaries.kube_apiserver.parent / name)
    partial = Binaries(binaries.etcd, tmp_path / "kube-apiserver",
                       tmp_path / "kube-controller-manager", tmp_path / "kube-scheduler")
    with pytest.raises(NodesUnavailable, match=r"kubelet.*--stand-in-nodes"):
        LocalCluster(nodes=1, binaries=partial).start()


def _leftovers(slot: int) -> list[str]:
    found = nodesweep.leftovers(slot)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    found += [f"iptables {line}" for line in rules.splitlines() if "KUBE-" in line]
    return found


def _slots_of(pid: int) -> list[int]:
    """The slot a cluster command holds: its lock file names the holder."""
    return [int(lock.parent.name.split("-")[1]) for lock in ROOT.glob("slot-*/lock")
            if lock.read_text().strip() == str(pid)]


def _run_command_with_a_pod(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[int]]:
    command = subprocess.Popen([sys.executable, "-m", "pytest_ingress_chaos.localcluster",
                                "--nodes", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert command.stdout is not None
        kubeconfig = command.stdout.readline().strip()
        assert kubeconfig, "the command printed no kubeconfig"
        from kubernetes import config

        with config.new_client_from_config(config_file=kubeconfig) as api:
            core = client.CoreV1Api(api)
            core.create_namespaced_pod("default", {
                "metadata": {"name": "kubia"},
                "spec": {"containers": [{"name": "app", "image": "luksa/kubia:latest",
                                         "imagePullPolicy": "IfNotPresent"}]}})
            eventually(lambda: core.read_namespaced_pod("kubia", "default").status.phase
                       == "Running", "the pod runs", timeout=60)
        slots = _slots_of(command.pid)
        assert len(slots) == 1, slots
        assert _shims_in(slots[0]), "no containerd-shim runs the pod"
        return command, slots
    except BaseException:
        command.kill()
        command.wait()
        raise


def _shims_in(slot: int) -> list[int]:
    mark = str(slot_directory(slot)) + "/"
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if "containerd-shim" in _cmdline(pid) and mark in _cmdline(pid)]


def test_sigterm_stops_the_command_and_leaves_nothing(binaries: Binaries,
                                                      tmp_path: Path) -> None:
    _require_root()
    env = {**os.environ, "PYTEST_INGRESS_KUBE_BIN": str(binaries.kube_apiserver.parent),
           "TMPDIR": str(tmp_path)}
    command, (slot,) = _run_command_with_a_pod(env)
    with command:
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=60) == 0
    assert _leftovers(slot) == []
    assert not _shims_in(slot)


def test_sigkill_leaves_the_nodes_running_until_the_sweep_removes_everything(
        binaries: Binaries, tmp_path: Path) -> None:
    _require_root()
    env = {**os.environ, "PYTEST_INGRESS_KUBE_BIN": str(binaries.kube_apiserver.parent),
           "TMPDIR": str(tmp_path)}
    command, slots = _run_command_with_a_pod(env)
    with command:
        command.send_signal(signal.SIGKILL)
        command.wait()
    time.sleep(1)
    left = [item for slot in slots for item in _leftovers(slot)]
    # A SIGKILL gives no chance to clean up: the containers and their shims outlive it...
    assert any(item.startswith("netns ") for item in left), left
    swept = subprocess.run([sys.executable, "-m", "pytest_ingress_chaos.localcluster",
                            "--sweep"], capture_output=True, text=True, env=env, timeout=60)
    assert swept.returncode == 0, swept.stderr
    # ...and the sweep removes them all.
    assert [item for slot in slots for item in _leftovers(slot)] == []
    assert not [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if "containerd" in _cmdline(pid) and str(tmp_path) in _cmdline(pid)]
    assert all(not Path("/run/netns").joinpath(f"ingress-chaos-{s}-router").exists()
               for s in slots)
    assert all(not subprocess.run(["ip", "link", "show", "dev", host_link(s)],
                                  capture_output=True).stdout for s in slots)


# --- the field report, with the plugin, on real nodes -----------------------------------------

FIELD_REPORT = """
import pytest

# 60 s windows, not the field report's 20 s: a kubelet 1.20 reports a deleted pod's exit only
# when it removes the pod, 5 to 15 s after the exit on a quiet machine and over 35 s while CI
# runs other tests beside it (docs/local-cluster-nodes.md); a shorter window ends "still
# terminating".
pytestmark = [pytest.mark.kill_pods(at="5s"), pytest.mark.ingress_load(duration="60s")]

@pytest.mark.ingress_mode("instance")
@pytest.mark.ingress_slo(max_errors=None)
def test_instance_mode_pod_kill(ingress_load):
    result = ingress_load.run()
    print(f"FIGURES instance errors={result.errors} windows={result.error_windows}")
    # Real kube-proxy routes around the pod within its rule update: any error is a 502 of
    # a new connection to the exited pod, inside a fraction of a second.
    assert set(result.by_outcome) - {"200"} <= {"502"}
    assert all(w.end - w.start < 1.0 for w in result.error_windows)

@pytest.mark.ingress_mode("ip")
@pytest.mark.ingress_slo(max_errors=None)
def test_ip_mode_pod_kill_costs_errors(ingress_load):
    result = ingress_load.run()
    print(f"FIGURES ip errors={result.errors} windows={result.error_windows}")
    assert set(result.by_outcome) - {"200"} <= {"502", "504", "timeout"}
    assert result.errors > 0
    (window,) = result.error_windows
    assert 5.0 <= window.start <= 7.0 and 2.0 <= window.end - window.start <= 15.0

@pytest.mark.ingress_mode("ip")
@pytest.mark.sample_service(prestop_sleep="15s", grace_period="45s")
def test_ip_mode_with_prestop_longer_than_the_lag_passes(ingress_load):
    ingress_load.run()
"""


def test_the_field_report_on_real_nodes(pytester: pytest.Pytester, cluster: LocalCluster,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin as a user runs it (``--ingress-backend kubernetes``, aws.env sourced)
    against real nodes: during the run the pods' IPs are in 198.18.0.0/15 and containerd-shims
    run them, and the ALB's own view gives the ip-mode kill its deregistration lag."""
    for key, value in (line.split("=", 1) for line in cluster.aws_env.read_text().splitlines()):
        monkeypatch.setenv(key, value)
    pytester.makepyfile(FIELD_REPORT)
    seen_ips: set[str] = set()
    seen_shims: set[int] = set()
    done = threading.Event()

    def sample() -> None:
        with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            while not done.wait(0.5):
                for pod in core.list_pod_for_all_namespaces().items:
                    if pod.metadata.namespace.startswith("ingress-chaos-") and pod.status.pod_ip:
                        seen_ips.add(pod.status.pod_ip)
                assert cluster.slot is not None
                seen_shims.update(_shims_in(cluster.slot))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-p", "no:randomly", "-s", "--ingress-backend",
            "kubernetes", "--kubeconfig", str(cluster.kubeconfig),
            "--ingress-steady-requests", "10")
    finally:
        done.set()
        sampler.join(10)
    print("\n".join(line for line in result.outlines if "FIGURES" in line or " ok " in line))
    # Known limit (issue 15, open): a kubelet 1.20 may report a killed pod's exit only when it
    # removes the pod, sometimes after the 60 s window; that story then fails "still
    # terminating". Any other failure, and any other figure, fails this test.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 3, outcomes
    violations = [line.strip() for line in result.outlines if line.startswith("  - ")]
    assert all("still terminating" in line for line in violations), violations
    result.stdout.fnmatch_lines(["ingress-chaos: the ALB's own view (AWS API): on, region "
                                 "us-east-1, endpoint http://127.0.0.1:*"])
    result.stdout.re_match_lines([
        r"ok +instance +\d+ .*test_instance_mode_pod_kill\[instance\]",
        # errors, the disruption, its one window, then the dereg lag AWS reported
        r"(ok|FAILED) +ip +\d+ +[1-9]\d* +\S+ +\S+ +\d+\.\d\ds +"
        r".*test_ip_mode_pod_kill_costs_errors\[ip\]",
        r"(ok|FAILED) +ip +\d+ +0 +0s +- +"
        r".*test_ip_mode_with_prestop_longer_than_the_lag_passes\[ip\]",
    ])
    assert seen_ips and all(ipaddress.ip_address(ip) in NETWORK for ip in seen_ips), seen_ips
    assert seen_shims


# --- measured: the instance-mode race on real nodes ---------------------------------------------


def _rules_mention(netns_name: str, ip: str) -> bool:
    saved = subprocess.run(["ip", "netns", "exec", netns_name, "iptables-save", "-t", "nat"],
                           capture_output=True, text=True, check=True).stdout
    return f"{ip}/32" in saved or f"{ip}:" in saved


def _answers(ip: str) -> bool:
    try:
        with socket.create_connection((ip, 8080), timeout=0.2):
            return True
    except OSError:
        return False


def _measure_deletion(core: Any, namespace: str, pod: str, ip: str,
                      netns_name: str) -> dict[str, float]:
    """Seconds from the delete to each of: the pod's port refuses, its node's rules no longer
    name it, the pod is gone from the API; each watched by a thread of its own."""
    seen: dict[str, float] = {}
    probes: dict[str, Callable[[], bool]] = {
        "exit": lambda: not _answers(ip),
        "rules": lambda: not _rules_mention(netns_name, ip),
        "gone": lambda: pod not in {p.metadata.name
                                   for p in core.list_namespaced_pod(namespace).items},
    }
    deleted = time.monotonic()

    # a kubelet 1.20 takes 5 to 15 s to remove the pod from the API on a quiet machine, longer
    # on a busy one: the deadline only bounds a test that would hang
    def watch(name: str, probe: Callable[[], bool]) -> None:
        while time.monotonic() - deleted < 90:
            if probe():
                seen[name] = time.monotonic() - deleted
                return
            time.sleep(0.005)

    threads = [threading.Thread(target=watch, args=item, daemon=True) for item in probes.items()]
    core.delete_namespaced_pod(pod, namespace)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(95)
    return seen


def test_measured_delete_to_exit_and_to_kube_proxy_rules(cluster: LocalCluster,
                                                         core: Any) -> None:
    """Figures for docs/local-cluster-nodes.md: from a pod's deletion (no preStop, the app
    exits on SIGTERM) to its process gone (the kubelet's SIGTERM) and to its node's
    kube-proxy rules no longer naming it. Printed, not asserted on: not a speed test."""
    namespace = f"measure-{int(time.time() * 1000) % 100000}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        with cluster.api_client() as api:
            from kubernetes import utils

            for manifest in _manifests("kubia", mode="instance")[:2]:
                utils.create_from_dict(api, manifest, namespace=namespace)
        assert cluster.real_nodes is not None
        plan = cluster.real_nodes.plan
        figures: dict[str, list[float]] = {"exit": [], "rules": [], "gone": []}
        for _ in range(3):
            pod = _ready_pods(core, namespace)[0]
            ip, node = pod.status.pod_ip, pod.spec.node_name
            netns_name = plan.node_netns(int(node.rsplit("-", 1)[1]))
            eventually(functools.partial(_rules_mention, netns_name, ip),
                       "kube-proxy routes to the pod")
            seen = _measure_deletion(core, namespace, pod.metadata.name, ip, netns_name)
            assert set(seen) == {"exit", "rules", "gone"}, seen
            for key, value in seen.items():
                figures[key].append(round(value, 3))
        print(f"\nFIGURES delete -> pod stops answering (s): {figures['exit']}; "
              f"delete -> kube-proxy rules without it (s): {figures['rules']}; "
              f"delete -> gone from the API (s): {figures['gone']}")
    finally:
        core.delete_namespace(namespace)
