"""Real nodes: per node a network namespace with containerd, a kubelet and kube-proxy.

As kind makes each node a container, :class:`RealNodes` makes each node a network namespace
created by the run (``netns.py``, addresses from ``netplan.py``), and runs in it:

* **containerd** with its own root, state, socket and config: the CRI plugin's sandbox image
  is the pause image imported beforehand, ``restrict_oom_score_adj = true`` (the process that
  runs it cannot raise a score: without it runc fails with "can't get final child's PID from
  pipe: EOF"), the pods' network namespaces mounted under its state directory, and docker.io
  mirrored to a dead loopback port so that no pull can ever leave the machine;
* **CNI** ``bridge`` + ``host-local`` (``/usr/lib/cni``) on the node's pod /24, its IPAM
  state under the node's directory;
* **kubelet** 1.20 (remote runtime, cgroupfs, no QoS cgroups) registering its node itself
  with ``--node-ip``, talking to the apiserver through ``apiforward.py``;
* **kube-proxy** 1.20 in iptables mode: its rules live in the node's namespace only, and it
  touches no conntrack sysctl (those are the machine's).

The images (``images.py``) are imported into every containerd before any kubelet starts. Every
process is started with ``PR_SET_PDEATHSIG`` (dies with the thread that started it) except what
containerd detaches (the shims and containers): :meth:`RealNodes.stop` deletes every pod
through its kubelet, kills what is left through containerd, and ends with the slot's sweep
(``nodesweep.py``), which also removes what a killed run left at the next start. The flags and
the pitfalls behind them: docs/local-cluster-nodes.md.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import images, netns, nodesweep
from .apiforward import ApiForwarder
from .controlplane import ControlPlaneError
from .netplan import NetPlan

if TYPE_CHECKING:
    from .controlplane import Binaries, ControlPlane

__all__ = ["NODE_PACKAGES", "NodesUnavailable", "RealNodes", "node_binaries", "unavailable"]

log = logging.getLogger(__name__)

#: The Debian packages the real nodes need (also installed by .ci/run).
NODE_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack",
                 "umoci", "busybox-static")
CNI_BIN_DIR = Path("/usr/lib/cni")
_PROGRAMS = {"containerd": "containerd", "ctr": "containerd", "runc": "runc",
             "iptables": "iptables", "conntrack": "conntrack", "umoci": "umoci",
             "ip": "iproute2"}
_DEAD_REGISTRY = "http://127.0.0.1:9"  # discard port, nothing listens: a pull fails at once
_KUBELET_PORT = 10250  # inside each node's namespace: no clash between nodes
_KUBE_PROXY_HEALTHZ = 10256
_KUBE_PROXY_METRICS = 10249
_PR_SET_PDEATHSIG = 1
_CLONE_NEWNET = 0x40000000
_STOP_TIMEOUT = 10.0
#: What kubelet 1.20 sets at start whatever its flags (setupKernelTunables, unless
#: --protect-kernel-defaults makes it refuse instead): machine-wide, so put back at stop.
KERNEL_TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                   "kernel/panic_on_oops", "kernel/keys/root_maxkeys",
                   "kernel/keys/root_maxbytes")


class NodesUnavailable(ControlPlaneError):
    """Real nodes cannot run on this machine; the message says why and what would help."""


def node_binaries(binaries: Binaries) -> tuple[Path, Path]:
    """kubelet and kube-proxy, built next to the control plane (by the build script)."""
    bin_dir = binaries.kube_apiserver.parent
    return bin_dir / "kubelet", bin_dir / "kube-proxy"


def unavailable(binaries: Binaries) -> str:
    """Why real nodes cannot run here, or "" when they can."""
    if os.geteuid() != 0:
        return "real nodes need root (network namespaces, mounts, containerd)"
    if not netns.NETNS_DIR.parent.is_dir() or not Path("/proc/self/ns/net").exists():
        return "this kernel offers no network namespaces"
    missing = [f"{program} (Debian package {package})" for program, package in _PROGRAMS.items()
               if shutil.which(program) is None]
    if not (CNI_BIN_DIR / "bridge").is_file():
        missing.append(f"{CNI_BIN_DIR}/bridge (Debian package containernetworking-plugins)")
    missing += [f"{path} (build it with tools/build-kube-control-plane.sh)"
                for path in node_binaries(binaries) if not os.access(path, os.X_OK)]
    if missing:
        return (f"real nodes need {', '.join(missing)}; as root on Debian: apt-get install "
                f"{' '.join(NODE_PACKAGES)}")
    return ""


def _read_tunables() -> dict[str, str]:
    values = {}
    for name in KERNEL_TUNABLES:
        with contextlib.suppress(OSError):
            values[name] = (Path("/proc/sys") / name).read_text().strip()
    return values


def _write_tunables(values: dict[str, str]) -> None:
    for name, value in values.items():
        path = Path("/proc/sys") / name
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value)


def _enter_hook(netns_name: str) -> Callable[[], None]:
    """A ``preexec_fn``: into the node's network namespace, and die with the parent thread."""
    path = str(netns.NETNS_DIR / netns_name)
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        fd = os.open(path, os.O_RDONLY)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            os._exit(126)
        os.close(fd)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return hook


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


