"""Run a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, controller-manager and
scheduler as child processes in a temporary directory.

Why: the Kubernetes backend must be tested against a real API server (validation, controllers,
the scheduler, watches, label selectors), and no cluster, container engine, kind or k3s is
available where this project is developed and tested. What runs is Kubernetes 1.20.2 built from
Debian bookworm's source package by ``tools/build-kube-control-plane.sh`` (the last Debian source
that can build the apiserver), against Debian's etcd.

Nodes: with ``real_nodes`` the kubelets of ``nodes.py`` register them; otherwise
:class:`ControlPlane` registers nodes through the API (Ready, with capacity, the not-ready taint
lifted) so that the scheduler binds pods to them; the pods then stay Pending until something
plays the kubelet (the stand-in of ``kubelet.py``).

Version facts callers rely on (1.20 against the current Python client):

* ``discovery.k8s.io/v1`` EndpointSlices and ``policy/v1`` are absent (v1beta1 only), so code
  must prefer v1 and fall back; the typed ``DiscoveryV1Api``/``PolicyV1Api`` answer 404.
* ``EndpointSliceTerminatingCondition`` is switched on (apiserver and controller-manager), so a
  terminating pod's endpoint stays in its slice as ready=false, serving=true, terminating=true,
  as on 1.22+ clusters, instead of vanishing at once.

Lifetime: every child runs in its own process group and, on Linux, is told by the kernel to die
(SIGKILL) when the process that started it dies, even by SIGKILL, so nothing outlives a test
session. :meth:`ControlPlane.stop` (also run at interpreter exit) terminates, then kills, every
group and removes the temporary directory; work directories left by a killed parent are removed
by the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..base.errors import BackendError
from .netplan import STAND_IN_SERVICE_CIDR

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

__all__ = ["BIN_ENV", "Binaries", "ControlPlane", "ControlPlaneError", "cache_dir", "find_binaries"]

log = logging.getLogger(__name__)

#: A directory holding kube-apiserver, kube-controller-manager and kube-scheduler.
BIN_ENV = "PYTEST_INGRESS_KUBE_BIN"
#: Tag of the build script's vendor fix (reflect2 1.0.2 / json-iterator 1.1.12). Builds without
#: it crash or corrupt memory under Go >= 1.18 whenever the apiserver pretty-prints JSON (the
#: Python client's ``pretty="true"``, curl's User-Agent) or answers YAML, so only tagged cache
#: directories are used. The build script's cache key adds what a build holds: the control plane
#: and the node binaries (kubelet, kube-proxy).
CACHE_TAG = "vendorfix1-cp-nodes"
#: The Debian source version the build script knows; preferred when several builds are cached.
KNOWN_SRC_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
BUILD_SCRIPT = "tools/build-kube-control-plane.sh"
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
#: Keeps terminating endpoints in EndpointSlices (ready=false, serving, terminating), as 1.22+ do.
FEATURE_GATES = "EndpointSliceTerminatingCondition=true"
#: Node resources: ``pods`` is required (without it every pod stays Pending, unschedulable).
NODE_RESOURCES: Mapping[str, str] = {"cpu": "8", "memory": "16Gi", "pods": "110"}

_WORKDIR_PREFIX = "pytest-ingress-kube-"
_OWNER_FILE = "owner.pid"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class ControlPlaneError(BackendError):
    """The control plane could not start; the message ends with the failing component's log."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the four programs; pass one to :class:`ControlPlane` to skip the lookup."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path


