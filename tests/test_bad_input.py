"""Bad input, property-based: every marker field, option, ini key and environment variable.

For each one, this module holds its own statement of what is accepted (``MARKER_FIELDS``,
``OPTIONS``: a range, a list of choices, a form), written from the README and the documented
limits, not read from the code, so that a wrong bound in the code fails here. Hypothesis then
draws values on both sides of it: wrong types, negatives, zero where not allowed, huge numbers,
NaN and infinities, empty and blank strings, junk units ("5 parsecs"), non-ASCII digits and
letters, CR/LF. An invalid value must raise the error type the plugin turns into a usage error
or a setup error (:class:`SettingsError`), its message naming where the value came from, the
field and the accepted values; a valid one must be accepted, normalised as documented, and
accepted again in its normalised form.

The pure functions are driven directly (hundreds of examples a second);
``test_plugin_reports_bad_input_without_a_traceback`` checks a handful end to end.
"""

from __future__ import annotations

import functools
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import certifi
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_ingress_chaos.backends import REGISTRY
from pytest_ingress_chaos.backends.sim.spec import SimSpec
from pytest_ingress_chaos.base.errors import SettingsError
from pytest_ingress_chaos.base.specs import (
    AlbSpec,
    DrainNode,
    KillPods,
    LoadSpec,
    RolloutRestart,
    ScaleDeployment,
    ServiceSpec,
    SLOSpec,
    Spec,
)
from pytest_ingress_chaos.core.chaos import check_against_service
from pytest_ingress_chaos.settings.markers import spec_from_marker
from pytest_ingress_chaos.settings.options import options, resolve_session

# --- the documented limits -------------------------------------------------------------------

DAY = 86_400  # the longest duration of any kind (a load window, a preStop, a chaos offset)
MAX_RATE = 100_000  # requests per second
MAX_REQUESTS = 10_000_000  # rate x duration (x time scale): records kept in memory
MAX_TIMEOUT = 3_600  # a request's timeout
MAX_CONNECTIONS = 65_535
MAX_PROCESSES = 64
MAX_REPLICAS = 100
MAX_NODES = 100
MAX_SEED = 2**53 - 1
MAX_STEADY_REQUESTS = 1_000
DURATION_FORMS = '"250ms", "5s", "1m" or a number of seconds'

# Digits that str.isdigit() and float() accept but no user means: Arabic-Indic, fullwidth,
# Devanagari.
FOREIGN_DIGITS = ("٠١٢٣٤٥٦٧٨٩", "".join(map(chr, range(0xFF10, 0xFF1A))), "०१२३४५६७८९")
JUNK_TEXT = ["", " ", "\t", "\n", "\r\n", "5 parsecs", "five", "1e3s", "0x10", "1_000", "--5",
             "5..0", "∞", "NaN", "inf", "-inf", "None", "null", "true", "é", "日本", "5\r\n6",
             "5\x00", "\u00a0"]
WRONG_TYPES = st.one_of(
    st.lists(st.integers(1, 5), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()),
    st.binary(max_size=3), st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(object),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
# Surrounding blanks are forgiven (an ini file's, a shell's): the same value.
SPACINGS = st.sampled_from(["{}", " {}", "{} ", "  {}\n"])


def foreign(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Numbers written with another script's digits."""
    return st.builds(lambda number, digits: str(number).translate(
        str.maketrans("0123456789", digits)), numbers, st.sampled_from(FOREIGN_DIGITS))


# --- what each kind of value accepts ---------------------------------------------------------


class Domain:
    """What one setting accepts: ``valid()`` draws (raw, normalised) pairs; ``invalid_text()``
    and ``invalid_other()`` draw raw values that must be refused (strings, as a command line,
    an environment variable or an ini file gives them, and everything else a marker can be
    given), with ``says`` in the message."""

    says: str

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        raise NotImplementedError

    def invalid_text(self) -> st.SearchStrategy[str]:
        raise NotImplementedError

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), st.booleans(), WRONG_TYPES)


@functools.cache
def strategy(domain: Domain, kind: str) -> st.SearchStrategy[Any]:
    """Built once per domain: hypothesis then draws from it cheaply."""
    if kind == "valid":
        return domain.valid()
    if kind == "valid text":  # as a command line, an environment variable or an ini file has it
        return domain.valid().filter(lambda pair: isinstance(pair[0], str))
    if kind == "invalid text":
        return domain.invalid_text()
    return st.one_of(domain.invalid_text(), domain.invalid_other())


@dataclass(frozen=True)
class Count(Domain):
    lo: int
    hi: int | None = None
    skip: tuple[int, int] | None = None  # refused by another rule, with another message

    @property
    def says(self) -> str:  # type: ignore[override]
        return f"whole number >= {self.lo}" if self.hi is None else \
            f"whole number from {self.lo} to {self.hi}"

    def _numbers(self) -> st.SearchStrategy[int]:
        if self.skip is None:
            return st.integers(self.lo, self.hi)
        return st.one_of(st.integers(self.lo, self.skip[0] - 1) if self.lo < self.skip[0]
                         else st.nothing(), st.integers(self.skip[1] + 1, self.hi))

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        numbers = self._numbers()
        return st.one_of(numbers.map(lambda n: (n, n)),
                         st.builds(lambda n, form: (form.format(n), n), numbers, SPACINGS))

    def _out_of_range(self) -> st.SearchStrategy[int]:
        below = st.integers(max_value=self.lo - 1)
        if self.hi is None:
            return below
        return st.one_of(below, st.integers(self.hi + 1, self.hi * 10),
                         st.integers(min_value=self.hi + 1), st.just(10**400))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(self._out_of_range().map(str), foreign(self._numbers()),
                         self._numbers().map(lambda n: f"{n}.5"),
                         self._numbers().map(lambda n: f"{n}.0"), st.sampled_from(JUNK_TEXT))

    def invalid_other(self) -> st.SearchStrategy[Any]:
        # Floats too: 3.0 is no whole number of pods either.
        return st.one_of(self._out_of_range(), st.floats(), super().invalid_other())


