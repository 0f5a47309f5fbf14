"""The plugin's exceptions, in one tree.

Everything the plugin's machinery raises derives from :class:`IngressChaosError`, so the pytest
glue catches that one class and turns it into a clear test failure or usage error instead of a
traceback through the plugin. Backends wrap their client's errors (a broken pipe to the
simulator, an ``ApiException`` from the Kubernetes client) in :class:`BackendError`, chained,
so the cause stays visible with ``raise ... from``.

The verdicts are not errors of the machinery: :class:`IngressSLOViolation` and
:class:`IngressVerdictVoid` are ``AssertionError`` subclasses, so pytest reports them as test
failures.

::

    IngressChaosError
    +-- SettingsError          a marker, option, ini key or env var has a bad value
    +-- ChaosError             a chaos action could not be carried out
    +-- LoadGeneratorError     the load thread failed or would not stop
    |   +-- LoadWorkerError    a load worker process failed
    +-- ProgressError          the live progress line failed or its thread would not stop
    +-- BackendError           the backend refused or failed a request
        +-- BackendTimeout     a wait ran past its deadline (the message says what it saw)
        +-- SimulatorError     the simulator process refused a request or died
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


class IngressSLOViolation(AssertionError):
    """The ingress broke the test's SLO; the message is the full report."""

    def __init__(self, message: str, result: LoadResult) -> None:
        super().__init__(message)
        self.result = result


class IngressVerdictVoid(AssertionError):
    """The load generator itself could not hold its schedule, so the run can neither blame nor
    clear the ingress; the message is the full report. Safe to retry on a quieter runner."""

    def __init__(self, message: str, result: LoadResult) -> None:
        super().__init__(message)
        self.result = result
