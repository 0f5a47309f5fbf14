"""Session options: ``--ingress-*``, ini ``ingress_*`` and ``PYTEST_INGRESS_*`` -> one
:class:`SessionSettings`.

Each setting is defined once (:data:`OPTIONS`), with one help text shared by the command line
and the ini key. One function applies precedence (command line, then environment, then ini
file) and validation, so a bad value always says where it came from. An empty value is a value
too: ``--ingress-rate=`` or ``PYTEST_INGRESS_MODE=`` is refused like any other bad one, never
taken to mean "the default".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import units
from .clock import TIME_SCALE
from .errors import SettingsError
from .specs import DEFAULT_MODE, MODES, FieldError, LoadSpec, field_parser

PROFILES = ("aws-alb", "gke", "nginx", "generic")
# A public kubia image (the field report's sample app family): GET on 8080 answers
# "You've hit <hostname>".
DEFAULT_IMAGE = "luksa/kubia:latest"
_FIELD = {"class": "ingress_class"}  # option names that are Python keywords
# What chaos may touch beyond the objects the run created, when the user says so.
CHAOS_SCOPES = ("foreign-pods", "foreign-nodes")
# The seed is printed in every report and written into the JSON one, whose readers often hold
# numbers as doubles (JavaScript, jq): they keep integers exact up to 2**53 - 1.
MAX_SEED = 2**53 - 1
# Consecutive 2xx answers, one at a time, before every window on a real cluster: a thousand
# adds minutes to each test and proves no more than thirty.
MAX_STEADY_REQUESTS = 1000
# Kubernetes' rule for an IngressClass name and an Ingress host (a DNS-1123 subdomain).
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_FORM = ("a DNS name: at most 253 characters, dot-separated lower-case labels of letters, "
             "digits and '-'")


def chaos_scopes(value: object) -> frozenset[str]:
    """``--ingress-allow-chaos-on foreign-pods,foreign-nodes``."""
    names = [part.strip() for part in str(value).split(",") if part.strip()]
    unknown = sorted(set(names) - set(CHAOS_SCOPES))
    if unknown or not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(CHAOS_SCOPES)}, "
                         f"got {units.shown(value)}")
    return frozenset(names)


def text(value: object) -> str:
    """Free text such as a kubeconfig context: not blank, no control characters (CR, LF, tab,
    NUL), which no name holds and which would break the line it is printed on."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError("expected a non-blank value without control characters, got "
                         f"{units.shown(value)}")
    return value


