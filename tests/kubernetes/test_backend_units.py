"""The kubernetes backend's parts that need no cluster: the observers that turn watch events into
the contract's events, the watch loop's reconnects (410 Gone), the safety guard, the choice of
kubeconfig, and the sweeper's selection."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ingress_chaos.backends.kubernetes import observers, sweeper
from pytest_ingress_chaos.backends.kubernetes.apis import ApiError
from pytest_ingress_chaos.backends.kubernetes.connect import connect
from pytest_ingress_chaos.backends.kubernetes.deadline import Cancelled, Deadline
from pytest_ingress_chaos.backends.kubernetes.guard import OPT_INS, Guard, allowed_chaos
from pytest_ingress_chaos.backends.kubernetes.labels import session_labels
from pytest_ingress_chaos.backends.kubernetes.lifecycle import ExitCleanup
from pytest_ingress_chaos.backends.kubernetes.watches import ResourceWatch
from pytest_ingress_chaos.base.errors import BackendError, BackendTimeout
from pytest_ingress_chaos.base.events import EventKind
from pytest_ingress_chaos.base.units import DurationStyle, format_duration
from pytest_ingress_chaos.settings.options import CHAOS_SCOPES, SessionSettings, chaos_scopes

Obj = dict[str, Any]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, str]] = []

    def __call__(self, t: float, kind: str, subject: str, message: str) -> None:
        assert kind in set(EventKind), kind
        self.events.append((t, kind, subject, message))

    def kinds(self, subject: str | None = None) -> list[str]:
        return [kind for _, kind, s, _ in self.events if subject is None or s == subject]


def pod(name: str = "kubia-1-abc-x", *, node: str = "node-1", phase: str = "Running",
        ready: bool = False, containers_ready: bool | None = None, deleting: bool = False,
        restarts: int = 0, state: Obj | None = None, last: Obj | None = None,
        gates: bool = False) -> Obj:
    containers_ready = ready if containers_ready is None else containers_ready
    meta: Obj = {"name": name, "uid": f"uid-{name}", "creationTimestamp": "T0"}
    if deleting:
        meta.update(deletionTimestamp="T9", deletionGracePeriodSeconds=30)
    status: Obj = {"phase": phase, "podIP": "198.51.100.7", "conditions": [
        {"type": "Ready", "status": str(ready), "lastTransitionTime": "T1"},
        {"type": "ContainersReady", "status": str(containers_ready)}],
        "containerStatuses": [{"name": "app", "restartCount": restarts,
                               "state": state or {"running": {"startedAt": "T2"}},
                               **({"lastState": last} if last else {})}]}
    spec: Obj = {"nodeName": node}
    if gates:
        spec["readinessGates"] = [{"conditionType": "target-health.elbv2.k8s.aws/x"}]
    return {"metadata": meta, "spec": spec, "status": status}


# --- pods -----------------------------------------------------------------------------------


def test_pod_observer_reports_a_whole_life_in_order() -> None:
    rec = Recorder()
    watcher = observers.PodObserver(rec)
    watcher.sync([], 0.0, True)
    watcher.apply("ADDED", pod(node=""), 1.0)  # not scheduled yet: not "created"
    watcher.apply("MODIFIED", pod(), 2.0)
    watcher.apply("MODIFIED", pod(ready=True), 3.0)
    watcher.apply("MODIFIED", pod(ready=True), 3.5)  # nothing changed: nothing reported
    watcher.apply("MODIFIED", pod(ready=False, deleting=True), 4.0)
    ended = {"terminated": {"reason": "Error", "exitCode": 143, "finishedAt": "T5"}}
    watcher.apply("MODIFIED", pod(deleting=True, state=ended), 5.0)
    watcher.apply("DELETED", pod(deleting=True, state=ended), 6.0)
    assert [(t, kind) for t, kind, _, _ in rec.events] == [
        (2.0, "pod.created"), (3.0, "pod.ready"), (4.0, "pod.deleted"), (5.0, "pod.exited"),
        (6.0, "pod.gone")]
    assert "exit code 143" in rec.events[3][3]
    assert "grace 30s" in rec.events[2][3]


def test_pod_observer_not_ready_crash_restart_and_gate() -> None:
    rec = Recorder()
    watcher = observers.PodObserver(rec)
    watcher.apply("ADDED", pod(ready=True), 1.0)
    watcher.apply("MODIFIED", pod(ready=False), 2.0)  # running, no longer Ready
    ended = {"terminated": {"reason": "Error", "exitCode": 137}}
    watcher.apply("MODIFIED", pod(state=ended), 3.0)
    watcher.apply("MODIFIED", pod(restarts=1, last=ended), 4.0)
    # Crashed and restarted between two looks: both are still reported.
    watcher.apply("MODIFIED", pod(restarts=2, last=ended), 5.0)
    watcher.apply("MODIFIED", pod(containers_ready=True, gates=True, restarts=2), 6.0)
    assert rec.kinds() == ["pod.created", "pod.ready", "pod.not_ready", "pod.crashed",
                           "pod.restarted", "pod.crashed", "pod.restarted", "pod.gated"]


def test_pod_observer_reports_pods_gone_while_disconnected() -> None:
    rec = Recorder()
    watcher = observers.PodObserver(rec)
    watcher.sync([pod("a"), pod("b")], 1.0, True)
    watcher.sync([pod("b")], 2.0, False)  # a relist after a 410
    assert rec.kinds("a") == ["pod.created", "pod.gone"]
    assert rec.kinds("b") == ["pod.created"]


# --- endpoints ------------------------------------------------------------------------------


def endpoint_slice(name: str, *endpoints: tuple[str, bool, bool]) -> Obj:
    return {"metadata": {"name": name, "annotations": {observers.TRIGGER_ANNOTATION: "T7"}},
            "endpoints": [{"addresses": [f"198.51.100.{i}"], "targetRef": {"name": pod_name},
                           "conditions": {"ready": ready, "serving": ready or terminating,
                                          "terminating": terminating}}
                          for i, (pod_name, ready, terminating) in enumerate(endpoints)]}


def test_endpoint_observer_reports_transitions_and_the_ready_list() -> None:
    rec = Recorder()
    watcher = observers.EndpointSliceObserver(rec, "kubia-1")
    watcher.sync([], 0.0, True)
    watcher.apply("ADDED", endpoint_slice("s1", ("a", True, False), ("b", True, False)), 1.0)
    watcher.apply("MODIFIED", endpoint_slice("s1", ("a", False, True), ("b", True, False)), 2.0)
    watcher.apply("MODIFIED", endpoint_slice("s1", ("b", True, False)), 3.0)
    watcher.apply("DELETED", endpoint_slice("s1"), 4.0)
    assert [(t, kind, subject) for t, kind, subject, _ in rec.events] == [
        (1.0, "endpoint.ready", "a"), (1.0, "endpoint.ready", "b"),
        (1.0, "endpoints.updated", "kubia-1"),
        (2.0, "endpoint.not_ready", "a"), (2.0, "endpoints.updated", "kubia-1"),
        (3.0, "endpoint.removed", "a"),  # the ready list did not change: no update
        (4.0, "endpoint.removed", "b"), (4.0, "endpoints.updated", "kubia-1")]
    assert "terminating" in rec.events[3][3] and "T7" in rec.events[3][3]
    assert rec.events[4][3].startswith("endpoints: 1 ready (b); 1 not ready (a ")


def test_endpoint_observer_merges_slices() -> None:
    rec = Recorder()
    watcher = observers.EndpointSliceObserver(rec, "kubia-1")
    watcher.apply("ADDED", endpoint_slice("s1", ("a", True, False)), 1.0)
    watcher.apply("ADDED", endpoint_slice("s2", ("b", True, False)), 2.0)
    # An endpoint moving from one slice to the other is not reported as removed.
    watcher.apply("MODIFIED", endpoint_slice("s2", ("a", True, False), ("b", True, False)), 3.0)
    watcher.apply("MODIFIED", endpoint_slice("s1"), 4.0)
    assert rec.kinds("a") == ["endpoint.ready"]
    assert rec.events[-1][3] == "endpoints: 2 ready (a, b)"


def test_an_endpoint_change_first_catches_up_with_the_pod_that_caused_it() -> None:
    """The EndpointSlice watch delivers the terminating endpoint before the pod watch delivers
    the deletion: the pod is read afresh, its deletion reported first, at the same stamp."""
    rec = Recorder()
    ready, deleting = pod(ready=True), pod(deleting=True)
    ready["metadata"]["resourceVersion"], deleting["metadata"]["resourceVersion"] = "10", "12"
    fresh = {"kubia-1-abc-x": ready}  # what a GET answers now
    pods_seen = observers.PodObserver(rec, lambda name: fresh.get(name))
    endpoints = observers.EndpointSliceObserver(rec, "kubia-1", pods_seen.catch_up)
    pods_seen.apply("ADDED", ready, 1.0)
    endpoints.apply("ADDED", endpoint_slice("s1", ("kubia-1-abc-x", True, False)), 2.0)
    fresh["kubia-1-abc-x"] = deleting
    endpoints.apply("MODIFIED", endpoint_slice("s1", ("kubia-1-abc-x", False, True)), 3.0)
    # The pod watch delivers the deletion late: already reported, so not again.
    pods_seen.apply("MODIFIED", deleting, 3.1)
    assert rec.kinds() == ["pod.created", "pod.ready", "endpoint.ready", "endpoints.updated",
                           "pod.deleted", "endpoint.not_ready", "endpoints.updated"]
    stamps = [t for t, _, _, _ in rec.events]
    # Strictly increasing about one pod, a microsecond apart where they arrived together.
    assert stamps == sorted(stamps) and len(set(stamps)) >= 5, stamps
    assert stamps[4] == pytest.approx(3.0) and stamps[5] > stamps[4]
    # Gone, as a fresh read shows (404): late news of it from the pod watch is dropped.
    del fresh["kubia-1-abc-x"]
    endpoints.apply("MODIFIED", endpoint_slice("s1"), 4.0)
    pods_seen.apply("MODIFIED", pod(deleting=True), 4.2)
    pods_seen.apply("DELETED", pod(deleting=True), 4.3)
    assert rec.kinds()[-2:] == ["pod.gone", "endpoint.removed"]


def test_events_about_one_pod_never_go_back_in_time() -> None:
    rec = Recorder()
    pods_seen = observers.PodObserver(rec)
    assert pods_seen.catch_up("kubia-1-abc-x", 5.0) == 5.0  # another watch's event at 5.0
    pods_seen.apply("ADDED", pod(), 4.0)  # delivered later, received earlier
    assert rec.events[0][1] == "pod.created" and rec.events[0][0] > 5.0


# --- the Deployment and Events --------------------------------------------------------------


def deployment(replicas: int, revision: str, *, generation: int = 1, updated: int = 0,
               ready: int = 0, total: int | None = None) -> Obj:
    return {"metadata": {"name": "kubia-1", "generation": generation,
                         "annotations": {observers.REVISION_ANNOTATION: revision}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": generation, "replicas": replicas
                       if total is None else total, "updatedReplicas": updated,
                       "readyReplicas": ready, "availableReplicas": ready}}


def test_deployment_observer_scale_and_rollout() -> None:
    rec = Recorder()
    watcher = observers.DeploymentObserver(rec, "kubia-1")
    watcher.sync([deployment(3, "1", updated=3, ready=3)], 1.0, True)
    watcher.apply("MODIFIED", deployment(4, "1", generation=2, updated=4, ready=3), 2.0)
    watcher.apply("MODIFIED", deployment(4, "2", generation=3, updated=1, ready=4, total=5),
                  3.0)
    watcher.apply("MODIFIED", deployment(4, "2", generation=3, updated=4, ready=4, total=5),
                  4.0)  # an old pod is left: not done yet
    watcher.apply("MODIFIED", deployment(4, "2", generation=3, updated=4, ready=4), 5.0)
    assert [(t, kind) for t, kind, _, _ in rec.events] == [
        (2.0, "deployment.scaled"), (3.0, "rollout.started"), (5.0, "rollout.done")]


def k8s_event(uid: str, pod_name: str, reason: str = "Killing", count: int = 1) -> Obj:
    return {"metadata": {"uid": uid}, "involvedObject": {"kind": "Pod", "name": pod_name},
            "reason": reason, "message": "Stopping container app", "count": count,
            "lastTimestamp": "T3"}


@pytest.mark.parametrize(("prestop", "kind"), [(False, "pod.signal"), (True, "pod.prestop")])
def test_kubelet_killing_event(prestop: bool, kind: str) -> None:
    rec = Recorder()
    watcher = observers.PodEventObserver(rec, "kubia-1-", prestop)
    watcher.sync([k8s_event("old", "kubia-1-a-b")], 1.0, True)  # before the watch: not news
    watcher.apply("ADDED", k8s_event("e1", "kubia-1-a-b"), 2.0)
    watcher.apply("MODIFIED", k8s_event("e1", "kubia-1-a-b"), 2.5)  # the same occurrence
    watcher.apply("ADDED", k8s_event("e2", "kubia-10-a-b"), 3.0)  # another service's pod
    watcher.apply("ADDED", k8s_event("e3", "kubia-1-a-b", reason="Unhealthy"), 4.0)
    assert [(t, k) for t, k, _, _ in rec.events] == [(2.0, kind)]
    assert "Stopping container app" in rec.events[0][3]
    assert kind != "pod.signal" or "SIGTERM" in rec.events[0][3]


# --- the watch loop -------------------------------------------------------------------------


class FakeSocket:
    def __init__(self, hold: threading.Event | None) -> None:
        self.hold = hold

    def shutdown(self, how: int) -> None:  # what stop() does to unblock a read
        if self.hold is not None:
            self.hold.set()


class FakeResponse:
    """A watch response: its lines, then (with ``hold``) an idle connection until shut down."""

    def __init__(self, lines: list[Obj], hold: threading.Event | None = None) -> None:
        self.lines = lines
        self.hold = hold
        self.connection = type("Connection", (), {"sock": FakeSocket(hold)})()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self.lines:
            yield json.dumps(line).encode() + b"\n"
        if self.hold is not None:
            self.hold.wait(5)

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class FakeApi:
    """Lists give versions "10", "20", ...; the first watch ends in a 410 ERROR event."""

    def __init__(self) -> None:
        self.lists = 0
        self.watches: list[str] = []
        self.hold = threading.Event()

    def call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Obj:
        self.lists += 1
        return {"metadata": {"resourceVersion": str(self.lists * 10)},
                "items": [pod(f"p{self.lists}")]}

    def raw(self, what: str, method: Any, *args: Any, **kwargs: Any) -> FakeResponse:
        self.watches.append(kwargs["resource_version"])
        if len(self.watches) == 1:
            return FakeResponse([{"type": "ERROR", "object": {"code": 410, "reason": "Gone"}}])
        return FakeResponse([{"type": "ADDED", "object": pod("late")}], hold=self.hold)


class SyncLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def sync(self, items: list[Obj], now: float, initial: bool) -> None:
        self.calls.append(("sync", ([i["metadata"]["name"] for i in items], initial)))

    def apply(self, change: str, obj: Obj, now: float) -> None:
        self.calls.append((change, obj["metadata"]["name"]))


def test_watch_lists_again_after_410_and_stops_at_once() -> None:
    api, seen = FakeApi(), SyncLog()
    watch = ResourceWatch("pods", api, lambda: None, seen)  # type: ignore[arg-type]
    watch.start()
    deadline = time.monotonic() + 5
    while ("ADDED", "late") not in seen.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen.calls == [("sync", (["p1"], True)), ("sync", (["p2"], False)),
                          ("ADDED", "late")]
    assert api.watches == ["10", "20"], "the second watch must start from the relist's version"
    assert watch.relists == 1
    began = time.monotonic()
    watch.stop()
    assert time.monotonic() - began < 1.0
    assert watch.stopped


# --- SIGTERM and exit ---------------------------------------------------------------------


def test_sigterm_interrupts_like_ctrl_c_while_a_backend_lives() -> None:
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("SIGTERM already has a handler here; the backend leaves it alone")
    closed: list[str] = []
    first = ExitCleanup(lambda: closed.append("first"), "first")
    second = ExitCleanup(lambda: closed.append("second"), "second")
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs before this ends
        first.disarm()
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL, "second is still armed"
    finally:
        second.disarm()
        first.disarm()  # idempotent
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert closed == [], "close runs at exit or from pytest's teardown, not in the handler"


# --- deadlines, the guard, the kubeconfig ---------------------------------------------------


def test_deadline_poll_times_out_with_what_it_saw_and_cancels() -> None:
    with pytest.raises(BackendTimeout, match=r"waiting: not done within 0\.2 s\. still 2 left"):
        Deadline(0.2, "waiting").poll(lambda: None, lambda: "still 2 left", interval=0.05)
    cancel = threading.Event()
    deadline = Deadline(30, "rollout", cancel)
    threading.Timer(0.2, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(Cancelled, match="torn down"):
        deadline.poll(lambda: None, lambda: "")
    assert time.monotonic() - began < 2


def test_deadline_poll_retries_transient_api_errors_only() -> None:
    failures = iter([ApiError("overloaded", 503), ApiError("no answer", 0)])

    def flaky() -> bool | None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return True

    assert Deadline(5, "w").poll(flaky, lambda: "", interval=0.01) is True
    with pytest.raises(ApiError, match="forbidden"):
        Deadline(5, "w").poll(lambda: (_ for _ in ()).throw(ApiError("forbidden", 403)),
                              lambda: "")


def test_guard_refuses_pods_and_nodes_of_others_and_says_how_to_opt_in() -> None:
    guard = Guard("run1", frozenset())
    ours = {"metadata": {"name": "p", "labels": session_labels("run1", 5)}}
    guard.check_pod(ours, "delete")
    other_run = {"metadata": {"name": "q", "namespace": "n", "labels": session_labels("run2", 5)}}
    with pytest.raises(BackendError, match=r"refusing to delete pod q .*foreign-pods"):
        guard.check_pod(other_run, "delete")
    with pytest.raises(BackendError, match=r"refusing to drain node node-2.*foreign-nodes"):
        guard.check_node("node-2", 0, "kubia-1")
    guard.check_node("node-1", 1, "kubia-1")
    opted = Guard("run1", frozenset({"foreign-pods", "foreign-nodes"}))
    opted.check_pod(other_run, "delete")
    opted.check_node("node-2", 0, "kubia-1")


def test_allow_chaos_on_setting() -> None:
    assert allowed_chaos(SessionSettings()) == frozenset()  # nothing beyond the run's own
    opted = SessionSettings(allow_chaos_on=chaos_scopes("foreign-pods"))
    assert allowed_chaos(opted) == {"foreign-pods"}
    assert set(OPT_INS) == set(CHAOS_SCOPES)
    with pytest.raises(ValueError, match="foreign-pods, foreign-nodes"):
        chaos_scopes("everything")

def kubeconfig(path: Path, *contexts: str, current: str | None = None) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example:6443"}}
                     for c in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts],
        "current-context": current or contexts[0]}))
    return path


def test_connect_reads_the_kubeconfig_named_now(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    first = kubeconfig(tmp_path / "one", "a", "b")
    second = kubeconfig(tmp_path / "two", "c")
    chosen = connect(first, "b", environ={"KUBECONFIG": str(second)})
    assert (chosen.context, chosen.server) == ("b", "https://b.example:6443")
    chosen.api_client.close()
    from_env = connect(None, None, environ={"KUBECONFIG": str(second)})
    assert (from_env.context, from_env.source) == ("c", str(second))
    from_env.api_client.close()
    with pytest.raises(BackendError, match="no context 'z': expected one of a, b"):
        connect(first, "z", environ={})
    with pytest.raises(BackendError, match="found no cluster"):
        connect(None, None, environ={})


# --- the sweeper's choice -------------------------------------------------------------------


def test_sweeper_selects_only_old_namespaces_with_a_created_label() -> None:
    now = 10_000.0
    found = [sweeper.Managed("old", "r1", 1_000, False),
             sweeper.Managed("young", "r2", 9_000, False),
             sweeper.Managed("going", "r3", 1_000, True),
             sweeper.Managed("unlabelled", "r4", None, False)]
    assert [m.name for m in sweeper.expired(found, 3600, now)] == ["old"]
    age = DurationStyle.AGE
    assert format_duration(7380, age) == "2h03m" and format_duration(75, age) == "1m15s"


def test_sweeper_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        sweeper.main(["--ttl", "soon"])
    assert raised.value.code == 2
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert sweeper.main([]) == 2
    assert "found no cluster" in capsys.readouterr().err
    assert sweeper.main(["--kubeconfig", str(tmp_path / "missing")]) == 2


def test_sweep_reports_a_failed_listing_as_exit_1() -> None:
    class Unreachable:
        class core:
            list_namespace = None

        def items(self, *args: Any, **kwargs: Any) -> list[Obj]:
            raise ApiError("list namespaces: the Kubernetes API did not answer")

    out = io.StringIO()
    assert sweeper.sweep(Unreachable(), 3600, dry_run=True, out=out) == 1  # type: ignore[arg-type]
    assert "did not answer" in out.getvalue()
