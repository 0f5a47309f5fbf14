"""The verdict: does the ingress pass the test's SLO, and who is to blame if it does not.

Errors the ingress produced always count: a status code is the ingress's answer whatever the
load generator was doing, and a timeout in a stretch where the generator kept its schedule is
the ingress's too. Such errors fail the test as an ingress failure, whatever happened elsewhere
in the window. The generator is blamed only for its own lag (timers, CPU, the GIL) and for its
connection cap: then the run is *void*, neither a pass nor an ingress failure, and says so, so
that CI can retry it on a quieter machine. A window in which no request, or too few, reached the
ingress (names that did not resolve, no sockets left on the runner) is void too: it proved
nothing about the ingress. A window that ended while chaos was still going on
(a pod still terminating, an action after the end) fails too: it did not see the whole story.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..base import outcomes
from ..base.events import EventKind
from ..base.outcomes import VerdictKind, format_counts, is_success_label
from ..base.specs import SLOSpec
from .load.records import LATE_SEND_THRESHOLD
from .result import RATE_TOLERANCE, LoadResult

# The verdict kinds under the names the glue imports them by.
PASS, FAIL, VOID = VerdictKind.PASS, VerdictKind.FAIL, VerdictKind.VOID
INTERRUPTED = VerdictKind.INTERRUPTED
# What chaos sets going: a window that ends before these have happened has not seen the story.
CHAOS_CONSEQUENCES = frozenset({
    EventKind.POD_DELETED, EventKind.POD_PRESTOP, EventKind.POD_SIGNAL, EventKind.POD_EXITED,
    EventKind.POD_GONE, EventKind.NODE_CORDONED, EventKind.NODE_TERMINATED,
    EventKind.ROLLOUT_STARTED, EventKind.DEPLOYMENT_SCALED,
})


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    violations: list[str] = field(default_factory=list)  # why it failed, or why it is void


def _error_checks(slo: SLOSpec, errors: int, requests: int, ignored: str) -> list[str]:
    broken = []
    if slo.max_errors is not None and errors > slo.max_errors:
        broken.append(f"{errors} of {requests} requests failed{ignored}; "
                      f"ingress_slo allows max_errors={slo.max_errors}")
    if slo.max_error_rate is not None and requests and errors / requests > slo.max_error_rate:
        broken.append(f"error rate {errors / requests:.2%}{ignored} is above "
                      f"ingress_slo max_error_rate={slo.max_error_rate:g}")
    return broken


def _stretches(result: LoadResult) -> str:
    shown = ", ".join(f"{s.start:.2f}..{s.end:.2f} s" for s in result.stalls[:5])
    more = f" and {len(result.stalls) - 5} more" if len(result.stalls) > 5 else ""
    return shown + more if shown else "none"


def _generator_failures(result: LoadResult) -> list[str]:
    """Why the generator's own figures cannot be trusted, one sentence each (empty: they can)."""
    if result.held_rate:
        return []
    limit = f"{LATE_SEND_THRESHOLD * 1000:g} ms"
    parts = []
    if result.late:
        stalled = f" (it stalled at {_stretches(result)})" if result.stalls else ""
        parts.append(f"{result.late} handed out more than {limit} late by the generator "
                     f"itself{stalled}")
    if result.waited_for_connection:
        parts.append(f"{result.waited_for_connection} waited more than {limit} for a "
                     f"connection at the cap of {result.max_connections} "
                     f"({result.max_connections_reason}; raise ingress_load(max_connections=))")
    if result.not_sent:
        parts.append(f"{result.not_sent} never sent")
    return [f"the load generator could not hold the rate: of {result.scheduled} scheduled "
            f"requests, {'; '.join(parts)} (more than {RATE_TOLERANCE:.0%})"]


def _runner_side(result: LoadResult) -> str:
    """The runner-side outcomes of ``result``: ``"dns failure x3, runner error x1"``."""
    return format_counts([(name, n) for name, n in result.by_outcome.items()
                          if name in outcomes.RUNNER_SIDE_LABELS], empty="")


def _unreached(result: LoadResult) -> list[str]:
    """Why too few requests reached the ingress to judge it, in one sentence (empty: enough
    did). A request that failed on the runner's side (its name did not resolve, no socket)
    never met the ingress; past the generator's tolerance the window did not carry the load
    it promised."""
    if result.runner_errors <= RATE_TOLERANCE * result.scheduled:
        return []
    return [f"{result.runner_errors} of {result.scheduled} scheduled requests never reached "
            f"the ingress ({_runner_side(result)}): failures of the machine running the tests, "
            f"more than {RATE_TOLERANCE:.0%}, too few answers to judge the ingress by"]