@dataclass(frozen=True)
class Number(Domain):
    lo: float
    hi: float | None
    open_lo: bool  # lo itself refused

    @property
    def says(self) -> str:  # type: ignore[override]
        if self.hi is None:
            return f"number > {self.lo:g}"
        if self.open_lo:
            return f"number > {self.lo:g} and <= {self.hi:g}"
        return f"number from {self.lo:g} to {self.hi:g}"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        numbers = st.floats(self.lo, self.hi, exclude_min=self.open_lo)
        return st.one_of(numbers.map(lambda x: (x, x)),
                         st.builds(lambda x, form: (form.format(repr(x)), x), numbers, SPACINGS))

    def _out_of_range(self) -> st.SearchStrategy[float]:
        below = st.floats(max_value=self.lo, exclude_max=not self.open_lo)
        if self.hi is None:
            return below
        return st.one_of(below, st.floats(min_value=self.hi, exclude_min=True))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(self._out_of_range().map(repr), NON_FINITE.map(repr),
                         st.just("1" * 400), foreign(st.integers(1, 9)),
                         st.sampled_from(JUNK_TEXT))

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(self._out_of_range(), NON_FINITE, st.just(10**400),
                         super().invalid_other())


@dataclass(frozen=True)
class Duration(Domain):
    lo: float
    hi: float
    open_lo: bool = False
    skip: tuple[float, float] | None = None  # refused by another rule, with another message

    @property
    def says(self) -> str:  # type: ignore[override]
        def show(seconds: float) -> str:
            return f"{seconds / 3600:g}h" if seconds >= 7200 and seconds % 3600 == 0 \
                else f"{seconds:g}s"
        bounds = f"> {show(self.lo)} and <= {show(self.hi)}" if self.open_lo \
            else f"from {show(self.lo)} to {show(self.hi)}"
        return f"duration {bounds}"

    def _wanted(self, seconds: float) -> bool:
        inside = (self.lo < seconds if self.open_lo else self.lo <= seconds) and \
            seconds <= self.hi
        skipped = self.skip is not None and self.skip[0] <= seconds <= self.skip[1]
        return inside and not skipped

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        numbers = st.floats(self.lo, self.hi, exclude_min=self.open_lo).filter(
            self._wanted).map(lambda x: (x, x))
        millis = st.integers(math.ceil(self.lo * 1000), math.floor(self.hi * 1000))
        forms = st.sampled_from([
            lambda ms: (f"{ms}ms", ms * 0.001),
            lambda ms: (f"{ms // 1000}.{ms % 1000:03d}s", ms / 1000),
            lambda ms: (f"{ms // 1000}", float(ms // 1000)),
            lambda ms: (f"{ms // 60000}m", ms // 60000 * 60.0),
            lambda ms: (f"{ms // 3600000}h", ms // 3600000 * 3600.0)])
        written = st.builds(lambda ms, form: form(ms), millis, forms)
        return st.one_of(numbers, written.filter(lambda pair: self._wanted(pair[1])))

    def _out_of_range(self) -> st.SearchStrategy[float]:
        return st.one_of(st.floats(max_value=self.lo, exclude_max=not self.open_lo),
                         st.floats(min_value=self.hi, exclude_min=True))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(
            self._out_of_range().map(lambda x: f"{x!r}s"),
            st.integers(min_value=math.floor(self.hi * 1000) + 1).map(lambda ms: f"{ms}ms"),
            st.just(f"{self.hi / 3600 + 1:.0f}h"), st.just("99999999999999999999h"),
            st.just("1" * 400 + "s"), st.just("-1s"), foreign(st.integers(1, 9)).map(
                lambda n: n + "s"),
            st.sampled_from(["5 parsecs", "5sec", "5S", "5 s s", "1e3s", "s", "ms", "5h5m",
                             "5s\n5", "5s\r5", "inf s", "nans", "½s", "5 \u0441"]),
            st.sampled_from(JUNK_TEXT))

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(self._out_of_range(), st.just(10**400), NON_FINITE,
                         super().invalid_other())


@dataclass(frozen=True)
class Choice(Domain):
    accepted: tuple[str, ...]

    @property
    def says(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(map(repr, self.accepted))

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        return st.sampled_from(self.accepted).map(lambda value: (value, value))

    def invalid_text(self) -> st.SearchStrategy[str]:
        near = [variant for value in self.accepted for variant in (
            value.upper(), value.lower(), value.title(), f" {value}", f"{value}\n",
            f"{value}\r\n", value[:-1], value + "x", value.replace("i", "\u0131"))]
        return st.one_of(st.sampled_from(near), st.text(max_size=8),
                         st.sampled_from(JUNK_TEXT)).filter(lambda v: v not in self.accepted)

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(), st.sampled_from([list(self.accepted)]),
                         super().invalid_other())


@dataclass(frozen=True)
class Age(Duration):
    """A duration > 0 with no upper bound (the sweeper's TTL: how old a leftover is)."""

    lo: float = 0.0
    hi: float = 1e7  # for drawing valid values; none is too long
    open_lo: bool = True

    @property
    def says(self) -> str:  # type: ignore[override]
        return "duration > 0s"

    def _out_of_range(self) -> st.SearchStrategy[float]:
        return st.floats(max_value=0.0)

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(
            self._out_of_range().map(lambda x: f"{x!r}s"), st.just("-1s"), st.just("0"),
            foreign(st.integers(1, 9)).map(lambda n: n + "s"),
            st.sampled_from(["5 parsecs", "5sec", "1e3s", "s", "5h5m", "5s\n5", "inf s"]),
            st.sampled_from(JUNK_TEXT))


@dataclass(frozen=True)
class Boolean(Domain):
    says = "true or false"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        words = [(raw, value) for word, value in [
            ("true", True), ("yes", True), ("on", True), ("1", True), ("false", False),
            ("no", False), ("off", False), ("0", False)]
            for raw in (word, word.upper(), f" {word} ")]
        return st.one_of(st.booleans().map(lambda b: (b, b)), st.sampled_from(words))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(["maybe", "", " ", "2", "yes!", "ja", "tru",
                                "\uff54\uff52\uff55\uff45", "true\nfalse", "None"])

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(), st.floats(), st.none(), WRONG_TYPES)


@dataclass(frozen=True)
class Optional(Domain):
    """``None`` switches the setting off; anything else as ``inner``."""

    inner: Domain

    @property
    def says(self) -> str:  # type: ignore[override]
        return self.inner.says

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        return st.one_of(st.just((None, None)), self.inner.valid())

    def invalid_text(self) -> st.SearchStrategy[str]:
        return self.inner.invalid_text()

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return self.inner.invalid_other().filter(lambda value: value is not None)


WIRE_SAFE = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)
NOT_WIRE_SAFE = st.sampled_from([" ", "\r\n", "\n", "\t", "\x00", "é", "日", "\u00a0"])


@dataclass(frozen=True)
class UrlPath(Domain):
    says = "a path starting with '/'"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        return WIRE_SAFE.map(lambda rest: ("/" + rest, "/" + rest))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(
            WIRE_SAFE.filter(lambda text: not text.startswith("/")),
            st.builds(lambda a, bad, b: f"/{a}{bad}{b}", WIRE_SAFE, NOT_WIRE_SAFE, WIRE_SAFE))

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(), super().invalid_other())


@dataclass(frozen=True)
class HttpUrl(Domain):
    says = "http://"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        hosts = st.sampled_from(["127.0.0.1", "localhost", "example.com", "[::1]"])
        paths = st.text(st.sampled_from("abc/-._~%!$&'()*+,;=:@09"), max_size=12)
        return st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
                         st.sampled_from(["http", "https"]), hosts,
                         st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
                         paths).map(lambda url: (url, url))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from([
            "ftp://x/", "http://", "http:///x", "http://:80/", "//x/", "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/", "http://127.0.0.1:-1/", "http://127.0.0.1:\uff18\uff10/",
            "http://[::1/", "http://[zz]/", "http://exa mple.com/", "http://x/\r\nX: 1",
            "http://é.com/", "https://x:port/", "", " ", "127.0.0.1:80", "HTTP://x/"])

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(), super().invalid_other())


@dataclass(frozen=True)
class CaBundle(Domain):
    """``ca_bundle=``: a PEM file of CA certificates that exists (certifi's, here)."""

    says = "PEM file of CA certificates"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        return st.just((certifi.where(), certifi.where()))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(["", " ", "/nonexistent/ca.pem", "/etc/hostname", "/",
                                "ca.pem\n", "/dev/null"])

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(), st.binary(min_size=1, max_size=3), st.booleans())


