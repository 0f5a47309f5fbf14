"""Where a run of the local cluster's real nodes lives: its slot, its addresses, its names.

Every address of the real nodes comes from 198.18.0.0/15 (RFC 2544, set aside for benchmarking
networks: never routed on the internet, never a machine's own LAN) and exists only inside
network namespaces that the run creates. The range is cut into /19s, :data:`SLOTS` of them slots, so
that runs in parallel (pytest-xdist workers, several engineers on one machine) never share an
address, a namespace or an interface name. A slot is held with ``flock`` on a file of its own
directory: the kernel releases it when the holder dies, even by SIGKILL, which is how the next
run knows what a killed run left (``sweep.py``).

Inside slot ``k`` (base ``B`` = 198.18.0.0 + k * 8192), /24 by /24:

====================  =====================================================================
``B+0.0/24``          the node network: a bridge in the slot's router namespace (``.1``) and
                      node ``i`` at ``.(10+i)``
``B+i.0/24``          node ``i``'s pods (CNI bridge + host-local inside the node's namespace;
                      the bridge's gateway ``.1``), ``i`` = 1 .. :data:`MAX_NODES`
``B+30.0/24``         the Service ClusterIPs (the apiserver's ``--service-cluster-ip-range``)
``B+31.0/30``         the one link from the machine to the router namespace: ``.1`` on the
                      machine's end, ``.2`` on the router's
====================  =====================================================================

The machine itself gets exactly one veth end (``icx<k>``) and one route (the slot's /19 via the
router); forwarding is switched on only inside the namespaces the run created.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_NODES", "NETWORK", "ROOT", "SLOTS", "STAND_IN_SERVICE_CIDR", "NetPlan"]

#: All addresses of every run's nodes, pods and Services.
NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
SLOTS = 15  # /19 each; the 16th /19 is never routed anywhere (see STAND_IN_SERVICE_CIDR)
#: The Service range of a cluster of stand-in nodes: ClusterIPs there are names in the API only
#: (no kube-proxy), from the one /19 of the range that no slot uses.
STAND_IN_SERVICE_CIDR = "198.19.224.0/24"
MAX_NODES = 28
#: Where each slot keeps its lock, its nodes' containerd and kubelet directories, its logs.
ROOT = Path("/run/pytest-ingress-chaos")
_SLOT_PREFIX = 19
_NODE_HOST_OFFSET = 10


@dataclass(frozen=True)
class NetPlan:
    """The names and addresses of slot ``slot`` for ``nodes`` nodes."""

    slot: int
    nodes: int

    def __post_init__(self) -> None:
        if not 0 <= self.slot < SLOTS:
            raise ValueError(f"slot {self.slot} is not in 0..{SLOTS - 1}")
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"nodes={self.nodes}: the real nodes support 1..{MAX_NODES}")

    # --- addresses ---------------------------------------------------------------------------

    @property
    def block(self) -> ipaddress.IPv4Network:
        """The slot's /19: everything of this run is inside it."""
        return list(NETWORK.subnets(new_prefix=_SLOT_PREFIX))[self.slot]

    def _net24(self, index: int) -> ipaddress.IPv4Network:
        return list(self.block.subnets(new_prefix=24))[index]

    @property
    def node_network(self) -> ipaddress.IPv4Network:
        return self._net24(0)

    @property
    def router_ip(self) -> str:
        return str(self.node_network[1])

    def node_ip(self, index: int) -> str:
        """Node ``index`` (1-based)'s InternalIP."""
        return str(self.node_network[_NODE_HOST_OFFSET + index])

    def pod_cidr(self, index: int) -> ipaddress.IPv4Network:
        return self._net24(index)

    @property
    def service_cidr(self) -> ipaddress.IPv4Network:
        return self._net24(30)

    @property
    def uplink(self) -> ipaddress.IPv4Network:
        return next(self._net24(31).subnets(new_prefix=30))

    @property
    def host_ip(self) -> str:
        return str(self.uplink[1])

    @property
    def router_uplink_ip(self) -> str:
        return str(self.uplink[2])

    # --- names ------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """What every network namespace of the slot is named with."""
        return f"ingress-chaos-{self.slot}-"

    @property
    def router_netns(self) -> str:
        return f"{self.prefix}router"

    def node_netns(self, index: int) -> str:
        return f"{self.prefix}node-{index}"

    @property
    def host_link(self) -> str:
        """The machine's end of the uplink (interface names have at most 15 characters)."""
        return host_link(self.slot)

    @property
    def directory(self) -> Path:
        return slot_directory(self.slot)

    def node_directory(self, index: int) -> Path:
        return self.directory / f"node-{index}"


def host_link(slot: int) -> str:
    return f"icx{slot}"


def slot_directory(slot: int) -> Path:
    return ROOT / f"slot-{slot}"
