"""The local Kubernetes control plane, run for real: etcd, kube-apiserver, controller-manager and
scheduler as processes, talked to through the official Python client over TLS.

Skipped with the reason when the binaries are not built (``tools/build-kube-control-plane.sh``).
One control plane serves the module; the lifetime tests start small ones of their own, because
they stop or kill them. There is no kubelet: pods are bound to nodes and stay Pending.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from pytest_ingress_chaos.localcluster import controlplane
from pytest_ingress_chaos.localcluster.controlplane import (
    Binaries,
    ControlPlane,
    ControlPlaneError,
)

from ..clusters import binaries_or_skip, eventually, process_alive


@pytest.fixture(scope="module")
def binaries() -> Binaries:
    return binaries_or_skip()


@pytest.fixture(scope="module")
def control_plane(binaries: Binaries) -> Iterator[ControlPlane]:
    with ControlPlane(nodes=3, binaries=binaries) as cp:
        yield cp


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[Any]:
    with control_plane.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: Any) -> str:
    # Never deleted: without a kubelet stand-in a namespace with pods stays Terminating forever.
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def test_apiserver_answers_through_the_client_and_the_kubeconfig(
    control_plane: ControlPlane, api: Any
) -> None:
    assert client.VersionApi(api).get_code().git_version == "v1.20.2"
    # The kubeconfig file works on its own (given explicitly: never the KUBECONFIG variable).
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as from_file:
        names = {ns.metadata.name for ns in client.CoreV1Api(from_file).list_namespace().items}
    assert {"default", "kube-system"} <= names
    assert control_plane.server.startswith("https://127.0.0.1:")


def test_pretty_yaml_and_curl_output_leave_the_apiserver_healthy(
    control_plane: ControlPlane, api: Any, namespace: str
) -> None:
    """Regression test of the build's vendor fix: an unfixed 1.20 apiserver built with Go >= 1.18
    crashes or corrupts memory on pretty-printed or YAML output, and JSON POSTs fail after."""
    core = client.CoreV1Api(api)
    core.list_namespace(pretty="true")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(
            context=ssl.create_default_context(cafile=str(control_plane.ca_file))
        ),
    )
    auth = {"Authorization": f"Bearer {control_plane.token}"}
    for headers in ({"Accept": "application/yaml"}, {"User-Agent": "curl/8.5.0"}):
        url = f"{control_plane.server}/api/v1/namespaces/kube-system"
        with opener.open(urllib.request.Request(url, headers={**auth, **headers})) as reply:
            assert reply.status == 200
            assert b"kube-system" in reply.read()
    for i in range(3):
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": f"after-pretty-{i}"}, "data": {"k": "v"}}
        )
    names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
    assert {"after-pretty-0", "after-pretty-1", "after-pretty-2"} <= names


def test_nodes_are_ready_and_schedulable(api: Any) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert sorted(n.metadata.name for n in nodes) == ["node-1", "node-2", "node-3"]
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert [c.status for c in ready] == ["True"], node.metadata.name
        assert not node.spec.taints, node.spec.taints
        assert not node.spec.unschedulable
        assert int(node.status.allocatable["pods"]) > 0


def test_deployment_gets_a_replicaset_and_pods_bound_by_the_scheduler(
    api: Any, namespace: str
) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "sample:1"}]},
            },
        },
    }
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment)

    replica_sets = eventually(
        lambda: apps.list_namespaced_replica_set(namespace).items, "a ReplicaSet"
    )
    assert [o.name for o in replica_sets[0].metadata.owner_references] == ["web"]

    def bound_pods() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return pods if len(pods) == 2 and all(p.spec.node_name for p in pods) else None

    pods = eventually(bound_pods, "2 pods bound to nodes")
    assert {p.spec.node_name for p in pods} <= {"node-1", "node-2", "node-3"}
    assert {p.status.phase for p in pods} == {"Pending"}  # no kubelet runs them


def test_invalid_object_is_rejected_with_422(api: Any, namespace: str) -> None:
    bad_service = {
        "metadata": {"name": "Not_A_DNS_Label"},
        "spec": {"ports": [{"port": 70000}], "selector": {"app": "web"}},
    }
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_service(namespace, bad_service)
    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    assert {c["field"] for c in status["details"]["causes"]} >= {"metadata.name"}


def test_stop_leaves_no_process_and_no_directory(binaries: Binaries) -> None:
    cp = ControlPlane(nodes=1, binaries=binaries).start()
    pids, workdir = cp.pids(), cp.workdir
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert all(process_alive(pid) for pid in pids.values())
    assert all(kib > 0 for kib in cp.memory_kib().values())
    cp.stop()
    assert not [name for name, pid in pids.items() if process_alive(pid)]
    assert not workdir.exists()
    cp.stop()  # idempotent


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a /proc scan, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and process_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("fakes", "expected", "logged"),
    [
        (
            {"kube_apiserver": "echo 'fake apiserver: bad flag'; exit 3"},
            "kube-apiserver exited with code 3",
            "fake apiserver: bad flag",
        ),
        (
            {"etcd": "echo 'fake etcd: stuck'; exec sleep 60", "kube_apiserver": "exec sleep 60"},
            "etcd /health not ready after 2 s",
            "fake etcd: stuck",
        ),
    ],
    ids=["exits", "hangs"],
)
def test_a_failed_start_reports_the_log_and_leaves_nothing(
    binaries: Binaries, tmp_path: Path, fakes: dict[str, str], expected: str, logged: str
) -> None:
    for field, body in fakes.items():
        script = tmp_path / f"fake-{field}"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
        binaries = replace(binaries, **{field: script})
    cp = ControlPlane(nodes=1, binaries=binaries, startup_timeout=2, tmp_parent=tmp_path)
    with pytest.raises(ControlPlaneError, match=expected) as caught:
        cp.start()
    assert logged in str(caught.value)  # the tail of the failing component's log
    assert not list(tmp_path.glob("pytest-ingress-kube-*"))
    assert not processes_mentioning(str(tmp_path))


def test_components_die_with_a_killed_parent(binaries: Binaries, tmp_path: Path) -> None:
    """Even SIGKILL of the Python process that started them (no atexit, no finally) takes the
    components down, and the next start removes the work directory left behind."""
    script = textwrap.dedent(
        """
        import json, sys, time
        from pathlib import Path
        from pytest_ingress_chaos.localcluster.controlplane import (
            Binaries, ControlPlane)
        cp = ControlPlane(nodes=0, binaries=Binaries(*map(Path, sys.argv[1:5])),
                          tmp_parent=sys.argv[5]).start()
        print(json.dumps({"pids": cp.pids(), "workdir": str(cp.workdir)}), flush=True)
        time.sleep(600)
        """
    )
    args = [str(p) for p in vars(binaries).values()]
    parent = subprocess.Popen(
        [sys.executable, "-c", script, *args, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        started = json.loads(parent.stdout.readline())
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    pids: dict[str, int] = started["pids"]
    assert len(pids) == 4
    eventually(
        lambda: not [pid for pid in pids.values() if process_alive(pid)],
        f"components gone after their parent was killed: {pids}",
        timeout=10,
    )
    workdir = Path(started["workdir"])
    assert workdir.is_dir()
    controlplane._remove_stale_workdirs(tmp_path)
    assert not workdir.exists()


def test_a_port_taken_before_the_apiserver_binds_it_is_retried(
        binaries: Binaries, monkeypatch: pytest.MonkeyPatch) -> None:
    """A free port is free only until someone takes it (on a busy CI machine, a load
    generator's outgoing connections share the ephemeral range): the first attempt gets an
    apiserver port that is taken, the start retries with new ports and comes up."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picked: list[list[int]] = []
    real = controlplane._free_ports

    def first_one_taken(count: int) -> list[int]:
        ports = real(count)
        if not picked:
            ports[-1] = taken.getsockname()[1]  # the apiserver's secure port
        picked.append(ports)
        return ports

    monkeypatch.setattr(controlplane, "_free_ports", first_one_taken)
    try:
        with ControlPlane(nodes=1, binaries=binaries) as cp:
            assert cp.server.endswith(f":{picked[-1][-1]}")
            api = client.CoreV1Api(cp.api_client())
            assert [node.metadata.name for node in api.list_node().items] == ["node-1"]
    finally:
        taken.close()
    assert len(picked) == 2
