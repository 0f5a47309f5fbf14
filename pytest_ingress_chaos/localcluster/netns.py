"""The network of a run's real nodes: namespaces, veths, a bridge and routes (``ip``, iproute2).

:func:`build` creates, for a :class:`~.netplan.NetPlan`:

* a **router** namespace with a bridge ``br0`` (the node network, the router at ``.1``) and
  the uplink's far end; forwarding on, inside it only;
* per node a namespace with ``lo`` up and ``eth0`` (a veth whose other end is on the router's
  bridge) at the node's InternalIP, a default route via the router, forwarding on (the CNI
  bridge inside routes its pods);
* routes in the router to each node's pod /24 via the node;
* on the machine: the uplink's near end ``icx<k>`` and one route, the slot's /19 via the router.

Nothing else on the machine changes: no address on its own interfaces, no sysctl, no iptables
rule (kube-proxy's rules are inside the node namespaces and die with them). :func:`remove`
deletes the namespaces (their interfaces, bridges and iptables rules go with them) and the
uplink (its route goes with it). :func:`in_netns` runs a function with the calling thread
moved into a namespace, which is how a socket is opened inside one (``apiforward.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from ..base.errors import BackendError
from .netplan import NetPlan

__all__ = ["NETNS_DIR", "NetnsError", "build", "in_netns", "ip", "list_netns", "remove"]

NETNS_DIR = Path("/run/netns")  # where `ip netns add` mounts a namespace (iproute2)
_CLONE_NEWNET = 0x40000000  # from <sched.h>
T = TypeVar("T")


class NetnsError(BackendError):
    """An ``ip`` command failed; the message has the command and its stderr."""


def ip(*args: str, netns: str = "", check: bool = True) -> str:
    """Run ``ip ARGS`` (inside ``netns`` when given) and return its stdout."""
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


def run_in(netns: str, command: Sequence[str], *, check: bool = True) -> str:
    """Run ``command`` inside ``netns`` (``ip netns exec``)."""
    full = ["ip", "netns", "exec", netns, *command]
    done = subprocess.run(full, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"`{' '.join(full)}` failed: {done.stderr.strip()}")
    return done.stdout


def list_netns() -> list[str]:
    """Names of the named network namespaces (``ip netns``)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def _sysctl(netns: str, key: str, value: str) -> None:
    run_in(netns, ["sysctl", "-q", "-w", f"{key}={value}"])


def build(plan: NetPlan) -> None:
    """Create the slot's router, nodes and uplink (see the module doc). Not idempotent: sweep
    the slot first (``nodesweep.sweep_slot``)."""
    router = plan.router_netns
    ip("netns", "add", router)
    ip("link", "set", "lo", "up", netns=router)
    _sysctl(router, "net.ipv4.ip_forward", "1")
    ip("link", "add", "br0", "type", "bridge", netns=router)
    ip("addr", "add", f"{plan.router_ip}/{plan.node_network.prefixlen}", "dev", "br0",
       netns=router)
    ip("link", "set", "br0", "up", netns=router)
    # The uplink: the machine's end stays here, the other end moves into the router.
    ip("link", "add", plan.host_link, "type", "veth", "peer", "name", "up0", "netns", router)
    ip("addr", "add", f"{plan.host_ip}/{plan.uplink.prefixlen}", "dev", plan.host_link)
    ip("link", "set", plan.host_link, "up")
    ip("addr", "add", f"{plan.router_uplink_ip}/{plan.uplink.prefixlen}", "dev", "up0",
       netns=router)
    ip("link", "set", "up0", "up", netns=router)
    for index in range(1, plan.nodes + 1):
        _build_node(plan, index)
    ip("route", "add", str(plan.block), "via", plan.router_uplink_ip, "dev", plan.host_link)


def _build_node(plan: NetPlan, index: int) -> None:
    router, node = plan.router_netns, plan.node_netns(index)
    ip("netns", "add", node)
    ip("link", "set", "lo", "up", netns=node)
    _sysctl(node, "net.ipv4.ip_forward", "1")
    port = f"node{index}"
    ip("link", "add", port, "netns", router, "type", "veth", "peer", "name", "eth0",
       "netns", node)
    ip("link", "set", port, "master", "br0", netns=router)
    ip("link", "set", port, "up", netns=router)
    ip("addr", "add", f"{plan.node_ip(index)}/{plan.node_network.prefixlen}", "dev", "eth0",
       netns=node)
    ip("link", "set", "eth0", "up", netns=node)
    ip("route", "add", "default", "via", plan.router_ip, netns=node)
    ip("route", "add", str(plan.pod_cidr(index)), "via", plan.node_ip(index), netns=router)


def remove(names: Iterable[str], host_links: Iterable[str]) -> list[str]:
    """Delete these namespaces and machine interfaces where they exist; what failed, said."""
    problems: list[str] = []
    existing = set(list_netns())
    for name in names:
        if name in existing:
            with contextlib.suppress(NetnsError):
                ip("netns", "delete", name)
            if name in set(list_netns()):
                problems.append(f"network namespace {name} could not be deleted")
    for link in host_links:
        if ip("link", "show", "dev", link, check=False):
            with contextlib.suppress(NetnsError):
                ip("link", "delete", link)
            if ip("link", "show", "dev", link, check=False):
                problems.append(f"interface {link} could not be deleted")
    return problems


def in_netns(name: str, function: Callable[[], T]) -> T:
    """``function()`` run with this thread inside network namespace ``name``, then back.

    ``setns`` moves only the calling thread; run this on a thread of its own (a socket made
    inside stays in that namespace wherever it is used later)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NetnsError(f"setns into {name}: {os.strerror(errno)}")
        try:
            return function()
        finally:
            if libc.setns(own, _CLONE_NEWNET) != 0:
                raise NetnsError("could not return to the original network namespace")
    finally:
        os.close(target)
        os.close(own)