def cache_dir() -> Path:
    """Where the build script caches its builds (one ``kube-<version>-<tag>/`` each)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-ingress-chaos"


def _missing_in(bin_dir: Path) -> list[str]:
    return [c for c in KUBE_COMPONENTS if not os.access(bin_dir / c, os.X_OK)]


def _cached_bin_dir() -> Path | None:
    # The build script moves a build in with its BUILD-INFO in one rename, so a directory with
    # BUILD-INFO is complete; prefer the version we know, else the highest-sorting one.
    root = cache_dir()
    known = root / f"kube-{KNOWN_SRC_VERSION}-{CACHE_TAG}"
    candidates = [known, *sorted(root.glob(f"kube-*-{CACHE_TAG}"), reverse=True)]
    for build in candidates:
        if (build / "BUILD-INFO").is_file() and not _missing_in(build / "bin"):
            return build / "bin"
    return None


def find_binaries() -> Binaries | str:
    """The control-plane binaries, or a sentence saying why they cannot be had (a skip reason).

    ``$PYTEST_INGRESS_KUBE_BIN`` names a directory with the three kube-* binaries; otherwise the
    build script's cache is used. etcd comes from PATH, else ``/usr/bin/etcd`` (Debian's
    ``etcd-server`` package).
    """
    if not sys.platform.startswith("linux"):
        return f"the local Kubernetes control plane runs on Linux only, not {sys.platform}"
    env_dir = os.environ.get(BIN_ENV)
    bin_dir = Path(env_dir) if env_dir else _cached_bin_dir()
    if env_dir:
        missing = _missing_in(Path(env_dir))
        if missing:
            return f"${BIN_ENV}={env_dir} has no executable {', '.join(missing)}"
    if bin_dir is None:
        return (
            f"no Kubernetes control-plane binaries: set ${BIN_ENV} to a directory holding "
            f"{', '.join(KUBE_COMPONENTS)}, or build them once with `{BUILD_SCRIPT}` (as root "
            f"on Debian bookworm, 5-10 min; cached under {cache_dir()})"
        )
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(etcd, os.X_OK):
        return "etcd not found on PATH nor at /usr/bin/etcd (Debian package etcd-server)"
    return Binaries(
        etcd=Path(etcd),
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        kube_scheduler=bin_dir / "kube-scheduler",
    )


# --- child processes -------------------------------------------------------------------------


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the kernel SIGKILL the child when its parent dies (Linux).

    ``PR_SET_PDEATHSIG`` survives exec, so the Go binaries need no cooperation. The signal is
    tied to the *thread* that forked: start the control plane from a thread that outlives it
    (pytest's main thread does). If the parent died before prctl ran, the child exits at once.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return hook


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])[-max_chars:]
        return tail or "(log is empty)"

    def signal_group(self, sig: int) -> None:
        """Signal the child's process group (it leads one: start_new_session), so anything it
        forked gets the signal too. Only while the leader is not reaped: until then its pid,
        and so the group id, cannot be reused by an unrelated process."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def wait_unreaped(self, deadline: float) -> bool:
        """Wait until the child has exited (True) or the deadline passed (False), leaving it a
        zombie (WNOWAIT) so that :meth:`signal_group` stays safe until :meth:`reap`."""
        while self.proc.returncode is None:
            try:
                info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped elsewhere
                return True
            if info is not None and info.si_pid == self.proc.pid:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            self.proc.wait()


_PORT_ATTEMPTS = 4
_ADDRESS_IN_USE = "address already in use"


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is picked, so the ports are distinct.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.pop("KUBECONFIG", None)
    if platform.machine() in ("aarch64", "arm64"):
        env["ETCD_UNSUPPORTED_ARCH"] = "arm64"  # etcd 3.4 refuses to start on arm64 otherwise
    return env


