"""The real nodes' address plan and setup checks, without starting anything."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest

from pytest_ingress_chaos.localcluster.cluster import LocalCluster, LocalClusterError, main
from pytest_ingress_chaos.localcluster.netplan import (
    MAX_NODES,
    NETWORK,
    SLOTS,
    STAND_IN_SERVICE_CIDR,
    NetPlan,
)
from pytest_ingress_chaos.localcluster.nodes import NODE_PACKAGES

ROOT = Path(__file__).resolve().parents[2]


def _addresses(plan: NetPlan) -> list[ipaddress.IPv4Network]:
    nets = [plan.node_network, plan.service_cidr, plan.uplink]
    return nets + [plan.pod_cidr(i) for i in range(1, plan.nodes + 1)]


def test_every_address_of_every_slot_is_in_198_18_and_no_two_slots_overlap() -> None:
    plans = [NetPlan(slot, MAX_NODES) for slot in range(SLOTS)]
    for plan in plans:
        nets = _addresses(plan)
        assert all(net.subnet_of(plan.block) and net.subnet_of(NETWORK) for net in nets)
        assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))
        assert ipaddress.ip_address(plan.node_ip(MAX_NODES)) in plan.node_network
        assert len(plan.host_link) <= 15  # IFNAMSIZ - 1
    for a, b in itertools.combinations(plans, 2):
        assert not a.block.overlaps(b.block)
    stand_in = ipaddress.ip_network(STAND_IN_SERVICE_CIDR)
    assert stand_in.subnet_of(NETWORK)
    assert not any(stand_in.overlaps(plan.block) for plan in plans)


def test_a_plan_outside_the_slots_or_the_node_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="slot 15"):
        NetPlan(SLOTS, 1)
    with pytest.raises(ValueError, match=f"nodes={MAX_NODES + 1}"):
        NetPlan(0, MAX_NODES + 1)


def test_real_nodes_refuse_a_time_scale_and_the_command_says_why(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LocalClusterError, match=r"real time.*--stand-in-nodes"):
        LocalCluster(nodes=1, time_scale=0.2)
    with pytest.raises(SystemExit):
        main(["--time-scale", "0.2"])
    assert "--time-scale: real nodes run in real time" in capsys.readouterr().err


def test_ci_installs_every_package_the_real_nodes_need() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    line = next(line for line in ci.splitlines() if line.startswith("node_packages="))
    assert line.split("=", 1)[1].strip('"').split() == list(NODE_PACKAGES)