def path(value: object) -> Path:
    """A file or directory; relative to the directory pytest runs in."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError("expected a non-blank path without control characters, got "
                         f"{units.shown(value)}")
    return Path(value)


def ingress_class(value: object) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"expected {_DNS_FORM}, got {units.shown(value)}")
    return value


def ingress_host(value: object) -> str:
    """An Ingress rule's host: a DNS name, or one with a wildcard first label ("*.example.com");
    not an IP address (networking.k8s.io/v1)."""
    bare = value[2:] if isinstance(value, str) and value.startswith("*.") else value
    if not isinstance(bare, str) or len(bare) > 253 or not _DNS_SUBDOMAIN.fullmatch(bare) or \
            bare.replace(".", "").isdigit():
        raise ValueError(f"expected {_DNS_FORM}, optionally '*.' first, not an IP address, "
                         f"got {units.shown(value)}")
    return str(value)


def image(value: object) -> str:
    if not isinstance(value, str) or not value or not value.isascii() or \
            not value.isprintable() or " " in value:
        raise ValueError("expected an image reference such as 'luksa/kubia:latest' (printable "
                         f"ASCII without spaces), got {units.shown(value)}")
    return value


@dataclass(frozen=True)
class OptionDef:
    """One setting, reachable as ``--ingress-<name>``, ini ``ingress_<name>`` and
    ``PYTEST_INGRESS_<NAME>``."""

    name: str
    help: str
    parse: units.Parser
    default: Any = None
    metavar: str = "VALUE"
    flag: str | None = None  # the command-line flag when it is not --ingress-<name>
    # How pytest reads the ini key: "int", "float" and "bool" let pytest 9's native
    # [tool.pytest] table take numbers and booleans; everything else is a string we parse.
    ini_type: str = "string"
    switch: bool = False  # a flag that takes no value on the command line

    def cli_arguments(self) -> dict[str, Any]:
        """What ``addoption`` needs beyond the name, the destination and the help: absent
        stays None, so the environment and the ini file get their turn."""
        if self.switch:
            return {"action": "store_true", "default": None}
        return {"default": None, "metavar": self.metavar}

    @property
    def cli(self) -> str:
        return self.flag or "--ingress-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "ingress_" + self.name

    @property
    def env(self) -> str:
        return "PYTEST_INGRESS_" + self.name.upper()


def options(backends: tuple[str, ...]) -> tuple[OptionDef, ...]:
    """Every session option; ``backends`` are the registered backend names."""
    return (
        OptionDef("backend", f"where the service runs: {', '.join(backends)} (default sim)",
                  units.choice(*backends), "sim", "NAME"),
        OptionDef("mode", "target type when a test has no ingress_mode marker: ip or instance "
                  f"(default {DEFAULT_MODE})", units.choice(*MODES), DEFAULT_MODE, "MODE"),
        OptionDef("rate", "default load rate in requests per second (default 60)",
                  field_parser(LoadSpec, "rate"), None, "RPS", ini_type="float"),
        OptionDef("duration", f"default load window ({units.DURATION_FORMS}; default 20s)",
                  field_parser(LoadSpec, "duration"), None, "DURATION"),
        OptionDef("url", "send the load to this existing endpoint instead of a provisioned "
                  "service (chaos markers are then rejected)", units.http_url, None, "URL"),
        OptionDef("load_processes", "spread each load window over this many processes, for "
                  "rates one process cannot hold (default 1)", field_parser(LoadSpec, "processes"),
                  None, "N", ini_type="int"),
        OptionDef("seed", "seed for victim choice; printed in every report so a run can be "
                  "replayed (default: random)", units.Count(0, MAX_SEED), None, "N",
                  ini_type="int"),
        OptionDef("time_scale", "sim backend: factor applied to every simulated timing, load "
                  "window and chaos offset; 0.1 runs a story ten times faster (default 1)",
                  TIME_SCALE, 1.0, "FACTOR", ini_type="float"),
        OptionDef("report_dir", "write one JSON report per ingress test into this directory",
                  path, None, "DIR"),
        OptionDef("records", "also write every request of each load window, one CSV row "
                  "each, into the report directory (needs --ingress-report-dir)",
                  units.boolean, False, ini_type="bool", switch=True),
        # --- the kubernetes backend -------------------------------------------------------
        OptionDef("kubeconfig", "kubernetes backend: the kubeconfig file (default: $KUBECONFIG, "
                  "~/.kube/config, or the in-cluster service account)",
                  path, None, "PATH", flag="--kubeconfig"),
        OptionDef("kube_context", "kubernetes backend: the kubeconfig context (default: its "
                  "current context)", text, None, "NAME", flag="--kube-context"),
        OptionDef("profile", "kubernetes backend: how target types map to the ingress: "
                  f"{', '.join(PROFILES)} (default aws-alb)", units.choice(*PROFILES),
                  "aws-alb", "NAME"),
        OptionDef("class", "kubernetes backend: the ingress class (default: the profile's: alb, "
                  "gce, nginx)", ingress_class, None, "NAME"),
        OptionDef("host", "kubernetes backend: the host name of the Ingress rule (default: "
                  "none, any host)", ingress_host, None, "HOST"),
        OptionDef("image", f"kubernetes backend: the sample app image (default {DEFAULT_IMAGE}; "
                  "it must answer GET on port 8080)", image, DEFAULT_IMAGE, "IMAGE"),
        OptionDef("steady_requests", "kubernetes backend: consecutive 2xx answers through the "
                  "ingress, from every Ready pod, before a load window opens (default 30)",
                  units.Count(1, MAX_STEADY_REQUESTS), 30, "N", ini_type="int"),
        OptionDef("allow_chaos_on", "kubernetes backend: let chaos touch what this run did not "
                  f"create, comma-separated: {', '.join(CHAOS_SCOPES)} (default: nothing)",
                  chaos_scopes, frozenset(), "WHAT"),
    )


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    backend: str = "sim"
    mode: str = DEFAULT_MODE
    rate: float | None = None
    duration: float | None = None
    url: str | None = None
    load_processes: int | None = None
    seed: int | None = None
    time_scale: float = 1.0
    report_dir: Path | None = None
    records: bool = False
    kubeconfig: Path | None = None
    kube_context: str | None = None
    profile: str = "aws-alb"
    ingress_class: str | None = None
    host: str | None = None
    image: str = DEFAULT_IMAGE
    steady_requests: int = 30
    allow_chaos_on: frozenset[str] = frozenset()

    def load_defaults(self) -> LoadSpec:
        """The ``ingress_load`` values a test gets before its own marker is applied."""
        base = LoadSpec(url=self.url, processes=self.load_processes or 1)
        if self.rate is not None:
            base = dataclasses.replace(base, rate=self.rate)
        if self.duration is not None:
            base = dataclasses.replace(base, duration=self.duration)
        return base


def resolve_session(
    definitions: tuple[OptionDef, ...],
    cli: Mapping[str, object],
    ini: Mapping[str, object],
    env: Mapping[str, str],
) -> SessionSettings:
    """Apply precedence (command line, then environment, then ini file) and validate.

    Only an absent value (None) falls through to the next source; an empty one is refused.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # option name -> where its value came from
    given: dict[str, str] = {}  # option name -> its source and value, for messages
    for option in definitions:
        for source, raw in (
            (option.cli, cli.get(option.name)),
            (f"env {option.env}", env.get(option.env)),
            (f"ini {option.ini}", ini.get(option.name)),
        ):
            if raw is None:
                continue
            try:
                values[_FIELD.get(option.name, option.name)] = option.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{source}={units.shown(raw)}: {exc}") from None
            sources[option.name] = source
            given[option.name] = f"{source}={units.shown(raw)}"
            break
    if values.get("records") and values.get("report_dir") is None:
        raise SettingsError(f"{sources['records']}: the request records are written into the "
                            "report directory; set --ingress-report-dir too (or ini "
                            "ingress_report_dir, env PYTEST_INGRESS_REPORT_DIR)")
    settings = SessionSettings(**values)
    try:  # the default load window as a whole: how many requests it sends
        settings.load_defaults().check_window(settings.time_scale)
    except FieldError as exc:
        sources_shown = " with ".join(given[name] for name in ("rate", "duration", "time_scale")
                                      if name in given)
        raise SettingsError(f"{sources_shown}: {exc}") from None
    return settings