def chaos_after_window(result: LoadResult, still_terminating: Sequence[str]) -> str | None:
    """What chaos the window missed, in one sentence, or None: actions and the terminations
    they start that came after its end, and pods (``still_terminating``) not yet gone."""
    late = [e for e in result.events if e.at > result.duration
            and (e.source == "chaos" or e.kind in CHAOS_CONSEQUENCES)]
    if not late and not still_terminating:
        return None
    parts = [f"{e.kind} {e.subject} at {e.at:.2f} s" for e in late[:5]]
    if len(late) > 5:
        parts.append(f"{len(late) - 5} more events")
    parts += [f"{name} still terminating" for name in still_terminating]
    longer = "past the pods' termination (their preStop sleep and grace period)"
    if late:
        advice = f"a window of at least {math.ceil(max(e.at for e in late)) + 1} s would have " \
            "covered " + ("what happened so far, and the terminating pods need it longer "
                          f"still, {longer}" if still_terminating else "it")
    else:
        advice = f"lengthen the window {longer}"
    return (f"the load window ended at {result.duration:.2f} s before the chaos did: "
            f"{', '.join(parts)}; {advice}")


def judge(result: LoadResult, slo: SLOSpec, still_terminating: Sequence[str] = ()) -> Verdict:
    """Every way ``result`` breaks ``slo``, and whose fault it is.

    ``still_terminating`` names the pods still terminating when the window ended.
    """
    if result.requests == 0:
        return Verdict(VOID, ["no request was sent: the load window was empty"])
    if result.runner_errors == result.requests:
        return Verdict(VOID, [f"no request reached the ingress: all {result.requests} failed on "
                              f"the machine running the tests ({_runner_side(result)}); the "
                              "window proves nothing about the ingress"])
    ignored = f" (not counting {', '.join(slo.ignore)})" if slo.ignore else ""
    left_out = sum(n for name, n in result.by_outcome.items()
                   if name in slo.ignore and not is_success_label(name))
    uncertified = sum(n for name, n in result.uncertified_by_outcome.items()
                      if name not in slo.ignore)
    certified = result.errors - left_out - uncertified
    failures = _error_checks(slo, certified, result.requests, ignored)
    generator = _generator_failures(result)
    # A lagging generator's latencies include its own lag: no p99 verdict then.
    if slo.p99 is not None and result.latency["p99"] > slo.p99 * 1000 and not generator:
        failures.append(f"p99 latency {result.latency['p99']:.1f} ms is above ingress_slo "
                        f"p99={slo.p99 * 1000:g} ms")
    longest = result.longest_disruption
    if slo.max_disruption is not None and longest is not None \
            and longest.length > slo.max_disruption:
        kinds = format_counts(longest.by_outcome)
        failures.append(
            f"the disruption after {longest.action.kind} {longest.action.subject} at "
            f"{longest.action.at:.2f} s lasted {longest.length:.2f} s ({longest.errors} errors: "
            f"{kinds}{'' if longest.recovered else ', not recovered by the end of the window'}); "
            f"ingress_slo allows max_disruption={slo.max_disruption:g}s")
    if slo.max_disruption is not None and not result.disruptions:
        # the marker-only case is refused at setup; a test acting through ingress_chaos that
        # never acted lands here, and a bound on nothing must not pass as kept
        failures.append(f"ingress_slo(max_disruption={slo.max_disruption:g}s) has nothing to "
                        "judge: no chaos action ran in the window")
    missed = chaos_after_window(result, still_terminating)
    if missed is not None:
        failures.append(missed)
    # Errors that would break the SLO only if the uncertified ones counted: void, not fail.
    doubtful = not _error_checks(slo, certified, result.requests, ignored) and bool(
        _error_checks(slo, certified + uncertified, result.requests, ignored))
    if doubtful:
        kinds = format_counts(result.uncertified_by_outcome)
        generator.append(
            f"{uncertified} errors ({kinds}) fell in stretches where the load generator itself "
            f"stalled ({_stretches(result)}) and are not certified")
    unreached = _unreached(result)
    if failures:
        return Verdict(FAIL, failures + [f"also: {reason}" for reason in generator + unreached])
    if generator:
        return Verdict(VOID, [*generator, *unreached, "the verdict on the ingress is void: "
                                                      "rerun on a machine with CPU to spare"])
    if unreached:
        return Verdict(VOID, [*unreached, "the verdict on the ingress is void: fix what failed "
                                          "on the machine running the tests and rerun"])
    return Verdict(PASS)
