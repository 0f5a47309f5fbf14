"""Session options: ``--ingress-*``, ini ``ingress_*`` and ``PYTEST_INGRESS_*`` -> one
:class:`SessionSettings`.

Each setting is defined once (:data:`OPTIONS`), with one help text shared by the command line
and the ini key. One function applies precedence (command line, then environment, then ini
file) and validation, so a bad value always says where it came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import units
from .errors import SettingsError
from .specs import DEFAULT_MODE, MODES, LoadSpec

PROFILES = ("aws-alb", "gke", "nginx", "generic")
# A public kubia image (the field report's sample app family): GET on 8080 answers
# "You've hit <hostname>".
DEFAULT_IMAGE = "luksa/kubia:latest"
_FIELD = {"class": "ingress_class"}  # option names that are Python keywords
# What chaos may touch beyond the objects the run created, when the user says so.
CHAOS_SCOPES = ("foreign-pods", "foreign-nodes")


def chaos_scopes(value: object) -> frozenset[str]:
    """``--ingress-allow-chaos-on foreign-pods,foreign-nodes``."""
    names = [part.strip() for part in str(value).split(",") if part.strip()]
    unknown = sorted(set(names) - set(CHAOS_SCOPES))
    if unknown or not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(CHAOS_SCOPES)}, "
                         f"got {value!r}")
    return frozenset(names)


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
                  units.positive_number, None, "RPS", ini_type="float"),
        OptionDef("duration", f"default load window ({units.DURATION_FORMS}; default 20s)",
                  units.positive_duration, None, "DURATION"),
        OptionDef("url", "send the load to this existing endpoint instead of a provisioned "
                  "service (chaos markers are then rejected)", units.http_url, None, "URL"),
        OptionDef("load_processes", "spread each load window over this many processes, for "
                  "rates one process cannot hold (default 1)", units.count_at_least_one, None,
                  "N", ini_type="int"),
        OptionDef("seed", "seed for victim choice; printed in every report so a run can be "
                  "replayed (default: random)", units.count_at_least_zero, None, "N",
                  ini_type="int"),
        OptionDef("time_scale", "sim backend: factor applied to every simulated timing, load "
                  "window and chaos offset; 0.1 runs a story ten times faster (default 1)",
                  units.positive_number, 1.0, "FACTOR", ini_type="float"),
        OptionDef("report_dir", "write one JSON report per ingress test into this directory",
                  lambda value: Path(str(value)), None, "DIR"),
        OptionDef("records", "also write every request of each load window, one CSV row "
                  "each, into the report directory (needs --ingress-report-dir)",
                  units.boolean, False, ini_type="bool", switch=True),
        # --- the kubernetes backend -------------------------------------------------------
        OptionDef("kubeconfig", "kubernetes backend: the kubeconfig file (default: $KUBECONFIG, "
                  "~/.kube/config, or the in-cluster service account)",
                  lambda value: Path(str(value)), None, "PATH", flag="--kubeconfig"),
        OptionDef("kube_context", "kubernetes backend: the kubeconfig context (default: its "
                  "current context)", str, None, "NAME", flag="--kube-context"),
        OptionDef("profile", "kubernetes backend: how target types map to the ingress: "
                  f"{', '.join(PROFILES)} (default aws-alb)", units.choice(*PROFILES),
                  "aws-alb", "NAME"),
        OptionDef("class", "kubernetes backend: the ingress class (default: the profile's: alb, "
                  "gce, nginx)", str, None, "NAME"),
        OptionDef("host", "kubernetes backend: the host name of the Ingress rule (default: "
                  "none, any host)", str, None, "HOST"),
        OptionDef("image", f"kubernetes backend: the sample app image (default {DEFAULT_IMAGE}; "
                  "it must answer GET on port 8080)", str, DEFAULT_IMAGE, "IMAGE"),
        OptionDef("steady_requests", "kubernetes backend: consecutive 2xx answers through the "
                  "ingress, from every Ready pod, before a load window opens (default 30)",
                  units.count_at_least_one, 30, "N", ini_type="int"),
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
    """Apply precedence (command line, then environment, then ini file) and validate."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in definitions:
        for source, raw in (
            (option.cli, cli.get(option.name)),
            (f"env {option.env}", env.get(option.env)),
            (f"ini {option.ini}", ini.get(option.name)),
        ):
            if raw is None or raw == "":
                continue
            try:
                values[_FIELD.get(option.name, option.name)] = option.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{source}={raw!r}: {exc}") from None
            sources[option.name] = source
            break
    if values.get("records") and values.get("report_dir") is None:
        raise SettingsError(f"{sources['records']}: the request records are written into the "
                            "report directory; set --ingress-report-dir too (or ini "
                            "ingress_report_dir, env PYTEST_INGRESS_REPORT_DIR)")
    return SessionSettings(**values)
