"""The plugin's exceptions, in one tree.

Everything the plugin's machinery raises derives from :class:`IngressChaosError`, so the pytest
glue catches that one class and turns it into a clear test failure or usage error instead of a
traceback through the plugin. Backends wrap their client's errors (a broken pipe to the
simulator, an ``ApiException`` from the Kubernetes client) in :class:`BackendError`, chained,
so the cause stays visible with ``raise ... from``.

The verdicts are not errors of the machinery: :class:`IngressVerdict` and its two kinds are
``AssertionError`` subclasses, so pytest reports them as test failures, and the glue's
``except IngressChaosError`` never mistakes one for a usage error.

Some classes live next to the code that raises them (the module in brackets); they derive from
this tree all the same (``tests/test_errors.py`` checks every exception class of the package)::

    IngressChaosError
    +-- SettingsError            a marker, option, ini key or env var has a bad value
    |   +-- FieldError           a spec field has a bad value [base.specs]
    +-- ChaosError               a chaos action could not be carried out
    +-- LoadGeneratorError       the load thread failed or would not stop
    |   +-- LoadWorkerError      a load worker process failed
    +-- NameNotResolved          the target's name did not resolve in time; the engines record
    |                            it as a dns failure [core.load.names]
    +-- ProgressError            the live progress line failed or its thread would not stop
    +-- ReportNotWritten         a test's report files could not be made [plugin.reporting]
    +-- BackendError             the backend refused or failed a request
    |   +-- BackendTimeout       a wait ran past its deadline (the message says what it saw)
    |   +-- SimulatorError       the simulator process refused a request or died
    |   +-- ApiError             a Kubernetes API request failed [kubernetes.apis]
    |   +-- KubeconfigError      a kubeconfig cannot be read or used [kubernetes.connect]
    |   +-- TargetGroupNotFound  no AWS target group for the test's Service (the AWS evidence
    |   |                        says so in one line) [kubernetes.aws.discovery]
    |   +-- Cancelled            a wait ended: its service is torn down [kubernetes.deadline]
    |   +-- ControlPlaneError    the local control plane could not start [localcluster]
    |   |   +-- LocalClusterError  its stand-ins could not start [localcluster.cluster]
    |   |   +-- NodesUnavailable   real nodes cannot run on this machine [localcluster.nodes]
    |   |   +-- ImageError       an image could not be built or imported [localcluster.images]
    |   +-- NetnsError           an ``ip`` command of a node's namespace failed
    |   |                        [localcluster.netns]
    |   +-- SlotsBusy            every address slot is held by a running local cluster
    |   |                        [localcluster.nodesweep]
    |   +-- Elbv2NotFound        the ELBv2 stand-in has no such load balancer or target group
    |   |                        (answered as AWS's error) [localcluster.elbv2api]
    |   +-- KubeApiError         the local cluster's API client got an error [localcluster]
    |       +-- WatchExpired     a watch's version expired: list again [localcluster.kubeapi]
    +-- HTTPParseError           the simulated ALB read a malformed message [backends.sim.http11]

    AssertionError
    +-- IngressVerdict           the ingress did not pass; carries the LoadResult
        +-- IngressSLOViolation  the ingress broke the test's SLO
        +-- IngressVerdictVoid   the load generator could not hold its schedule: no verdict
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.result import LoadResult


class IngressChaosError(Exception):
    """Base class of every error the plugin's machinery raises."""


class SettingsError(IngressChaosError, ValueError):
    """A user-supplied value is invalid; the message names its source and the accepted values."""


class ChaosError(IngressChaosError):
    """A chaos action could not be carried out (e.g. fewer pods than asked for)."""


class LoadGeneratorError(IngressChaosError):
    """The load thread failed or would not stop; the original exception is chained."""


class LoadWorkerError(LoadGeneratorError):
    """A load worker process failed; the message carries its stderr."""


class ProgressError(IngressChaosError):
    """The live progress line failed or its thread would not stop; the cause is chained."""


class BackendError(IngressChaosError):
    """The backend refused or failed a request; the client's own error is chained."""


class BackendTimeout(BackendError):
    """A backend wait ran past its deadline; the message says what the backend saw."""


class SimulatorError(BackendError):
    """The simulator refused a request or died; the message carries its stderr tail."""


class IngressVerdict(AssertionError):
    """A verdict other than a pass; the message is the full report, ``result`` the figures."""

    def __init__(self, message: str, result: LoadResult) -> None:
        super().__init__(message)
        self.result = result


class IngressSLOViolation(IngressVerdict):
    """The ingress broke the test's SLO; the message is the full report."""


class IngressVerdictVoid(IngressVerdict):
    """The load generator itself could not hold its schedule, so the run can neither blame nor
    clear the ingress; the message is the full report. Safe to retry on a quieter runner."""
