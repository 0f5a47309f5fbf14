"""Slots of the real nodes, and the sweep that removes everything a run of one left behind.

A run holds its slot (``netplan.py``) with an exclusive ``flock`` on ``<slot dir>/lock`` for as
long as it lives; the kernel drops the lock when the process dies, however it dies. So a slot
whose lock can be taken but whose directory, namespaces or interface still exist belongs to a
run that was killed: :func:`acquire_slot` sweeps it before use, and ``ingress-local-cluster
--sweep`` sweeps every free slot.

:func:`sweep_slot` removes, in this order (the order found to leave nothing,
docs/local-cluster-nodes.md):

1. **processes**: every process whose command line names the slot's directory (containerd,
   its shims, kubelet, kube-proxy), whose root is under it (the containers) or whose network
   namespace is one of the slot's, SIGKILLed until none is left; their cgroups are noted;
2. **mounts** under the slot's directory (overlay root filesystems, sandbox shm, the pods'
   network namespaces), deepest first, detached (``umount -l``);
3. **network namespaces** of the slot (their veths, bridges and iptables rules go with them)
   and the machine's end of the uplink (its route goes with it);
4. the noted **cgroups** that are empty now;
5. the pods' logs and the CNI's cached results, which kubelet 1.20 and libcni write to fixed
   paths of the machine (``/var/log/pods``, ``/var/log/containers``, ``/var/lib/cni``);
6. the slot's **directory** (its lock file stays: it is the slot).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import BackendError
from . import netns
from .netplan import SLOTS, host_link, slot_directory

__all__ = ["Slot", "SlotsBusy", "acquire_slot", "leftovers", "sweep_all", "sweep_slot"]

log = logging.getLogger(__name__)

_LOCK = "lock"
_MNT_DETACH = 2  # from <sys/mount.h>
_KILL_ROUNDS = 50
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_TASKS = "node-*/state/io.containerd.runtime.v2.task/k8s.io/*"
#: Where kubelet 1.20 and the CNI library write, whatever their flags (hard-coded paths):
#: pod logs (and their links), and the cached results of the CNI plugins.
POD_LOGS = Path("/var/log/pods")
CONTAINER_LOGS = Path("/var/log/containers")
CNI_RESULTS = Path("/var/lib/cni/results")


class SlotsBusy(BackendError):
    """Every slot is held by a running local cluster."""


@dataclass
class Slot:
    """A slot held by this process: the lock's file descriptor keeps it."""

    index: int
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the flock
            self.fd = -1


def _try_lock(index: int) -> int | None:
    directory = slot_directory(index)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire_slot() -> Slot:
    """The first free slot, swept of what a killed run left in it."""
    for index in range(SLOTS):
        fd = _try_lock(index)
        if fd is None:
            continue
        try:
            problems = sweep_slot(index)
        except BaseException:
            os.close(fd)
            raise
        if problems:
            log.warning("slot %d: the sweep left %s", index, "; ".join(problems))
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return Slot(index, fd)
    raise SlotsBusy(f"all {SLOTS} slots of real nodes are in use by running local clusters")


def sweep_all() -> dict[int, list[str]]:
    """Sweep every slot no running cluster holds; what could not be removed, per slot."""
    results: dict[int, list[str]] = {}
    for index in range(SLOTS):
        if not slot_directory(index).exists() and not _slot_netns(index):
            continue
        fd = _try_lock(index)
        if fd is None:
            continue  # a live run's
        try:
            results[index] = sweep_slot(index)
        finally:
            os.close(fd)
    return results


def _slot_netns(index: int) -> list[str]:
    prefix = f"ingress-chaos-{index}-"
    return [name for name in netns.list_netns() if name.startswith(prefix)]


