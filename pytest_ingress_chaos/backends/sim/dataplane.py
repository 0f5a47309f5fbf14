"""The local cluster's interface to the simulator: the one module of ``backends/sim/`` that
``pytest_ingress_chaos.localcluster`` may import (an import-linter contract in pyproject.toml
forbids it the rest).

The local cluster runs a real control plane and real nodes; only AWS stays simulated. Its AWS
Load Balancer Controller stand-in drives the simulator's ALB (listener, target groups, target
states) from the API, its ELBv2 stand-in answers boto3 with those targets' states, and its
kubelet stand-in (``--stand-in-nodes``) runs the sample app with the simulator's timings. What
it takes for that is re-exported here, so the simulator can rearrange its internals without
reaching into the local cluster, and a new dependency shows up as a change to ``__all__``.
"""

from __future__ import annotations

from . import http11
from .alb import DRAINING, HEALTHY, INITIAL, UNHEALTHY, ALBListener, Target, TargetGroup
from .cluster import LOOPBACK, SAMPLEAPP, Emit, Timers
from .kubeproxy import KubeProxy
from .tasks import cancel_and_wait
from .timings import DEFAULTS, SimTimings

__all__ = [
    "DEFAULTS", "DRAINING", "HEALTHY", "INITIAL", "LOOPBACK", "SAMPLEAPP", "UNHEALTHY",
    "ALBListener", "Emit", "KubeProxy", "SimTimings", "Target", "TargetGroup", "Timers",
    "cancel_and_wait", "http11",
]
