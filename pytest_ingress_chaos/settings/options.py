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
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..base import kubenames, units
from ..base.clock import TIME_SCALE
from ..base.errors import SettingsError
from ..base.specs import DEFAULT_MODE, MODES, FieldError, LoadSpec, field_parser

PROFILES = ("aws-alb", "gke", "nginx", "generic")
AWS_EVIDENCE = ("auto", "on", "off")
# A public kubia image (the field report's sample app family): GET on 8080 answers
# "You've hit <hostname>".
DEFAULT_IMAGE = "luksa/kubia:latest"
_FIELD = {"class": "ingress_class"}  # option names that are Python keywords
# What chaos may touch beyond the objects the run created, when the user says so.
CHAOS_SCOPES = ("foreign-pods", "foreign-nodes")
# The seed is printed in every report and written into the JSON one, whose readers often hold
# numbers as doubles (JavaScript, jq): they keep integers exact up to 2**53 - 1.
MAX_SEED = 2**53 - 1
# How long (wall seconds: provisioning is real work, the time scale does not shorten it) one
# test's service may take to come up before the backend says what it saw.
DEFAULT_PROVISION_TIMEOUT = 300.0
# Seconds the kubernetes backend's first request (the server's version) may take: an API server
# answers it in milliseconds, so more means it is not there, whatever the reason.
DEFAULT_KUBE_TIMEOUT = 5.0
MAX_KUBE_TIMEOUT = 600.0
# Consecutive 2xx answers, one at a time, before every window on a real cluster: a thousand
# adds minutes to each test and proves no more than thirty.
MAX_STEADY_REQUESTS = 1000


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
    if not kubenames.is_dns_subdomain(value):
        raise ValueError(f"expected {kubenames.DNS_NAME_FORM}, got {units.shown(value)}")
    return value


def ingress_host(value: object) -> str:
    """An Ingress rule's host: a DNS name, or one with a wildcard first label ("*.example.com");
    not an IP address (networking.k8s.io/v1)."""
    bare = value[2:] if isinstance(value, str) and value.startswith("*.") else value
    if not kubenames.is_dns_subdomain(bare) or str(bare).replace(".", "").isdigit():
        raise ValueError(f"expected {kubenames.DNS_NAME_FORM}, optionally '*.' first, not an "
                         f"IP address, got {units.shown(value)}")
    return str(value)


def image(value: object) -> str:
    if not isinstance(value, str) or not value or not value.isascii() or \
            not value.isprintable() or " " in value:
        raise ValueError("expected an image reference such as 'luksa/kubia:latest' (printable "
                         f"ASCII without spaces), got {units.shown(value)}")
    return value


ANNOTATIONS_FORM = ("Ingress annotations: key=value, one per line, or a JSON object of strings; "
                    f"each key {kubenames.QUALIFIED_NAME_FORM}")