@dataclass(frozen=True)
class Outcomes(Domain):
    """``ignore=`` of ingress_slo: HTTP status codes and the ingress's failure labels."""

    says = "HTTP status code"
    LABELS = ("timeout", "connection refused", "reset", "error", "invalid response",
              "tls certificate verify failed", "tls hostname mismatch", "tls error")

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        codes = st.integers(100, 599)
        one = st.one_of(codes.map(lambda c: (c, str(c))), codes.map(lambda c: (str(c), str(c))),
                        st.sampled_from(self.LABELS).map(lambda label: (label, label)))
        many = st.builds(lambda pairs, kind: (kind(raw for raw, _ in pairs),
                                              tuple(name for _, name in pairs)),
                         st.lists(one, max_size=4), st.sampled_from([list, tuple]))
        return st.one_of(one.map(lambda pair: (pair[0], (pair[1],))), many)

    BAD = ("not sent", "runner error", "dns failure", "abandoned", "nope", "", " 502", "502 ",
           "0502", "50", "099", "600", "999", "٥٠٢", "\uff15\uff10\uff12", "502\n")

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(self.BAD)

    def invalid_other(self) -> st.SearchStrategy[Any]:
        bad_one = st.one_of(st.sampled_from(self.BAD), st.integers(max_value=99),
                            st.integers(min_value=600), st.none(), st.floats())
        return st.one_of(st.integers(max_value=99), st.integers(min_value=600), st.floats(),
                         st.booleans(), st.lists(bad_one, min_size=1, max_size=3),
                         st.sets(st.sampled_from(["502", "503"]), min_size=1),
                         st.dictionaries(st.just("502"), st.integers(), min_size=1),
                         st.binary(min_size=1, max_size=3))


@dataclass(frozen=True)
class CountOrPercent(Domain):
    """maxSurge / maxUnavailable: pods or a percentage of the replicas."""

    says = "whole number from 0 to 100 or a percentage from 0% to 100%"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        return st.one_of(st.integers(0, 100).map(lambda n: (n, n)),
                         st.integers(0, 100).map(lambda n: (str(n), n)),
                         st.integers(0, 100).map(lambda n: (f"{n}%", f"{n}%")))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(
            st.integers(min_value=101).map(lambda n: f"{n}%"),
            st.integers(max_value=-1).map(lambda n: f"{n}%"),
            st.integers(min_value=101).map(str),
            st.sampled_from(["%", "5.5%", "25 %", "%25", "٢٥%", "²%", "25%%", "lots", "",
                             "25%\n", "1e2%"]))

    def invalid_other(self) -> st.SearchStrategy[Any]:
        return st.one_of(st.integers(max_value=-1), st.integers(min_value=101), st.floats(),
                         super().invalid_other())


