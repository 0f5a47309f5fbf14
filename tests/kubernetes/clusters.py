"""How the tests start a local cluster: skipped, saying why, where the control plane's binaries
are missing (``tools/build-kube-control-plane.sh`` builds them; CI always has them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from pytest_ingress_chaos.localcluster.cluster import LocalCluster
from pytest_ingress_chaos.localcluster.controlplane import find_binaries


@contextlib.contextmanager
def local_cluster(*, nodes: int = 3, time_scale: float, seed: int | None = None
                  ) -> Iterator[LocalCluster]:
    found = find_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    with LocalCluster(nodes=nodes, time_scale=time_scale, seed=seed, binaries=found) as running:
        yield running
