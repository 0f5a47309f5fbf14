"""What the tests against a local cluster share: starting one (skipped, saying why, where the
control plane's binaries are missing; ``tools/build-kube-control-plane.sh`` builds them and CI
always has them), waiting for what it should do, and telling whether a process still runs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.controlplane import Binaries, find_binaries

# Generous: two cores, possibly shared with another xdist worker starting its own control plane.
DEADLINE = 30.0
T = TypeVar("T")


def binaries_or_skip() -> Binaries:
    """The control plane's binaries; the test is skipped, saying why, where they are missing."""
    found = find_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@contextlib.contextmanager
def local_cluster(*, nodes: int = 3, time_scale: float, seed: int | None = None,
                  stand_in_nodes: bool = False) -> Iterator[LocalCluster]:
    """Real nodes unless ``stand_in_nodes``; where they cannot run the start fails, saying
    why (never a skip: CI runs real nodes)."""
    with LocalCluster(nodes=nodes, time_scale=time_scale, seed=seed,
                      binaries=binaries_or_skip(), stand_in_nodes=stand_in_nodes) as running:
        yield running


def eventually(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """``probe()``'s first truthy answer, polling until ``timeout`` wall seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as dead (a container may not reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