@dataclass(frozen=True)
class ControllerVersion(Domain):
    """The AWS Load Balancer Controller release the simulator follows for nodes."""

    says = "a controller version like"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        def version(v: str, major: int, minor: int, patch: int | None) -> tuple[str, str]:
            text = f"v{major}.{minor}" + ("" if patch is None else f".{patch}")
            return f"{v}{text[1:]}", text
        return st.one_of(
            st.builds(version, st.sampled_from(["v", ""]), st.integers(2, 9999),
                      st.integers(0, 9999), st.one_of(st.none(), st.integers(0, 9999))),
            st.sampled_from([("v1.1.9", "v1.1.9"), ("1.0.0", "v1.0.0"), ("v1.0", "v1.0"),
                             (" v2.13 ", "v2.13")]))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.one_of(
            st.sampled_from(["latest", "", " ", "v1", "v0.9", "v0.9.9", "vv2.1", "v2.1.",
                             "v\u0662.1", "v2.13-rc1", "2", "V2.1", "v2.1.1.1", "v 2.1",
                             "v2.1\nv3.0"]),
            st.integers(10_000, 10**400).map(lambda n: f"v{n}.0"))


# --- every marker field ----------------------------------------------------------------------

DURATION = Duration(0, DAY)
POSITIVE_DURATION = Duration(0, DAY, open_lo=True)
MODES = Choice(("ip", "instance"))

MARKER_FIELDS: dict[type[Spec], dict[str, Domain]] = {
    LoadSpec: {
        "rate": Number(0, MAX_RATE, open_lo=True),
        "duration": POSITIVE_DURATION,
        "connections": Count(1, MAX_CONNECTIONS),
        # At least connections (100 by default): smaller values have a message of their own.
        "max_connections": Optional(Count(1, MAX_CONNECTIONS, skip=(1, 99))),
        "timeout": Duration(0, MAX_TIMEOUT, open_lo=True),
        "keepalive": Boolean(),
        "path": UrlPath(),
        "url": Optional(HttpUrl()),
        "processes": Count(1, MAX_PROCESSES),
        "dns_timeout": Duration(0, MAX_TIMEOUT, open_lo=True),
        "ca_bundle": Optional(CaBundle()),
    },
    SLOSpec: {
        "max_errors": Optional(Count(0)),
        "max_error_rate": Optional(Number(0, 1, open_lo=False)),
        "p99": Optional(POSITIVE_DURATION),
        "ignore": Outcomes(),
        "max_disruption": Optional(DURATION),
        "recovered_after": Count(1, MAX_REQUESTS),
    },
    ServiceSpec: {
        "replicas": Count(1, MAX_REPLICAS),
        "prestop_sleep": DURATION,
        "grace_period": DURATION,
        "on_sigterm": Choice(("exit", "drain", "ignore")),
        "readiness_delay": DURATION,
        "readiness_gate": Boolean(),
        "external_traffic_policy": Choice(("Cluster", "Local")),
        "keepalive_timeout": Optional(POSITIVE_DURATION),
    },
    AlbSpec: {  # AWS's ranges (docs/alb-facts.md, section 3)
        "deregistration_delay": Duration(0, 3600),
        # Above the 5 s health-check timeout (in whole seconds): 5 s itself is refused by that
        # rule, with a message of its own.
        "healthcheck_interval": Duration(5, 300, skip=(5, 5)),
        # Below the 15 s health-check interval in whole seconds: 14 s at most.
        "healthcheck_timeout": Duration(2, 120, skip=(math.nextafter(14, 15), 120)),
        "healthy_threshold": Count(2, 10),
        "unhealthy_threshold": Count(2, 10),
        "idle_timeout": Duration(1, 4000),
        "algorithm": Choice(("round_robin", "least_outstanding_requests")),
    },
    KillPods: {
        "at": DURATION,
        "count": Count(1, MAX_REPLICAS),
        "grace_period": Optional(DURATION),
        "force": Boolean(),
        "signal": Optional(Choice(("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP"))),
    },
    RolloutRestart: {
        "at": DURATION,
        "max_surge": CountOrPercent(),
        "max_unavailable": CountOrPercent(),
    },
    ScaleDeployment: {"at": DURATION, "replicas": Count(0, MAX_REPLICAS)},
    DrainNode: {"at": DURATION, "count": Count(1, MAX_REPLICAS),
                "exclude_from_load_balancers": Boolean(),
                "deregistration_wait": Optional(POSITIVE_DURATION)},
    SimSpec: {
        "nodes": Count(1, MAX_NODES),
        "registration_lag": DURATION,
        "deregistration_lag": DURATION,
        "lag_jitter": DURATION,
        "controller_version": ControllerVersion(),
    },
}
# Fields valid only next to another: given with these in every case.
FIELD_CONTEXT: dict[tuple[type[Spec], str], dict[str, Any]] = {
    (DrainNode, "deregistration_wait"): {"exclude_from_load_balancers": True},
}
FIELD_CASES = [(spec, name) for spec, domains in MARKER_FIELDS.items() for name in domains]
FIELD_IDS = [f"{spec.__name__}.{name}" for spec, name in FIELD_CASES]