def ingress_annotations(value: object) -> Mapping[str, str]:
    """The generic profile's Ingress annotations for one target type: ``key=value`` lines (an
    ini value over several lines; the value is the rest of the line, its ends stripped), or a
    JSON object of strings (for values that hold newlines). Keys follow Kubernetes' rule."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"expected {ANNOTATIONS_FORM}, got {units.shown(value)} ({why})")

    pairs: list[tuple[object, object]] = []
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise refuse("not valid JSON") from None
        pairs = list(parsed.items()) if isinstance(parsed, dict) else []
    elif isinstance(value, Mapping):  # a TOML table, or settings built in Python
        pairs = list(value.items())
    elif isinstance(value, str):
        for line in filter(None, (line.strip() for line in value.splitlines())):
            key, equals, rest = line.partition("=")
            if not equals:
                raise refuse(f"no '=' in {units.shown(line)}")
            pairs.append((key.strip(), rest.strip()))
    if not pairs:
        raise refuse("no annotation")
    checked: dict[str, str] = {}
    for name, text in pairs:
        if not kubenames.is_qualified_name(name):
            raise refuse(f"key {units.shown(name)} is not [prefix/]name")
        if not isinstance(text, str):
            raise refuse(f"the value of {name} is not a string")
        if name in checked:
            raise refuse(f"{name} given twice")
        checked[name] = text
    return MappingProxyType(checked)


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
        OptionDef("provision_timeout", "how long provisioning one test's service may take, in "
                  "wall time (the time scale does not shorten it), before the backend says what "
                  f"it saw ({units.DURATION_FORMS}; default 5m)",
                  units.Duration(above_minimum=True), DEFAULT_PROVISION_TIMEOUT, "DURATION"),
        OptionDef("dns_timeout", "default deadline of name resolution, before and apart from "
                  f"the request timeout ({units.DURATION_FORMS}; default 5s)",
                  field_parser(LoadSpec, "dns_timeout"), None, "DURATION"),
        OptionDef("ca_bundle", "default CAs an https:// target's certificate must chain to, "
                  "instead of the system's: a PEM file, as curl --cacert (default: the system's)",
                  field_parser(LoadSpec, "ca_bundle"), None, "PATH"),
        # --- instead of a test run: the sweeper -------------------------------------------
        OptionDef("sweep", "run no test: delete what killed sessions of this plugin left on the "
                  "backend (kubernetes: its labelled namespaces older than --ingress-sweep-ttl), "
                  "then exit", units.boolean, False, ini_type="bool", switch=True),
        OptionDef("sweep_ttl", "with --ingress-sweep: only what is older than this "
                  f"({units.DURATION_FORMS}; default 1h)", units.positive_age, 3600.0,
                  "DURATION"),
        OptionDef("sweep_dry_run", "with --ingress-sweep: list what would be deleted, delete "
                  "nothing", units.boolean, False, ini_type="bool", switch=True),
        # --- the kubernetes backend -------------------------------------------------------
        OptionDef("kubeconfig", "kubernetes backend: the kubeconfig file (default: $KUBECONFIG, "
                  "~/.kube/config, or the in-cluster service account)",
                  path, None, "PATH", flag="--kubeconfig"),
        OptionDef("kube_context", "kubernetes backend: the kubeconfig context (default: its "
                  "current context)", text, None, "NAME", flag="--kube-context"),
        OptionDef("kube_timeout", "kubernetes backend: how long the API server may take to "
                  "answer the first request before the session says it is not there "
                  f"({units.DURATION_FORMS}; default 5s)",
                  units.Duration(0.0, MAX_KUBE_TIMEOUT, above_minimum=True),
                  DEFAULT_KUBE_TIMEOUT, "DURATION"),
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
        OptionDef("ip_annotations", "kubernetes backend, generic profile: the Ingress "
                  "annotations in ip mode: key=value, one per line, or a JSON object",
                  ingress_annotations, None, "ANNOTATIONS"),
        OptionDef("instance_annotations", "kubernetes backend, generic profile: the Ingress "
                  "annotations in instance mode: key=value, one per line, or a JSON object",
                  ingress_annotations, None, "ANNOTATIONS"),
        # --- the kubernetes backend on AWS (docs/aws-evidence.md) ---------------------------
        OptionDef("aws_evidence", "kubernetes backend: the ALB's own view of its targets from "
                  "the AWS API: auto (on with the aws-alb profile and AWS credentials), on, off "
                  "(default auto)", units.choice(*AWS_EVIDENCE), "auto", "WHEN"),
        OptionDef("aws_region", "the AWS region of the ALBs (default: boto3's: AWS_REGION, "
                  "the profile's)", text, None, "REGION", flag="--aws-region"),
        OptionDef("aws_profile", "the AWS profile of the credentials (default: boto3's chain: "
                  "environment, AWS_PROFILE, web identity, instance metadata)", text, None,
                  "NAME", flag="--aws-profile"),
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
    provision_timeout: float = DEFAULT_PROVISION_TIMEOUT
    dns_timeout: float | None = None
    ca_bundle: str | None = None
    sweep: bool = False
    sweep_ttl: float = 3600.0
    sweep_dry_run: bool = False
    kubeconfig: Path | None = None
    kube_context: str | None = None
    kube_timeout: float = DEFAULT_KUBE_TIMEOUT
    profile: str = "aws-alb"
    ingress_class: str | None = None
    host: str | None = None
    image: str = DEFAULT_IMAGE
    steady_requests: int = 30
    allow_chaos_on: frozenset[str] = frozenset()
    ip_annotations: Mapping[str, str] | None = None
    instance_annotations: Mapping[str, str] | None = None
    aws_evidence: str = "auto"
    aws_region: str | None = None
    aws_profile: str | None = None
    # Where each given setting came from and what it was, by option name:
    # "env PYTEST_INGRESS_REPORT_DIR='/etc/passwd'". A later check (the report directory's
    # creation) names the same source as the parser would have.
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def origin(self, name: str) -> str:
        """Where the option ``name`` came from and its value as given, for a message."""
        return self.origins.get(name, f"the default {name}")

    def annotations_per_mode(self) -> dict[str, Mapping[str, str]]:
        """The generic profile's Ingress annotations given, by target type."""
        given = {"ip": self.ip_annotations, "instance": self.instance_annotations}
        return {mode: annotations for mode, annotations in given.items()
                if annotations is not None}

    def load_defaults(self) -> LoadSpec:
        """The ``ingress_load`` values a test gets before its own marker is applied."""
        base = LoadSpec(url=self.url, processes=self.load_processes or 1)
        if self.rate is not None:
            base = dataclasses.replace(base, rate=self.rate)
        if self.duration is not None:
            base = dataclasses.replace(base, duration=self.duration)
        if self.dns_timeout is not None:
            base = dataclasses.replace(base, dns_timeout=self.dns_timeout)
        if self.ca_bundle is not None:
            base = dataclasses.replace(base, ca_bundle=self.ca_bundle)
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
    _check_profile(values, sources)
    _check_sweep(values, given)
    settings = SessionSettings(**values, origins=MappingProxyType(given))
    try:  # the default load window as a whole: how many requests it sends
        settings.load_defaults().check_window(settings.time_scale)
    except FieldError as exc:
        sources_shown = " with ".join(given[name] for name in ("rate", "duration", "time_scale")
                                      if name in given)
        raise SettingsError(f"{sources_shown}: {exc}") from None
    return settings


