"""The local cluster's stand-ins, part by part, without a control plane (always run).

The informer's list/watch/410 handling runs against ``httpx.MockTransport``: a fresh apiserver
never expires a resource version (its watch cache holds all history), so the relist path cannot
be reached on the real one without restarting it. The rest are the pure functions that read
manifests: annotations, preStop hooks, node eligibility, pod IPs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pytest_ingress_chaos.backends.sim.dataplane import SimTimings
from pytest_ingress_chaos.base.clock import TestClock
from pytest_ingress_chaos.base.errors import SettingsError
from pytest_ingress_chaos.localcluster.albcontroller import IngressConfig, node_eligible
from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.cluster import main as cluster_main
from pytest_ingress_chaos.localcluster.kubeapi import Informer, KubeApi
from pytest_ingress_chaos.localcluster.kubelet import Kubelet, prestop_sleep


def pod(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}}


def lines(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


async def forever() -> AsyncIterator[bytes]:
    await asyncio.Event().wait()
    yield b""  # pragma: no cover


def run_informer(replies: list[httpx.Response], until: int) -> tuple[list[str], Informer,
                                                                     list[httpx.Request]]:
    """Serve ``replies`` in order (the last one again and again); stop after ``until``
    handler calls."""
    requests: list[httpx.Request] = []
    seen: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return replies[min(len(requests), len(replies)) - 1]

    async def main() -> Informer:
        api = KubeApi("https://127.0.0.1:1", "token", None, transport=httpx.MockTransport(handle))
        done = asyncio.Event()

        def handler(kind: str, obj: dict[str, Any]) -> None:
            seen.append(f"{kind} {obj['metadata']['name']}")
            if len(seen) >= until:
                done.set()

        informer = Informer(api, "/api/v1/pods", handler)
        task = asyncio.ensure_future(informer.run())
        await asyncio.wait_for(done.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await api.aclose()
        return informer

    informer = asyncio.run(main())
    return seen, informer, requests


def test_informer_relists_after_an_expired_version_and_reports_what_vanished() -> None:
    replies = [
        httpx.Response(200, json={"metadata": {"resourceVersion": "10"},
                                  "items": [pod("a", "1"), pod("b", "2")]}),
        httpx.Response(200, content=lines(
            {"type": "ADDED", "object": pod("c", "11")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
            {"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                         "message": "too old resource version"}})),
        httpx.Response(200, json={"metadata": {"resourceVersion": "20"},
                                  "items": [pod("a", "15"), pod("c", "11")]}),
        httpx.Response(200, content=forever()),
    ]
    seen, informer, requests = run_informer(replies, until=5)
    assert seen == ["ADDED a", "ADDED b", "ADDED c", "DELETED b", "MODIFIED a"]
    assert informer.relists == 1
    assert sorted(informer.items) == [("ns", "a"), ("ns", "c")]
    watches = [r.url.params for r in requests if r.url.params.get("watch") == "true"]
    assert [w["resourceVersion"] for w in watches[:2]] == ["10", "20"]


def test_informer_resumes_an_ended_watch_and_relists_on_a_410_reply() -> None:
    replies = [
        httpx.Response(200, json={"metadata": {"resourceVersion": "10"}, "items": []}),
        httpx.Response(200, content=lines({"type": "ADDED", "object": pod("a", "11")})),
        httpx.Response(410, json={"kind": "Status", "code": 410}),
        httpx.Response(200, json={"metadata": {"resourceVersion": "30"},
                                  "items": [pod("a", "11"), pod("b", "29")]}),
        httpx.Response(200, content=forever()),
    ]
    seen, _, requests = run_informer(replies, until=2)
    assert seen == ["ADDED a", "ADDED b"]  # a unchanged by the relist: not reported again
    versions = [r.url.params.get("resourceVersion") for r in requests]
    assert versions[:4] == [None, "10", "11", None]  # resumed from the last event, then list


BASE = SimTimings(clock=TestClock(0.5))


def ingress(annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "web", "annotations": annotations},
            "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [
                {"path": "/", "backend": {"service": {"name": "kubia", "port": {"number": 80}}}}
            ]}}]}}


def test_ingress_annotations_set_the_target_group_and_the_service_wins() -> None:
    alb = "alb.ingress.kubernetes.io/"
    config, problems = IngressConfig.parse(ingress({
        f"{alb}target-type": "ip",
        f"{alb}healthcheck-interval-seconds": "5",
        f"{alb}healthcheck-timeout-seconds": "2",
        f"{alb}healthy-threshold-count": "3",
        f"{alb}unhealthy-threshold-count": "4",
        f"{alb}target-group-attributes": "deregistration_delay.timeout_seconds=30, "
                                         "load_balancing.algorithm.type=least_outstanding_requests",
        f"{alb}load-balancer-attributes": "idle_timeout.timeout_seconds=120",
    }), {"metadata": {"annotations": {f"{alb}target-type": "instance",
                                      f"{alb}healthcheck-path": "/healthz",
                                      f"{alb}load-balancer-attributes": "ignored=1"}},
         "spec": {"type": "NodePort", "externalTrafficPolicy": "Local"}}, BASE)
    assert problems == []
    assert config is not None
    assert (config.mode, config.service, config.namespace) == ("instance", "kubia", "ns")
    assert (config.algorithm, config.health_check_path, config.local) == \
        ("least_outstanding_requests", "/healthz", True)
    t = config.timings
    assert (t.health_check_interval, t.health_check_timeout, t.healthy_threshold,
            t.unhealthy_threshold, t.deregistration_delay, t.idle_timeout, t.time_scale) == \
        (5.0, 2.0, 3, 4, 30.0, 120.0, 0.5)


def test_ingress_defaults_are_the_controllers_and_bad_values_are_reported() -> None:
    config, problems = IngressConfig.parse(ingress({}), None, BASE)
    assert config is not None
    assert (config.mode, config.timings) == ("instance", BASE)
    config, problems = IngressConfig.parse(ingress({
        "alb.ingress.kubernetes.io/target-type": "pod",
        "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "often",
    }), None, BASE)
    assert config is not None and config.mode == "instance"
    assert problems == ["target-type 'pod' is not ip or instance; using instance",
                        "healthcheck-interval-seconds='often' is not a number"]
    no_backend = {"metadata": {"namespace": "ns", "name": "x"}, "spec": {}}
    assert IngressConfig.parse(no_backend, None, BASE)[0] is None
    # A rule whose backend is a controller action (the plugin's IngressGroup anchor).
    action = ingress({})
    action["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
        "name": "use-annotation"}
    assert IngressConfig.parse(action, None, BASE) == (None, [
        "backend kubia is an action (use-annotation): actions are not modelled, no listener"])


def test_the_rules_http_header_conditions_are_read_and_others_reported() -> None:
    """conditions.<backend service> holds the rule's conditions; only http-header ones are
    modelled, the rest are said, not silently dropped."""
    key = "alb.ingress.kubernetes.io/conditions.kubia"
    header = {"field": "http-header",
              "httpHeaderConfig": {"httpHeaderName": "X-Route", "values": ["a", "b"]}}
    path = {"field": "path-pattern", "pathPatternConfig": {"values": ["/x"]}}
    config, problems = IngressConfig.parse(ingress({key: json.dumps([header, path])}), None,
                                           BASE)
    assert config is not None and config.conditions == (("X-Route", ("a", "b")),)
    assert problems == [f"condition {path!r} is not an http-header condition: not modelled, "
                        "ignored"]
    other = "alb.ingress.kubernetes.io/conditions.someone-else"  # another backend's rule
    assert IngressConfig.parse(ingress({other: json.dumps([header])}), None,
                               BASE)[0].conditions == ()  # type: ignore[union-attr]
    _, problems = IngressConfig.parse(ingress({key: "[{"}), None, BASE)
    assert problems == ["conditions annotation '[{' is not JSON; ignored"]


@pytest.mark.parametrize(("command", "expected"), [
    (["sleep", "15"], (15.0, "")),
    (["/bin/sleep", "2.5"], (2.5, "")),
    (["sh", "-c", "sleep 7"], (7.0, "")),
    (None, (0.0, "")),
])
def test_prestop_sleep_is_read_from_exec_hooks(command: list[str] | None,
                                               expected: tuple[float, str]) -> None:
    container: dict[str, Any] = {"name": "app"}
    if command is not None:
        container["lifecycle"] = {"preStop": {"exec": {"command": command}}}
    assert prestop_sleep(container) == expected


def test_other_prestop_hooks_are_reported_as_unsupported() -> None:
    seconds, note = prestop_sleep(
        {"lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}})
    assert seconds == 0 and "not supported" in note and "nginx" in note
    seconds, note = prestop_sleep({"lifecycle": {"preStop": {"httpGet": {"path": "/stop"}}}})
    assert seconds == 0 and "httpGet" in note


def node(ready: str = "True", labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None, unschedulable: bool = False
         ) -> dict[str, Any]:
    return {"metadata": {"name": "node-1", "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_node_eligibility_keeps_cordoned_nodes_as_v2_controllers_do() -> None:
    assert node_eligible(node())
    assert node_eligible(node(unschedulable=True))  # docs/alb-facts.md section 7
    assert not node_eligible(node(ready="False"))
    assert not node_eligible(node(ready="Unknown"))
    assert not node_eligible(node(
        labels={"node.kubernetes.io/exclude-from-external-load-balancers": ""}))
    assert not node_eligible(node(taints=[{"key": "ToBeDeletedByClusterAutoscaler",
                                           "effect": "NoSchedule"}]))


def test_pod_ips_are_unique_among_live_pods_and_not_reused_at_once() -> None:
    kubelet = Kubelet(KubeApi("https://127.0.0.1:1", "t", None), ["node-1"], BASE,
                      lambda *args: None)
    first = [kubelet.allocate_ip() for _ in range(3)]
    assert first == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    kubelet.release_ip("198.51.100.2")
    assert kubelet.allocate_ip() == "198.51.100.4"  # round robin: .2 is not handed out again
    assert kubelet.allocate_ip("198.51.100.9") == "198.51.100.9"  # a pod's earlier IP kept
    assert kubelet.allocate_ip("198.51.100.9") == "198.51.100.5"  # ... unless taken
    for _ in range(254 - 5):
        kubelet.allocate_ip()
    with pytest.raises(RuntimeError, match="no free pod IP"):
        kubelet.allocate_ip()


def test_events_about_a_finished_pod_do_not_start_it_again() -> None:
    """Our own last status patch comes back after the confirming delete; it must not look
    like a new pod to run."""
    kubelet = Kubelet(KubeApi("https://127.0.0.1:1", "t", None), ["node-1"], BASE,
                      lambda *args: None)
    kubelet.finished["uid-1"] = None
    old = {"metadata": {"uid": "uid-1", "namespace": "ns", "name": "p",
                        "deletionTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]}}
    kubelet._on_pod("MODIFIED", old)
    assert kubelet.workers == {}


def test_signalling_a_process_twice_keeps_its_exit_status() -> None:
    """``Process.send_signal`` polls first and can reap a process that has just died, so
    asyncio would report exit code 255; the kubelet signals by pid."""
    from pytest_ingress_chaos.localcluster.kubelet import _kill

    async def main() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(30)")
        _kill(process, signal.SIGKILL)
        await asyncio.sleep(0.05)  # dead; perhaps not reaped yet
        _kill(process, signal.SIGKILL)
        return await process.wait()

    assert asyncio.run(main()) == -signal.SIGKILL


@pytest.mark.parametrize("scale", ["0", "0.001", "20"])
def test_the_local_cluster_takes_the_time_scale_range_of_the_options(
        scale: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same range and message as --ingress-time-scale: a cluster at another scale than the
    tests would be of no use to them."""
    with pytest.raises(SystemExit) as exited:
        cluster_main(["--time-scale", scale])
    assert exited.value.code == 2
    assert f"argument --time-scale: expected a number from 0.01 to 10, got '{scale}'" \
        in capsys.readouterr().err
    with pytest.raises(SettingsError, match=r"LocalCluster\(time_scale=20.0\): expected a number"):
        LocalCluster(time_scale=20.0)


@pytest.mark.parametrize(("args", "says"), [
    (["--nodes", "100000"],
     "argument --nodes: expected a whole number from 1 to 100, got '100000'"),
    (["--nodes", "0"], "argument --nodes: expected a whole number from 1 to 100, got '0'"),
    (["--registration-lag", "nan"],
     "argument --registration-lag: expected a number from 0 to 600 seconds, got 'nan'"),
    (["--kubelet-lag", "-1"],
     "argument --kubelet-lag: expected a number from 0 to 600 seconds, got '-1'"),
])
def test_the_local_cluster_refuses_flags_out_of_range(
        args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked like every other setting (issue 14): a NaN lag or 100,000 nodes was accepted."""
    with pytest.raises(SystemExit) as exited:
        cluster_main(args)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