def test_every_marker_field_is_covered() -> None:
    """A field added to a spec must get its accepted values stated here."""
    for spec, domains in MARKER_FIELDS.items():
        assert [f.name for f in fields(spec)] == list(domains), spec.__name__


def _same(got: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-12)
    return got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("spec", "name"), FIELD_CASES, ids=FIELD_IDS)
@given(data=st.data())
def test_a_valid_marker_value_is_accepted_and_round_trips(spec: type[Spec], name: str,
                                                          data: st.DataObject) -> None:
    raw, expected = data.draw(strategy(MARKER_FIELDS[spec][name], "valid"), label="value")
    built = spec_from_marker(spec, "m", (), {**FIELD_CONTEXT.get((spec, name), {}), name: raw},
                             "test_x")
    value = getattr(built, name)
    assert _same(value, expected), (raw, value, expected)
    again = spec_from_marker(spec, "m", (), {**FIELD_CONTEXT.get((spec, name), {}), name: value},
                             "test_x")
    assert getattr(again, name) == value


@pytest.mark.parametrize(("spec", "name"), FIELD_CASES, ids=FIELD_IDS)
@given(data=st.data())
def test_an_invalid_marker_value_is_refused_naming_field_and_accepted_values(
        spec: type[Spec], name: str, data: st.DataObject) -> None:
    domain = MARKER_FIELDS[spec][name]
    raw = data.draw(strategy(domain, "invalid"), label="value")
    with pytest.raises(SettingsError) as info:
        spec_from_marker(spec, "m", (), {**FIELD_CONTEXT.get((spec, name), {}), name: raw},
                         "test_x")
    message = str(info.value)
    assert message.startswith(f"marker m on test_x: {name}="), message
    assert domain.says in message, message
    if isinstance(domain.inner if isinstance(domain, Optional) else domain, Duration):
        assert DURATION_FORMS in message, message
    assert "\n" not in message and "\r" not in message, message


# --- rules across fields ---------------------------------------------------------------------


@given(rate=st.floats(0, MAX_RATE, exclude_min=True), duration=st.floats(0, DAY, exclude_min=True),
       scale=st.sampled_from([0.01, 0.2, 1.0, 10.0]))
def test_a_load_window_has_one_to_ten_million_requests(rate: float, duration: float,
                                                        scale: float) -> None:
    """Records take 36 bytes a request in memory (and more while summarised), so a window holds
    at most ten million; one with no request at all could never fail. The rate is per wall
    second and the window is scaled by the time scale."""
    requests = rate * duration * scale
    assume(abs(requests - MAX_REQUESTS) > 1 and not 1e-10 < requests < 1e-8)
    spec = LoadSpec(rate=rate, duration=duration)
    if 1e-8 <= requests <= MAX_REQUESTS:
        spec.check_window(scale)
        return
    with pytest.raises(SettingsError) as info:
        spec.check_window(scale)
    message = str(info.value)
    assert message.startswith("rate="), message
    assert "duration=" in message and "10,000,000 requests" in message, message


@given(interval=st.integers(5, 300), timeout=st.integers(2, 120),
       fraction=st.sampled_from([0.0, 0.25, 0.5, 0.999]))
def test_the_health_check_timeout_is_below_the_interval(interval: int, timeout: int,
                                                        fraction: float) -> None:
    """AWS refuses a timeout that is not below the interval; it takes whole seconds, so a
    fractional value counts as the next whole second (what the kubernetes backend sends)."""
    given_timeout = max(2.0, timeout - 1 + fraction) if fraction else float(timeout)
    whole = math.ceil(given_timeout)
    kwargs = {"healthcheck_interval": interval, "healthcheck_timeout": given_timeout}
    if whole < interval:
        assert AlbSpec(**kwargs).healthcheck_timeout == given_timeout  # type: ignore[arg-type]
        return
    with pytest.raises(SettingsError) as info:
        spec_from_marker(AlbSpec, "alb", (), kwargs, "t")
    message = str(info.value)
    assert message.startswith("marker alb on t: healthcheck_timeout=")
    assert f"healthcheck_interval={interval}s" in message


# --- every option, ini key and environment variable ------------------------------------------


@dataclass(frozen=True)
class Text(Domain):
    """Free text: a kubeconfig context, an image, a path. Never blank, no control characters;
    ``spaces``: whether it may contain spaces."""

    says: str = "non-blank"
    spaces: bool = True
    ascii: bool = False
    convert: Callable[[str], object] = str

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        # Letters, digits, punctuation and symbols of any script: printable, never blank.
        alphabet = st.characters(min_codepoint=33, max_codepoint=126) if self.ascii else \
            st.characters(categories=["L", "N", "P", "S"])
        words = st.text(alphabet, min_size=1, max_size=12)
        text = st.lists(words, min_size=1, max_size=3).map(" ".join) if self.spaces else words
        return text.map(lambda value: (value, self.convert(value)))

    def invalid_text(self) -> st.SearchStrategy[str]:
        bad = ["", " ", "   ", "\t", "\n", "a\nb", "a\rb", "a\x00b", "a\x1bb", "a\tb"]
        if not self.spaces:
            bad += ["a b", " a"]
        if self.ascii:
            bad += ["é", "kubia:日本"]
        return st.sampled_from(bad)