def _http_get(url: str, *, context: ssl.SSLContext | None = None, token: str = "") -> int:
    """Status code of a GET, never through a proxy (everything here is on loopback)."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=2) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _write_service_account_key(path: Path) -> None:
    """An RSA key the apiserver signs service-account tokens with (its three SA flags need one)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ControlPlaneError(
                "cannot make a service-account key: neither the cryptography package nor the "
                "openssl command is available"
            ) from None
        subprocess.run(
            [openssl, "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
        )
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    path.chmod(0o600)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_workdirs(parent: Path) -> None:
    """Remove work directories whose owner died without cleaning up (SIGKILL, OOM kill)."""
    for workdir in parent.glob(f"{_WORKDIR_PREFIX}*"):
        try:
            owner = int((workdir / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            log.info("removing stale control-plane directory %s (owner %d is gone)", workdir, owner)
            shutil.rmtree(workdir, ignore_errors=True)


# --- the control plane -------------------------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler on loopback, and ``nodes``
    registered nodes named ``node-1`` .. ``node-N``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Clients authenticate with a
    static bearer token (``system:masters``, everything allowed) over TLS, trusting the
    apiserver's self-generated certificate (:attr:`ca_file`). :attr:`kubeconfig` is a file for
    kubectl or ``kubernetes.config`` (always pass it explicitly: the client reads ``KUBECONFIG``
    when imported).
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        binaries: Binaries | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        tmp_parent: str | os.PathLike[str] | None = None,
        service_cidr: str = STAND_IN_SERVICE_CIDR,
        real_nodes: bool = False,
        advertise_address: str = "",
    ) -> None:
        self.node_count = nodes
        #: The apiserver's --service-cluster-ip-range (inside 198.18.0.0/15, see netplan.py).
        self.service_cidr = service_cidr
        #: Kubelets register the nodes and the node-lifecycle controller runs; else the
        #: control plane registers Ready nodes itself and that controller is off.
        self.real_nodes = real_nodes
        #: The address the `kubernetes` Service's endpoint names (real nodes: the machine's
        #: end of their uplink, where nothing listens); else the apiserver picks one.
        self.advertise_address = advertise_address
        self.node_names = [f"node-{i}" for i in range(1, nodes + 1)]
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._binaries = binaries
        self._tmp_parent = Path(tmp_parent) if tmp_parent is not None else None
        self._children: list[_Child] = []
        self._workdir: Path | None = None
        self._port = 0
        self.token = ""
        #: Seconds from start() to each readiness milestone, and ``total``.
        self.timings: dict[str, float] = {}

    # -- public surface --

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("the control plane is not running")
        return self._workdir

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    @property
    def ca_file(self) -> Path:
        """The apiserver's self-signed serving certificate with its CA (``--cert-dir`` output)."""
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def startup_seconds(self) -> float:
        return self.timings.get("total", 0.0)

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self._children}

    def memory_kib(self) -> dict[str, int]:
        """Resident memory (VmRSS) of each running component, in KiB."""
        result: dict[str, int] = {}
        for child in self._children:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{child.proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        result[child.name] = int(line.split()[1])
        return result

    def configuration(self) -> Configuration:
        """A ``kubernetes.client.Configuration`` for this control plane, built explicitly."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.proxy = None  # loopback only: never an environment proxy
        config.verify_ssl = True
        config.ssl_ca_cert = str(self.ca_file)
        config.api_key = {"authorization": f"Bearer {self.token}"}
        return config

    def api_client(self) -> ApiClient:
        """A new ``kubernetes.client.ApiClient``; close it (``with`` block) when done."""
        from kubernetes import client

        return client.ApiClient(configuration=self.configuration())

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.server if self._workdir is not None else "stopped"
        return f"<ControlPlane {state} nodes={self.node_count}>"

    # -- start --

    def start(self) -> ControlPlane:
        if self._workdir is not None:
            raise RuntimeError("the control plane is already running")
        binaries = self._binaries or find_binaries()
        if isinstance(binaries, str):
            raise ControlPlaneError(binaries)
        parent = self._tmp_parent or Path(tempfile.gettempdir())
        _remove_stale_workdirs(parent)
        atexit.register(self.stop)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            started = time.monotonic()
            self._workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX, dir=parent))
            (self._workdir / _OWNER_FILE).write_text(str(os.getpid()))
            try:
                self._start(binaries, started)
            except ControlPlaneError as exc:
                self.stop()
                # A free port is free only until someone takes it: between our probe and the
                # component's bind, another process (a load generator's outgoing connections
                # use the same ephemeral range) may have. New ports, another try.
                if _ADDRESS_IN_USE not in str(exc) or attempt == _PORT_ATTEMPTS:
                    raise
                log.info("a port was taken before the control plane could bind it; retrying "
                         "with new ports (attempt %d of %d)", attempt + 1, _PORT_ATTEMPTS)
            except BaseException:
                self.stop()
                raise
            else:
                return self
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _mark(self, milestone: str, started: float) -> None:
        self.timings[milestone] = round(time.monotonic() - started, 3)

    def _start(self, binaries: Binaries, started: float) -> None:
        workdir = self.workdir
        etcd_port, peer_port, self._port = _free_ports(3)
        self.token = secrets.token_hex(24)
        tokens = workdir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        sa_key = workdir / "service-account.key"
        _write_service_account_key(sa_key)

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = self._spawn(
            "etcd",
            [
                str(binaries.etcd),
                "--name=default",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--logger=zap",
                # Throwaway data: skipping fsync saves seconds of startup and per-write latency.
                "--unsafe-no-fsync",
                # A lone member elects itself after one election timeout (default 1 s); nothing
                # can contest it, so a short one only shortens startup.
                "--heartbeat-interval=50",
                "--election-timeout=300",
            ],
        )
        # The apiserver starts at once: it waits for etcd by itself, and its own start-up work
        # (about 3 s) then overlaps etcd's.
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                # Not --advertise-address=127.0.0.1: the apiserver picks a host address for the
                # `kubernetes` Service's endpoints itself; nothing here connects to it.
                "--bind-address=127.0.0.1",
                f"--secure-port={self._port}",  # 1.20 has no insecure port; 0 is rejected
                f"--cert-dir={workdir / 'certs'}",  # it generates certs/apiserver.crt there
                f"--token-auth-file={tokens}",
                "--authorization-mode=AlwaysAllow",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--service-node-port-range=30000-32767",
                # 1.20 refuses to start without all three service-account flags.
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                # No kubelet mounts tokens; without this admission plugin, pods can be created
                # in a new namespace before its default ServiceAccount exists.
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--allow-privileged=true",
                f"--feature-gates={FEATURE_GATES}",
                *([f"--advertise-address={self.advertise_address}"]
                  if self.advertise_address else []),
            ],
        )

        self._wait("etcd /health", etcd, lambda: _http_get(f"{etcd_url}/health") == 200)
        self._mark("etcd", started)

        def apiserver_ready() -> bool:
            if not self.ca_file.is_file():
                return False
            context = ssl.create_default_context(cafile=str(self.ca_file))
            return _http_get(f"{self.server}/readyz", context=context, token=self.token) == 200

        self._wait("kube-apiserver /readyz", apiserver, apiserver_ready)
        self._mark("apiserver", started)
        self._write_kubeconfig()

        controller_manager = self._spawn(
            "kube-controller-manager",
            [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                # Off: the CSR and bootstrap-token controllers and ttl (nothing here uses
                # them), and with stand-in nodes nodelifecycle (it would taint and evict nodes
                # that no kubelet heartbeats); real kubelets need it to lift their not-ready
                # taint, and a node whose kubelet stops goes NotReady.
                "--controllers=*,-csrsigning,-csrapproving,-csrcleaner,-ttl,"
                "-bootstrapsigner,-tokencleaner" + ("" if self.real_nodes else ",-nodelifecycle"),
                f"--service-account-private-key-file={sa_key}",
                "--use-service-account-credentials=false",
                "--port=0",
                "--secure-port=0",
                f"--feature-gates={FEATURE_GATES}",
            ],
        )
        # The scheduler serves nothing and leaves no trace in the API until it binds a pod, so
        # it gets no readiness probe beyond "still running" (every _wait checks every child). A
        # pod created before its informers have synced (well under a second) is bound later.
        self._spawn(
            "kube-scheduler",
            [
                str(binaries.kube_scheduler),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
            ],
        )
        if not self.real_nodes:
            self._register_nodes()
            self._mark("nodes", started)

        # The controller-manager serves nothing (ports off); its service-account controller
        # creating `default/default` shows that it is connected and its informers have synced.
        context = ssl.create_default_context(cafile=str(self.ca_file))
        default_sa = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait(
            "kube-controller-manager (the default ServiceAccount)",
            controller_manager,
            lambda: _http_get(default_sa, context=context, token=self.token) == 200,
        )
        self._mark("controller-manager", started)
        self._mark("total", started)
        log.info(
            "Kubernetes control plane up at %s in %.1f s (%s); RSS KiB %s",
            self.server,
            self.startup_seconds,
            ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items() if k != "total"),
            self.memory_kib(),
        )

    def _spawn(self, name: str, args: Sequence[str]) -> _Child:
        log_path = self.workdir / "logs" / f"{name}.log"
        log_path.parent.mkdir(exist_ok=True)
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=_child_env(),
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_die_with_parent_hook(),
            )
        child = _Child(name, proc, log_path)
        self._children.append(child)
        return child

    def _wait(self, what: str, child: _Child, probe: Callable[[], bool]) -> None:
        """Poll ``probe`` until it holds; fail fast if any component exits, else at the deadline."""
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while True:
            for c in self._children:
                if c.proc.poll() is not None:
                    raise ControlPlaneError(
                        f"{c.name} exited with code {c.proc.returncode} while waiting for {what}; "
                        f"end of {c.log_path.name}:\n{c.log_tail()}"
                    )
            try:
                if probe():
                    return
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, TLS not up
                last_error = f" (last error: {exc})"
            if time.monotonic() >= deadline:
                raise ControlPlaneError(
                    f"{what} not ready after {self.startup_timeout:.0f} s{last_error}; "
                    f"end of {child.log_path.name}:\n{child.log_tail()}"
                )
            time.sleep(0.1)

    def _write_kubeconfig(self) -> None:
        # JSON is valid YAML, and kubeconfig readers (kubectl, kubernetes.config) accept it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def _register_nodes(self) -> None:
        """Create Ready nodes as a kubelet would register them, and make them schedulable.

        Admission (TaintNodesByCondition) adds the ``node.kubernetes.io/not-ready:NoSchedule``
        taint on create; without the node-lifecycle controller nothing lifts it, so we clear
        the taints. Nothing updates the Ready condition later, and nothing needs to: the
        controller that would mark silent nodes NotReady is off. Node addresses come from a
        documentation range (192.0.2.0/24): names in the API only, never connected to.
        """
        if not self.node_names:
            return
        from kubernetes import client

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.api_client() as api:
            # Any: the manifests are plain dicts, which the client accepts whatever its stubs say.
            core: Any = client.CoreV1Api(api)
            for index, name in enumerate(self.node_names, start=1):
                body: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                        },
                    },
                    # Nodes, unlike most kinds, keep the status they are created with.
                    "status": {
                        "capacity": dict(NODE_RESOURCES),
                        "allocatable": dict(NODE_RESOURCES),
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "True",
                                "reason": "KubeletReady",
                                "message": "registered by the local control plane (no kubelet)",
                                "lastHeartbeatTime": now,
                                "lastTransitionTime": now,
                            }
                        ],
                        "addresses": [
                            {"type": "InternalIP", "address": f"192.0.2.{index}"},
                            {"type": "Hostname", "address": name},
                        ],
                    },
                }
                core.create_node(body)
                core.patch_node(name, {"spec": {"taints": None}})

    # -- stop --

    def stop(self) -> None:
        """Terminate every component, kill what is left after ``stop_timeout``, remove the files.

        Safe to call more than once and from ``atexit``.
        """
        children, self._children = self._children, []
        # etcd last: an apiserver whose etcd goes away during its own shutdown hangs in it
        # (killed after stop_timeout in 3 of 4 runs measured) instead of exiting in ~1 s.
        stores = [child for child in children if child.name == "etcd"]
        for group in ([child for child in children if child not in stores], stores):
            for child in reversed(group):
                child.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            for child in group:
                if not child.wait_unreaped(deadline):
                    log.warning(
                        "%s ignored SIGTERM for %.0f s; killing it", child.name, self.stop_timeout
                    )
                # Kills the child if still running, and anything left in its group either way.
                child.signal_group(signal.SIGKILL)
                child.reap()
        atexit.unregister(self.stop)
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