@dataclass
class _Node:
    index: int
    name: str
    netns: str
    ip: str
    directory: Path
    processes: list[_Process] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.socket)]


class RealNodes:
    """Nodes ``node-1`` .. ``node-N`` of ``control_plane`` in slot ``slot``'s namespaces.

    :meth:`start` after the control plane is up (it needs its port and kubeconfig); returns
    once every node is Ready in the API. :meth:`stop` is idempotent."""

    def __init__(self, plan: NetPlan, control_plane: ControlPlane, binaries: Binaries,
                 *, startup_timeout: float = 90.0) -> None:
        self.plan = plan
        self.control_plane = control_plane
        self.kubelet, self.kube_proxy = node_binaries(binaries)
        self.startup_timeout = startup_timeout
        self.nodes = [
            _Node(i, f"node-{i}", plan.node_netns(i), plan.node_ip(i), plan.node_directory(i))
            for i in range(1, plan.nodes + 1)
        ]
        self._forwarder: ApiForwarder | None = None
        self._started = False
        self._tunables: dict[str, str] = {}
        #: Seconds from start() to: network, images, containerd, Ready (``total``).
        self.timings: dict[str, float] = {}

    @property
    def node_ips(self) -> dict[str, str]:
        return {node.name: node.ip for node in self.nodes}

    def pids(self) -> dict[str, list[int]]:
        """kubelet, kube-proxy and containerd pids, by component."""
        result: dict[str, list[int]] = {}
        for node in self.nodes:
            for process in node.processes:
                if process.proc.poll() is None:
                    result.setdefault(process.name, []).append(process.proc.pid)
        return result

    # --- start ------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self._started = True
        try:
            netns.build(self.plan)
            self._mark("network", started)
            tarballs = images.built_images()
            self._mark("images built", started)
            # Spawned from this thread: a child's PR_SET_PDEATHSIG fires when the *thread*
            # that forked it ends, so no pool thread may start a node's process.
            for node in self.nodes:
                self._start_containerd(node)
            with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda node: self._import_images(node, tarballs), self.nodes))
            self._mark("containerd", started)
            self._forwarder = ApiForwarder([n.netns for n in self.nodes],
                                           self._apiserver_port())
            self._forwarder.start()
            self._tunables = _read_tunables()
            for node in self.nodes:
                self._start_kubelet(node)
                self._start_kube_proxy(node)
            self._wait_ready()
            self._mark("total", started)
        except BaseException:
            self.stop()
            raise
        log.info("real nodes Ready in %.1f s (%s)", self.timings["total"],
                 ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items() if k != "total"))

    def _mark(self, milestone: str, started: float) -> None:
        self.timings[milestone] = round(time.monotonic() - started, 3)

    def _apiserver_port(self) -> int:
        return int(self.control_plane.server.rsplit(":", 1)[1])

    def _spawn(self, node: _Node, name: str, args: Sequence[str]) -> _Process:
        log_path = node.directory / f"{name}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                list(args), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                cwd=node.directory, start_new_session=True, preexec_fn=_enter_hook(node.netns),
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            )
        process = _Process(name, proc, log_path)
        node.processes.append(process)
        return process

    def _start_containerd(self, node: _Node) -> None:
        directory = node.directory
        (directory / "cni").mkdir(parents=True)
        cni = {
            "cniVersion": "0.4.0",
            "name": f"ingress-chaos-{self.plan.slot}",
            "plugins": [{
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(self.plan.pod_cidr(node.index))}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(directory / "cni-ipam"),
                },
            }],
        }
        (directory / "cni" / "10-bridge.conflist").write_text(json.dumps(cni, indent=2))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""\