@dataclass(frozen=True)
class DnsName(Domain):
    says = "DNS name"
    wildcard: bool = False  # an Ingress host may start with "*."

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        label = st.from_regex(r"\A[a-z]([-a-z0-9]{0,8}[a-z0-9])?\Z")
        name = st.lists(label, min_size=1, max_size=4).map(".".join)
        if self.wildcard:
            name = st.one_of(name, name.map(lambda n: "*." + n))
        return name.map(lambda value: (value, value))

    def invalid_text(self) -> st.SearchStrategy[str]:
        bad = ["", " ", "Example.com", "-a.com", "a-.com", "a_b.com", "a..b", ".a", "a.",
               "exa mple.com", "é.com", "example.com\n", "a\r\nb", "a" * 254, "*", "**.a"]
        if self.wildcard:
            bad += ["1.2.3.4", "*.1.2.3.4", "a.*.com"]
        return st.sampled_from(bad)


@dataclass(frozen=True)
class Scopes(Domain):
    says = "comma-separated list of foreign-pods, foreign-nodes"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        names = st.lists(st.sampled_from(["foreign-pods", "foreign-nodes"]), min_size=1,
                         max_size=3)
        return names.map(lambda picked: (",".join(picked), frozenset(picked)))

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(["", " ", ",", "pods", "foreign-pods,nodes", "FOREIGN-PODS",
                                "foreign-pods\nforeign-nodes", "foreign_pods"])


@dataclass(frozen=True)
class Annotations(Domain):
    """Ingress annotations: key=value lines (the value is the rest of the line, its ends
    stripped) or a JSON object of strings; keys are Kubernetes' [prefix/]name."""

    says = "key=value, one per line, or a JSON object of strings"

    def valid(self) -> st.SearchStrategy[tuple[Any, Any]]:
        name = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?\Z")
        prefix = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\.[a-z]{2,4})?\Z")
        key = st.one_of(name, st.builds(lambda p, n: f"{p}/{n}", prefix, name))
        # Any printable text, "=" and inner spaces included, on one line.
        value = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=12)
        pairs = st.dictionaries(key, value, min_size=1, max_size=4)
        lines = pairs.map(lambda given: (
            "\n".join(f"{k}={v}" for k, v in given.items()),
            MappingProxyType({k: v.strip() for k, v in given.items()})))
        as_json = pairs.map(lambda given: (json.dumps(given), MappingProxyType(given)))
        return st.one_of(lines, as_json)

    def invalid_text(self) -> st.SearchStrategy[str]:
        return st.sampled_from([
            "", " ", "\n", "a", "=b", "a b=c", "/x=1", "a/=b", "x..y/a=b", "-a=b", "a-=b",
            "a=1\na=2", "a=b\nc", "{", "{}", "[]", '{"a": 1}', '{"a b": "c"}', '"a=b"',
            "é=1", "a\x00=b"])


OPTIONS: dict[str, Domain] = {
    "backend": Choice(("sim", "kubernetes")),
    "mode": MODES,
    "rate": Number(0, MAX_RATE, open_lo=True),
    "duration": POSITIVE_DURATION,
    "url": HttpUrl(),
    "load_processes": Count(1, MAX_PROCESSES),
    "seed": Count(0, MAX_SEED),
    "time_scale": Number(0.01, 10, open_lo=False),
    "report_dir": Text(says="non-blank path", convert=Path),
    "records": Boolean(),
    "provision_timeout": POSITIVE_DURATION,
    "dns_timeout": Duration(0, MAX_TIMEOUT, open_lo=True),
    "ca_bundle": CaBundle(),
    "sweep": Boolean(),
    "sweep_ttl": Age(),
    "sweep_dry_run": Boolean(),
    "kubeconfig": Text(says="non-blank path", convert=Path),
    "kube_context": Text(),
    "kube_timeout": Duration(0, 600, open_lo=True),
    "profile": Choice(("aws-alb", "gke", "nginx", "generic")),
    "class": DnsName(),
    "host": DnsName(wildcard=True),
    "image": Text(says="image reference", spaces=False, ascii=True),
    "steady_requests": Count(1, MAX_STEADY_REQUESTS),
    "allow_chaos_on": Scopes(),
    "ip_annotations": Annotations(),
    "instance_annotations": Annotations(),
    "aws_evidence": Choice(("auto", "on", "off")),
    "aws_region": Text(),
    "aws_profile": Text(),
}
DEFINITIONS = {option.name: option for option in options(tuple(REGISTRY))}
SETTING = {"class": "ingress_class"}  # the SessionSettings field of an option, when not its name
# Options valid only next to another: given with these (on the command line) in every case.
OPTION_CONTEXT: dict[str, dict[str, object]] = {
    "records": {"report_dir": "reports"},
    "ip_annotations": {"profile": "generic"},
    "instance_annotations": {"profile": "generic"},
    "sweep_ttl": {"sweep": True},  # the sweeper's options are refused without the sweep
    "sweep_dry_run": {"sweep": True},
}


def test_every_option_is_covered() -> None:
    assert list(DEFINITIONS) == list(OPTIONS)


def _resolve(name: str, source: str, raw: object) -> object:
    option = DEFINITIONS[name]
    cli = {**OPTION_CONTEXT.get(name, {}), **({name: raw} if source == "cli" else {})}
    ini = {name: raw} if source == "ini" else {}
    env = {option.env: raw} if source == "env" else {}
    return getattr(resolve_session(tuple(DEFINITIONS.values()), cli, ini, env),
                   SETTING.get(name, name))


def _source(name: str, source: str) -> str:
    option = DEFINITIONS[name]
    return {"cli": option.cli, "env": f"env {option.env}", "ini": f"ini {option.ini}"}[source]


def _has_a_request(name: str, value: object) -> bool:
    """Whether the default load window (60 requests/s for 20 s at time scale 1) with this
    option still holds a request: one with none is refused by a rule of its own."""
    window = {"rate": 60.0, "duration": 20.0, "time_scale": 1.0}
    if name in window:
        window[name] = float(value)  # type: ignore[arg-type]
    return window["rate"] * window["duration"] * window["time_scale"] > 1e-8


