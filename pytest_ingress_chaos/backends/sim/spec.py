"""Settings only the simulator understands: the ``sim`` marker.

How many nodes the simulated cluster has, and the AWS Load Balancer Controller it models: its
reconcile lag, which on a real cluster is whatever the controller and the AWS APIs take
(docs/alb-facts.md: about 10 s in the field report, up to minutes in the controller's issues),
and its version, which decides what it does with nodes being drained (section 7). On a real
cluster both are whatever that cluster runs: no test can choose them, so they live here and
not in the ``alb`` marker, whose every setting is an annotation any cluster honours. On other
backends this marker has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...base import units
from ...base.specs import MAX_REPLICAS, Spec, parsed
from .nodepolicy import NEWEST, controller_version
from .timings import DEFAULTS

# Each node is a kube-proxy listener and, in instance mode, a target that both ALB nodes health
# check; pods spread over the nodes, so more nodes than the most replicas (specs.MAX_REPLICAS)
# would stay empty.
MAX_NODES = MAX_REPLICAS


@dataclass(frozen=True, kw_only=True)
class SimSpec(Spec):
    """``@pytest.mark.sim``: the simulated cluster and controller."""

    nodes: int = parsed(units.Count(1, MAX_NODES), 3)
    registration_lag: float = parsed(units.duration, DEFAULTS.registration_lag,
                                     shown=repr(units.format_seconds(DEFAULTS.registration_lag)))
    deregistration_lag: float = parsed(units.duration, DEFAULTS.deregistration_lag,
                                       shown=repr(units.format_seconds(DEFAULTS.deregistration_lag)))
    lag_jitter: float = parsed(units.duration, DEFAULTS.lag_jitter,
                               shown=repr(units.format_seconds(DEFAULTS.lag_jitter)))
    # What the controller does with nodes being drained (instance mode) changed between
    # releases; the default is the newest behaviour.
    controller_version: str = parsed(controller_version, NEWEST)


MARKERS = {
    "sim": (SimSpec, "sim backend only: the simulated cluster's nodes, and the ALB "
                     "controller's reconcile lag (drawn from lag +- jitter) and version (what "
                     "it does with drained nodes)."),
}