version = 2
root = "{directory / 'root'}"
state = "{directory / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{node.socket}"

[ttrpc]
  address = "{directory / 'containerd.ttrpc.sock'}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / 'opt'}"

[{cri}]
  sandbox_image = "{images.PAUSE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{directory / 'cni'}"
    max_conf_num = 1
  [{cri}.registry.mirrors."docker.io"]
    endpoint = ["{_DEAD_REGISTRY}"]
"""
        (directory / "containerd.toml").write_text(config)
        self._spawn(node, "containerd",
                    ["containerd", "--config", str(directory / "containerd.toml")])

    def _import_images(self, node: _Node, tarballs: dict[str, Path]) -> None:
        process = node.processes[0]
        self._wait(f"{node.name}'s containerd socket", process,
                   lambda: node.socket.exists() and subprocess.run(
                       [*node.ctr, "version"], capture_output=True).returncode == 0)
        try:
            images.import_images(node.ctr, tarballs)
        except images.ImageError as exc:
            raise ControlPlaneError(f"{node.name}: {exc}") from exc

    def _start_kubelet(self, node: _Node) -> None:
        kubelet_dir = node.directory / "kubelet"
        kubelet_dir.mkdir()
        self._spawn(node, "kubelet", [
            str(self.kubelet),
            f"--kubeconfig={self.control_plane.kubeconfig}",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{node.socket}",
            f"--containerd={node.socket}",  # cAdvisor's: never the machine's own containerd
            "--cgroup-driver=cgroupfs",
            "--cgroups-per-qos=false",
            "--enforce-node-allocatable=",
            "--fail-swap-on=false",
            "--eviction-hard=",
            f"--root-dir={kubelet_dir}",
            f"--cert-dir={kubelet_dir / 'pki'}",
            f"--volume-plugin-dir={kubelet_dir / 'volume-plugins'}",
            f"--hostname-override={node.name}",
            f"--node-ip={node.ip}",
            f"--address={node.ip}",
            f"--port={_KUBELET_PORT}",
            "--healthz-port=0",
            "--read-only-port=0",
            "--resolv-conf=",  # pods get no DNS servers: nothing may resolve through the host
            "--make-iptables-util-chains=false",
            f"--pod-infra-container-image={images.PAUSE}",
            "--image-gc-high-threshold=100",
            "--image-gc-low-threshold=99",
            "--serialize-image-pulls=false",
            "--v=1",
        ])

    def _start_kube_proxy(self, node: _Node) -> None:
        self._spawn(node, "kube-proxy", [
            str(self.kube_proxy),
            f"--kubeconfig={self.control_plane.kubeconfig}",
            "--proxy-mode=iptables",
            f"--hostname-override={node.name}",
            f"--bind-address={node.ip}",
            f"--cluster-cidr={self.plan.block}",
            f"--nodeport-addresses={self.plan.node_network}",
            f"--healthz-bind-address={node.ip}:{_KUBE_PROXY_HEALTHZ}",
            f"--metrics-bind-address=127.0.0.1:{_KUBE_PROXY_METRICS}",
            # The conntrack table's size and timeouts are the machine's sysctls: leave them.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--oom-score-adj=0",
            "--v=1",
        ])

    def _wait(self, what: str, process: _Process, probe: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not probe():
            if process.proc.poll() is not None:
                raise ControlPlaneError(f"{process.name} exited ({process.proc.returncode}) "
                                        f"while waiting for {what}:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{what}: not within {self.startup_timeout:g} s:\n"
                                        f"{process.log_tail()}")
            time.sleep(0.1)

    def _wait_ready(self) -> None:
        from kubernetes import client

        deadline = time.monotonic() + self.startup_timeout
        with self.control_plane.api_client() as api:
            core: Any = client.CoreV1Api(api)
            while True:
                for node in self.nodes:
                    for process in node.processes:
                        if process.proc.poll() is not None:
                            raise ControlPlaneError(
                                f"{node.name}'s {process.name} exited "
                                f"({process.proc.returncode}):\n{process.log_tail()}")
                ready = {
                    item.metadata.name for item in core.list_node().items
                    if any(c.type == "Ready" and c.status == "True"
                           for c in item.status.conditions or [])
                    and not any(t.key == "node.kubernetes.io/not-ready"
                                for t in item.spec.taints or [])
                }
                if ready >= {node.name for node in self.nodes}:
                    return
                if time.monotonic() > deadline:
                    late = [n for n in self.nodes if n.name not in ready]
                    raise ControlPlaneError(
                        f"nodes not Ready within {self.startup_timeout:g} s: "
                        f"{', '.join(n.name for n in late)}; end of {late[0].name}'s kubelet "
                        f"log:\n{late[0].processes[1].log_tail()}")
                time.sleep(0.2)

    # --- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Pods, kubelets and kube-proxies, containerd, then the slot's sweep."""
        if not self._started:
            return
        self._started = False
        self._delete_pods()
        for node in self.nodes:
            self._terminate(node, ("kubelet", "kube-proxy"))
        for node in self.nodes:
            self._kill_containers(node)
            self._terminate(node, ("containerd",))
            node.processes.clear()
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder = None
        _write_tunables(self._tunables)
        problems = nodesweep.sweep_slot(self.plan.slot)
        if problems:
            log.warning("real nodes: the sweep left %s", "; ".join(problems))

    def _delete_pods(self) -> None:
        """Every pod force-deleted, so that each kubelet tears its sandboxes down (CNI DEL)."""
        if not any(p.proc.poll() is None for n in self.nodes for p in n.processes
                   if p.name == "kubelet"):
            return
        with contextlib.suppress(Exception):  # the control plane may be gone already
            from kubernetes import client

            with self.control_plane.api_client() as api:
                core: Any = client.CoreV1Api(api)
                for pod in core.list_pod_for_all_namespaces(_request_timeout=5).items:
                    with contextlib.suppress(Exception):
                        core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                                   grace_period_seconds=0, _request_timeout=5)
            deadline = time.monotonic() + _STOP_TIMEOUT
            while time.monotonic() < deadline and any(self._tasks(n) for n in self.nodes):
                time.sleep(0.2)

    def _tasks(self, node: _Node) -> list[str]:
        done = subprocess.run([*node.ctr, "-n", "k8s.io", "tasks", "list", "-q"],
                              capture_output=True, text=True, timeout=10, check=False)
        return done.stdout.split() if done.returncode == 0 else []

    def _kill_containers(self, node: _Node) -> None:
        """Whatever the kubelet left: killed and deleted through containerd (runc removes
        their cgroups, the shims exit)."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            for task in self._tasks(node):
                for command in (["tasks", "kill", "-s", "SIGKILL", task],
                                ["tasks", "delete", "-f", task],
                                ["containers", "delete", task]):
                    subprocess.run([*node.ctr, "-n", "k8s.io", *command],
                                   capture_output=True, timeout=10, check=False)

    def _terminate(self, node: _Node, names: tuple[str, ...]) -> None:
        chosen = [p for p in node.processes if p.name in names]
        for process in chosen:
            if process.proc.poll() is None:
                process.proc.terminate()
        for process in chosen:
            try:
                process.proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.proc.kill()
                process.proc.wait()