SOURCES = ["cli", "env", "ini"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", list(OPTIONS))
@given(data=st.data())
def test_a_valid_option_value_is_accepted_and_round_trips(name: str, source: str,
                                                          data: st.DataObject) -> None:
    raw, expected = data.draw(strategy(OPTIONS[name], "valid text"), label="value")
    assume(_has_a_request(name, expected))
    value = _resolve(name, source, raw)
    assert _same(value, expected), (raw, value, expected)
    again = ",".join(sorted(value)) if isinstance(value, frozenset) else value
    assert _resolve(name, source, again) == value  # the normalised value, as TOML gives it


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", list(OPTIONS))
@given(data=st.data())
def test_an_invalid_option_value_is_refused_naming_its_source_and_accepted_values(
        name: str, source: str, data: st.DataObject) -> None:
    """Empty and blank values included: they never fall back to the default silently."""
    domain = OPTIONS[name]
    raw = data.draw(strategy(domain, "invalid text"), label="value")
    with pytest.raises(SettingsError) as info:
        _resolve(name, source, raw)
    message = str(info.value)
    assert message.startswith(f"{_source(name, source)}="), message
    assert domain.says in message, message
    assert "\n" not in message and "\r" not in message, message


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", list(OPTIONS))
def test_an_empty_option_value_is_refused(name: str, source: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"{_source(name, source)}='': ")):
        _resolve(name, source, "")


@given(rate=st.integers(1, MAX_RATE), minutes=st.integers(1, 24 * 60),
       scale=st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0, 10.0]))
def test_the_default_load_window_is_bounded_at_start(rate: int, minutes: int,
                                                     scale: float) -> None:
    """``--ingress-rate`` x ``--ingress-duration`` x ``--ingress-time-scale`` (the rate is per
    wall second, the window is scaled): more than ten million requests is a usage error."""
    requests = rate * minutes * 60 * scale
    assume(abs(requests - MAX_REQUESTS) > 1)
    cli: Mapping[str, object] = {"rate": str(rate), "duration": f"{minutes}m",
                                 "time_scale": str(scale)}
    if requests <= MAX_REQUESTS:
        resolve_session(tuple(DEFINITIONS.values()), cli, {}, {})
        return
    with pytest.raises(SettingsError) as info:
        resolve_session(tuple(DEFINITIONS.values()), cli, {}, {})
    message = str(info.value)
    assert message.startswith(f"--ingress-rate={str(rate)!r} with --ingress-duration="), message
    assert "10,000,000 requests" in message


# --- end to end: what a user sees ------------------------------------------------------------

INNER = ("-p", "no:benchmark", "-p", "no:cacheprovider", "--ingress-time-scale", "0.2")


@dataclass
class Case:
    """One bad input given to a real pytest run, and what it must say."""

    says: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ini: str = ""
    marker: str = ""
    usage_error: bool = True  # else: an error at the setup of the test


END_TO_END = {
    "marker": Case("marker sample_service on test_it: replicas=1000: expected a whole number "
                   "from 1 to 100, got 1000", marker="sample_service(replicas=1000)",
                   usage_error=False),
    "marker-aws": Case("marker alb on test_it: healthcheck_timeout=20.0: must be below "
                       "healthcheck_interval=15s*", marker='alb(healthcheck_timeout="20s")',
                       usage_error=False),
    "option": Case("ERROR: pytest-ingress-chaos: --ingress-rate='': expected a number > 0 and "
                   "<= 100000, got ''", args=("--ingress-rate=",)),
    "ini": Case("ERROR: pytest-ingress-chaos: ini ingress_rate=1000000.0: expected a number > 0 "
                "and <= 100000, got 1000000.0", ini="ingress_rate = 1000000"),
    "ini-empty": Case("ERROR: pytest-ingress-chaos: ini ingress_seed*expected a whole number "
                      "from 0 to 9007199254740991*", ini="ingress_seed ="),
    "env": Case("ERROR: pytest-ingress-chaos: env PYTEST_INGRESS_LOAD_PROCESSES='\u0665': "
                "expected a whole number from 1 to 64, got '\u0665'",
                env={"PYTEST_INGRESS_LOAD_PROCESSES": "\u0665"}),
}