def _check_sweep(values: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """The sweeper's options mean nothing to a test run: given without the sweep itself, they
    would be dropped without a word (a CI job that meant to sweep would run the tests)."""
    for name in ("sweep_ttl", "sweep_dry_run"):
        if name in given and not values.get("sweep"):
            raise SettingsError(f"{given[name]}: applies only to the sweep; give --ingress-sweep "
                                "too (or ini ingress_sweep, env PYTEST_INGRESS_SWEEP), or drop it")


def _check_profile(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """The kubernetes backend's profile and what goes with it, checked at start: annotations
    per mode are the generic profile's alone, and it has no ingress class of its own."""
    profile = values.get("profile", "aws-alb")
    for name in ("ip_annotations", "instance_annotations"):
        if name in values and profile != "generic":
            raise SettingsError(f"{sources[name]}: annotations per mode are taken by the generic "
                                f"ingress profile only; the {profile} profile sets its own (set "
                                "--ingress-profile generic, or ini ingress_profile, env "
                                "PYTEST_INGRESS_PROFILE)")
    if values.get("backend") == "kubernetes" and profile == "generic" and \
            values.get("ingress_class") is None:
        raise SettingsError(f"{sources['profile']}=generic: the generic ingress profile needs an "
                            "ingress class: give it with --ingress-class (ini ingress_class, env "
                            "PYTEST_INGRESS_CLASS)")
