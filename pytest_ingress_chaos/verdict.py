"""The verdict: every way a load window's result breaks the test's SLO."""

from __future__ import annotations

from .load.records import LATE_SEND_THRESHOLD
from .result import LoadResult
from .specs import SLOSpec


def judge(result: LoadResult, slo: SLOSpec) -> list[str]:
    """Every way ``result`` breaks ``slo``, one sentence each. Empty means the test passes."""
    violations = []
    if result.requests == 0:
        violations.append("no request was sent: the load window was empty")
        return violations
    if not result.held_rate:
        violations.append(
            f"the load generator could not hold the rate: {result.not_sent} requests not sent "
            f"and {result.late} sent more than {LATE_SEND_THRESHOLD * 1000:g} ms late out of "
            f"{result.requests + result.not_sent} scheduled; the verdict on the ingress is void"
        )
    counted = result.errors - sum(
        n for name, n in result.by_outcome.items() if name in slo.ignore)
    ignored = f" (not counting {', '.join(slo.ignore)})" if slo.ignore else ""
    if slo.max_errors is not None and counted > slo.max_errors:
        violations.append(
            f"{counted} of {result.requests} requests failed{ignored}; "
            f"ingress_slo allows max_errors={slo.max_errors}"
        )
    if slo.max_error_rate is not None and counted / result.requests > slo.max_error_rate:
        violations.append(
            f"error rate {counted / result.requests:.2%}{ignored} is above "
            f"ingress_slo max_error_rate={slo.max_error_rate:g}"
        )
    if slo.p99 is not None and result.latency["p99"] > slo.p99 * 1000:
        violations.append(
            f"p99 latency {result.latency['p99']:.1f} ms is above ingress_slo "
            f"p99={slo.p99 * 1000:g} ms"
        )
    return violations