@pytest.mark.parametrize("case", list(END_TO_END.values()), ids=list(END_TO_END))
def test_plugin_reports_bad_input_without_a_traceback(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    pytester.makeini(f"[pytest]\n{case.ini}\n")
    decorator = f"@pytest.mark.{case.marker}" if case.marker else ""
    pytester.makepyfile(textwrap.dedent(f"""
        import pytest

        {decorator}
        def test_it(ingress_load):
            ingress_load.run()
    """))
    result = pytester.runpytest_subprocess(*INNER, *case.args)
    output = result.stdout.str() + result.stderr.str()
    if case.usage_error:
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        result.stderr.fnmatch_lines([case.says])
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*ERROR at setup of test_it*", case.says])
    assert "Traceback" not in output
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output



# --- chaos counts against the service, at setup ----------------------------------------------


def _check(*actions: Spec, replicas: int = 3, nodes: int | None = 3) -> None:
    check_against_service(list(actions), ServiceSpec(replicas=replicas),  # type: ignore[arg-type]
                          None if nodes is None else ("sim", nodes), "test_x")


@pytest.mark.parametrize(("actions", "says"), [
    ((KillPods(at=1, count=4),),
     "marker kill_pods on test_x: count=4 at=1s, but sample_service has replicas=3"),
    ((ScaleDeployment(at=1, replicas=1), KillPods(at=2, count=2)),
     "marker kill_pods on test_x: count=2 at=2s, but scale_deployment at=1s leaves replicas=1"),
    ((ScaleDeployment(at=1, replicas=0), KillPods(at=5, count=1)),
     "marker kill_pods on test_x: count=1 at=5s, but scale_deployment at=1s leaves replicas=0"),
    ((DrainNode(at=1, count=4),),
     "marker drain_node on test_x: count=4 at=1s, but sample_service has replicas=3"),
    ((DrainNode(at=1, count=3),),
     "marker drain_node on test_x: count=3, but the sim marker has nodes=3 and at least one "
     "must stay to run the evicted pods; accepted: count <= 2 in all"),
    ((DrainNode(at=1, count=1), DrainNode(at=2, count=2)),
     "marker drain_node on test_x: count=2 (with 1 drained before), but the sim marker has "
     "nodes=3"),
])
def test_chaos_the_service_cannot_take_is_refused_before_the_window(
        actions: tuple[Spec, ...], says: str) -> None:
    with pytest.raises(SettingsError) as info:
        _check(*actions)
    assert str(info.value).startswith(says), str(info.value)


@pytest.mark.parametrize("actions", [
    (KillPods(at=1, count=3),),
    (KillPods(at=1, count=3), KillPods(at=2, count=3)),  # replacements come up in between
    (ScaleDeployment(at=1, replicas=6), KillPods(at=2, count=5)),
    (ScaleDeployment(at=2, replicas=6), KillPods(at=2, count=5)),  # same offset: either order
    (KillPods(at=1, count=3), ScaleDeployment(at=2, replicas=1)),  # the scale-down comes after
    (DrainNode(at=1, count=2),),
    (DrainNode(at=1, count=1), DrainNode(at=2, count=1)),
    (RolloutRestart(at=1), KillPods(at=1, count=3)),
])
def test_chaos_the_service_can_take_passes(actions: tuple[Spec, ...]) -> None:
    _check(*actions)


def test_without_a_known_node_count_only_the_pods_limit_a_drain() -> None:
    _check(DrainNode(at=1, count=3), nodes=None)  # a real cluster's nodes are not known ahead
    with pytest.raises(SettingsError, match="sample_service has replicas=3"):
        _check(DrainNode(at=1, count=4), nodes=None)


SETUP_ERRORS = {
    "kill more pods than replicas": (
        '@pytest.mark.sample_service(replicas=2)\n@pytest.mark.kill_pods(at="1s", count=3)',
        "marker kill_pods on test_it: count=3 at=1s, but sample_service has replicas=2: at "
        "most 2 pods can be killed then; lower count or raise the replicas"),
    "drain every node": (
        '@pytest.mark.sim(nodes=2)\n@pytest.mark.drain_node(at="1s", count=2)',
        "marker drain_node on test_it: count=2, but the sim marker has nodes=2 and at least one "
        "must stay to run the evicted pods; accepted: count <= 1 in all"),
    "a window of no request": (
        '@pytest.mark.ingress_load(rate=1e-9, duration="1s")',
        "marker ingress_load on test_it: rate=1e-09: with duration=1s at time scale 0.2, the "
        "window has 0 requests; accepted: 1 to 10,000,000 requests per window*"),
    "a window too big to keep": (
        '@pytest.mark.ingress_load(rate=100000, duration="1h")',
        "marker ingress_load on test_it: rate=100000.0: with duration=3600s at time scale 0.2, "
        "the window has 72,000,000 requests; accepted: 1 to 10,000,000*"),
}


@pytest.mark.parametrize(("decorators", "says"), list(SETUP_ERRORS.values()),
                         ids=list(SETUP_ERRORS))
def test_markers_the_service_cannot_take_fail_at_setup(pytester: pytest.Pytester,
                                                       decorators: str, says: str) -> None:
    """At setup, before any load: the README promises it, and a whole window is long."""
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        {decorators}
        def test_it(ingress_load):
            ingress_load.run()
    """).format(decorators=decorators))
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_it*", says])
    output = result.stdout.str()
    assert "ingress-chaos summary" not in output  # no window ran
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output


IMPERATIVE = {
    "more pods than run": ("ingress_chaos.kill_pods(count=7)",
                           "ChaosError: kill_pods count=7, but only 3 pods are running: *"),
    "more nodes than run pods": ("ingress_chaos.drain_node(count=4)",
                                 "ChaosError: drain_node count=4, but only 3 nodes run pods: "
                                 "node-1, node-2, node-3"),
    "more than any service": ("ingress_chaos.kill_pods(count=1000)",
                              "SettingsError: ingress_chaos.kill_pods: count=1000: expected a "
                              "whole number from 1 to 100, got 1000"),
    "a wait that is no flag": ('ingress_chaos.rollout_restart(wait="maybe")',
                               "SettingsError: ingress_chaos.rollout_restart: wait='maybe': "
                               "expected true or false, got 'maybe'"),
    "a sleep that is no duration": ('ingress_load.sleep("forever")',
                                    "SettingsError: ingress_load.sleep: 'forever': expected a "
                                    "duration from 0s to 24h*"),
}


@pytest.mark.parametrize(("call", "says"), list(IMPERATIVE.values()), ids=list(IMPERATIVE))
def test_imperative_chaos_refuses_bad_input_without_a_traceback(
        pytester: pytest.Pytester, call: str, says: str) -> None:
    pytester.makepyfile(textwrap.dedent(f"""
        def test_it(ingress_load, ingress_chaos):
            ingress_load.start()
            {call}
    """))
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([says])
    output = result.stdout.str()
    assert not re.search(r"^\S+\.py:\d+: ", output, re.MULTILINE), output
    assert "pytest_ingress_chaos" not in output
    assert "During handling" not in output