def _read(path: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def _container_ids(directory: Path) -> set[str]:
    """The containers (and sandboxes) the slot's containerds run: one task directory each."""
    return {task.name for task in directory.glob(_TASKS) if task.is_dir()}


def _pod_uids(directory: Path) -> set[str]:
    """The pods the slot's kubelets ran: one directory each under their root."""
    return {pod.name for pod in directory.glob("node-*/kubelet/pods/*") if pod.is_dir()}


def _in_container(pid: int, ids: set[str]) -> bool:
    """A container's process sees ``/`` as its root, so it is known by its cgroup, which
    containerd names after the container (``/k8s.io/<id>``)."""
    return any(line.rsplit("/", 1)[-1] in ids
               for line in _read(f"/proc/{pid}/cgroup").splitlines())


def _processes_of(directory: Path, netns_inodes: set[int],
                  ids: set[str] | None = None) -> dict[int, bool]:
    """Pids of the slot's processes (see the module doc), never this process's: True for a
    container's."""
    mark = str(directory) + "/"
    ids = _container_ids(directory) if ids is None else ids
    found: dict[int, bool] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
        try:
            root = os.readlink(f"/proc/{pid}/root")
            net = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            root, net = "", 0
        container = root.startswith(mark) or _in_container(pid, ids)
        if mark in cmdline or container or net in netns_inodes:
            found[pid] = container
    return found


def _cgroups_of(pid: int) -> set[Path]:
    paths = set()
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if path in ("", "/"):
            continue
        for controller in (controllers.split(",") if controllers else ["unified"]):
            name = controller.removeprefix("name=")
            paths.add(_CGROUP_ROOT / name / path.lstrip("/"))
    return paths


def _kill_all(directory: Path, netns_inodes: set[int]) -> tuple[set[Path], list[str]]:
    cgroups: set[Path] = set()
    ids = _container_ids(directory)
    for _ in range(_KILL_ROUNDS):
        pids = _processes_of(directory, netns_inodes, ids)
        if not pids:
            return cgroups, []
        for pid, container in pids.items():
            if container:  # only a container's cgroup is the slot's own
                cgroups |= _cgroups_of(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    left = sorted(_processes_of(directory, netns_inodes, ids))
    return cgroups, [f"processes still running: {left}"]


def _mounts_under(prefixes: list[str]) -> list[str]:
    points = []
    for line in _read("/proc/self/mountinfo").splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p.rstrip("/") or point.startswith(p) for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _unmount(prefixes: list[str]) -> list[str]:
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(3):  # a mount may hide another at the same point
        points = _mounts_under(prefixes)
        if not points:
            return []
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)
    left = _mounts_under(prefixes)
    return [f"mounts left: {', '.join(left)}"] if left else []


def sweep_slot(index: int) -> list[str]:
    """Remove what any run of slot ``index`` left (the caller holds the slot's lock); returns
    what could not be removed (empty when the slot is clean)."""
    directory = slot_directory(index)
    names = _slot_netns(index)
    inodes = set()
    for name in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(netns.NETNS_DIR / name).st_ino)
    pods, containers = _pod_uids(directory), _container_ids(directory)
    cgroups, problems = _kill_all(directory, inodes)
    problems += _unmount([str(directory) + "/"])
    problems += netns.remove(names, [host_link(index)])
    for cgroup in sorted(cgroups, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            cgroup.rmdir()
    _remove_shared_cgroup_parents(index)
    _remove_files(index, pods, containers)
    if directory.exists():
        for child in directory.iterdir():
            if child.name == _LOCK:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    if names or cgroups:
        log.info("slot %d swept: %d network namespaces, %d cgroups", index, len(names),
                 len(cgroups))
    return problems


def _remove_shared_cgroup_parents(index: int) -> None:
    """containerd puts every container's cgroup under ``<controller>/k8s.io/``, whichever run
    it belongs to: that parent is removed (when empty) only while no other slot is held, so
    that no run is creating a container in it meanwhile."""
    held = []
    try:
        for other in range(SLOTS):
            if other == index or not slot_directory(other).exists():
                continue
            fd = _try_lock(other)
            if fd is None:
                return  # another run is live
            held.append(fd)
        for parent in _CGROUP_ROOT.glob("*/k8s.io"):
            with contextlib.suppress(OSError):
                parent.rmdir()
    finally:
        for fd in held:
            os.close(fd)


def _remove_files(index: int, pods: set[str], containers: set[str]) -> None:
    """The slot's pod logs and CNI results (see POD_LOGS), by pod UID, container ID and the
    slot's CNI network name."""
    for link in CONTAINER_LOGS.glob("*.log"):
        target = os.readlink(link) if link.is_symlink() else ""
        if any(target.startswith(f"{POD_LOGS}/") and target.split("/")[4].endswith(f"_{uid}")
               for uid in pods) or link.stem.rsplit("-", 1)[-1] in containers:
            link.unlink(missing_ok=True)
    for uid in pods:
        for pod_dir in POD_LOGS.glob(f"*_{uid}"):
            shutil.rmtree(pod_dir, ignore_errors=True)
    for result in CNI_RESULTS.glob("*"):
        if result.name.startswith(f"ingress-chaos-{index}-") or \
                any(container in result.name for container in containers):
            result.unlink(missing_ok=True)


def leftovers(index: int) -> list[str]:
    """What of slot ``index`` exists now (for tests and ``--sweep``): namespaces, the uplink,
    mounts, processes."""
    directory = slot_directory(index)
    found = [f"netns {name}" for name in _slot_netns(index)]
    if netns.ip("link", "show", "dev", host_link(index), check=False):
        found.append(f"interface {host_link(index)}")
    found += [f"mount {point}" for point in _mounts_under([str(directory) + "/"])]
    found += [f"process {pid}" for pid in sorted(_processes_of(directory, set()))]
    return found
