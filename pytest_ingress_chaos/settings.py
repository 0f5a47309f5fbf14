"""Options, ini keys, environment variables and markers -> validated, typed settings.

Everything a user can type is parsed here, in one place, so that every bad value gets the same
kind of message: where it came from (``--ingress-rate``, ``ini ingress_rate``,
``env PYTEST_INGRESS_RATE``, ``marker kill_pods on test_x``), what was wrong, and what is
accepted. Nothing here imports pytest; ``plugin.py`` turns :class:`SettingsError` into the
matching pytest error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .outcomes import LABEL_CODES
from .units import DURATION_FORMS, parse_duration

MODES = ("ip", "instance")
BACKENDS = ("sim",)
SIGTERM_BEHAVIOURS = ("exit", "drain", "ignore")
TRAFFIC_POLICIES = ("Cluster", "Local")
ALB_ALGORITHMS = ("round_robin", "least_outstanding_requests")
DEFAULT_MODE = "instance"  # the AWS Load Balancer Controller's default target type


class SettingsError(ValueError):
    """A user-supplied value is invalid; the message names its source and the accepted values."""


# --- value parsers: each raises ValueError saying what is accepted --------------------------


def _number(value: object, *, minimum: float = 0.0, strict: bool = True) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {value!r}")
    if number < minimum or (strict and number == minimum):
        bound = ">" if strict else ">="
        raise ValueError(f"expected a number {bound} {minimum:g}, got {value!r}")
    return number


def positive_number(value: object) -> float:
    return _number(value)


def fraction(value: object) -> float:
    number = _number(value, strict=False)
    if number > 1:
        raise ValueError(f"expected a fraction between 0 and 1, got {value!r}")
    return number


def _integer(value: object, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    if number < minimum:
        raise ValueError(f"expected a whole number >= {minimum}, got {value!r}")
    return number


def count_at_least_one(value: object) -> int:
    return _integer(value, 1)


def count_at_least_zero(value: object) -> int:
    return _integer(value, 0)


def count_or_percent(value: object) -> int | str:
    """maxSurge / maxUnavailable: a whole number of pods or a percentage such as "25%"."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return value
    try:
        return _integer(value, 0)
    except ValueError:
        raise ValueError(f"expected a whole number >= 0 or a percentage like '25%', "
                         f"got {value!r}") from None


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def duration(value: object) -> float:
    return parse_duration(value)


def positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError(f"expected a duration > 0 ({DURATION_FORMS}), got {value!r}")
    return seconds


def choice(*accepted: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if value not in accepted:
            raise ValueError(f"expected one of {', '.join(map(repr, accepted))}, got {value!r}")
        return str(value)

    return parse


def http_url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def url_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


def outcome_names(value: object) -> tuple[str, ...]:
    """``ignore=`` of ingress_slo: outcome labels such as "502", "timeout", "reset"."""
    items = (value,) if isinstance(value, (str, int)) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"expected an outcome or a list of outcomes, got {value!r}")
    names = []
    for item in items:
        name = str(item)
        if not (name.isdigit() and len(name) == 3) and name not in LABEL_CODES:
            accepted = ", ".join(map(repr, LABEL_CODES))
            raise ValueError(f"expected HTTP status codes like '502' or one of {accepted}, "
                             f"got {item!r}")
        names.append(name)
    return tuple(names)


def optional(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    """``None`` switches the setting off; anything else goes through ``parse``."""

    def parse_or_none(value: object) -> Any:
        return None if value is None else parse(value)

    return parse_or_none


def _parsed(parse: Callable[[object], Any], default: Any) -> Any:
    return field(default=default, metadata={"parse": parse})


# --- marker specs: keyword-only dataclasses, one per marker ---------------------------------


@dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """``@pytest.mark.ingress_load``: the constant-rate load window."""

    rate: float = _parsed(positive_number, 60.0)
    duration: float = _parsed(positive_duration, 20.0)
    connections: int = _parsed(count_at_least_one, 100)
    timeout: float = _parsed(positive_duration, 2.0)
    keepalive: bool = _parsed(boolean, True)
    path: str = _parsed(url_path, "/")
    url: str | None = _parsed(optional(http_url), None)
    processes: int = _parsed(count_at_least_one, 1)


@dataclass(frozen=True, kw_only=True)
class SLOSpec:
    """``@pytest.mark.ingress_slo``: the verdict. ``None`` switches a check off."""

    max_errors: int | None = _parsed(optional(count_at_least_zero), 0)
    max_error_rate: float | None = _parsed(optional(fraction), None)
    p99: float | None = _parsed(optional(positive_duration), None)
    ignore: tuple[str, ...] = _parsed(outcome_names, ())


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """``@pytest.mark.sample_service``: how the sample app is deployed."""

    replicas: int = _parsed(count_at_least_one, 3)
    nodes: int = _parsed(count_at_least_one, 3)
    prestop_sleep: float = _parsed(duration, 0.0)
    grace_period: float = _parsed(duration, 30.0)
    on_sigterm: str = _parsed(choice(*SIGTERM_BEHAVIOURS), "exit")
    readiness_delay: float = _parsed(duration, 0.0)
    readiness_gate: bool = _parsed(boolean, False)
    external_traffic_policy: str = _parsed(choice(*TRAFFIC_POLICIES), "Cluster")
    # How long the app keeps an idle keep-alive connection open; None: until the client
    # closes it. Node.js defaults to 5 s, shorter than the ALB's 60 s idle timeout.
    keepalive_timeout: float | None = _parsed(optional(positive_duration), None)


@dataclass(frozen=True, kw_only=True)
class AlbSpec:
    """``@pytest.mark.alb``: the load balancer and its controller, with the AWS Load Balancer
    Controller's defaults (names follow its annotations)."""

    deregistration_delay: float = _parsed(duration, 300.0)
    healthcheck_interval: float = _parsed(positive_duration, 15.0)
    healthcheck_timeout: float = _parsed(positive_duration, 5.0)
    healthy_threshold: int = _parsed(count_at_least_one, 2)
    unhealthy_threshold: int = _parsed(count_at_least_one, 2)
    registration_lag: float = _parsed(duration, 10.0)
    deregistration_lag: float = _parsed(duration, 10.0)
    lag_jitter: float = _parsed(duration, 2.0)
    idle_timeout: float = _parsed(positive_duration, 60.0)
    algorithm: str = _parsed(choice(*ALB_ALGORITHMS), "round_robin")

CONTAINER_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP")


@dataclass(frozen=True, kw_only=True)
class KillPods:
    """``@pytest.mark.kill_pods``: delete ``count`` pods ``at`` seconds after load start; with
    ``signal``, signal their container process instead (the pod stays and restarts it)."""

    kind = "kill_pods"
    at: float = _parsed(duration, 0.0)
    count: int = _parsed(count_at_least_one, 1)
    grace_period: float | None = _parsed(optional(duration), None)
    force: bool = _parsed(boolean, False)
    signal: str | None = _parsed(optional(choice(*CONTAINER_SIGNALS)), None)


@dataclass(frozen=True, kw_only=True)
class RolloutRestart:
    """``@pytest.mark.rollout_restart``: ``kubectl rollout restart`` at ``at``."""

    kind = "rollout_restart"
    at: float = _parsed(duration, 0.0)
    max_surge: int | str = _parsed(count_or_percent, "25%")
    max_unavailable: int | str = _parsed(count_or_percent, "25%")


@dataclass(frozen=True, kw_only=True)
class ScaleDeployment:
    """``@pytest.mark.scale_deployment``: scale the sample Deployment to ``replicas``."""

    kind = "scale_deployment"
    at: float = _parsed(duration, 0.0)
    replicas: int = _parsed(count_at_least_zero, 1)


@dataclass(frozen=True, kw_only=True)
class DrainNode:
    """``@pytest.mark.drain_node``: cordon ``count`` nodes that run pods, evict their pods, and
    terminate the nodes."""

    kind = "drain_node"
    at: float = _parsed(duration, 0.0)
    count: int = _parsed(count_at_least_one, 1)


ChaosSpec = KillPods | RolloutRestart | ScaleDeployment | DrainNode
CHAOS_MARKERS: dict[str, type[ChaosSpec]] = {
    spec.kind: spec for spec in (KillPods, RolloutRestart, ScaleDeployment, DrainNode)
}

Spec = TypeVar("Spec")


def spec_from_marker(
    spec_type: type[Spec],
    marker_name: str,
    args: Sequence[object],
    kwargs: Mapping[str, object],
    where: str,
    base: Spec | None = None,
) -> Spec:
    """Build ``spec_type`` from a marker's arguments, on top of ``base`` (session defaults).

    ``where`` names the test, e.g. ``"test_pod_kill"``; it goes into every error message.
    """
    source = f"marker {marker_name} on {where}"
    fields = {f.name: f for f in dataclasses.fields(spec_type)}  # type: ignore[arg-type]
    if args:
        raise SettingsError(
            f"{source}: takes keyword arguments only ({', '.join(fields)}), got positional "
            f"{', '.join(map(repr, args))}"
        )
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise SettingsError(
            f"{source}: unknown keyword{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; accepted: {', '.join(fields)}"
        )
    values = {}
    for name, value in kwargs.items():
        try:
            values[name] = fields[name].metadata["parse"](value)
        except ValueError as exc:
            raise SettingsError(f"{source}: {name}={value!r}: {exc}") from None
    start = base if base is not None else spec_type()
    return dataclasses.replace(start, **values)  # type: ignore[type-var]


def modes_from_marker(
    args: Sequence[object], kwargs: Mapping[str, object], where: str
) -> list[str]:
    """``@pytest.mark.ingress_mode("ip", "instance")`` -> ``["ip", "instance"]``."""
    source = f"marker ingress_mode on {where}"
    if kwargs:
        raise SettingsError(f"{source}: takes modes as positional arguments, "
                            f"got keywords {', '.join(sorted(kwargs))}")
    if not args:
        raise SettingsError(f"{source}: name at least one mode ({', '.join(MODES)})")
    parse = choice(*MODES)
    try:
        modes = [parse(arg) for arg in args]
    except ValueError as exc:
        raise SettingsError(f"{source}: {exc}") from None
    if len(set(modes)) != len(modes):
        raise SettingsError(f"{source}: a mode is named twice in {modes!r}")
    return modes


# --- session options: CLI > environment > ini file > default ------------------------------


@dataclass(frozen=True)
class OptionDef:
    """One setting, reachable as ``--ingress-<name>``, ini ``ingress_<name>`` and
    ``PYTEST_INGRESS_<NAME>``."""

    name: str
    help: str
    parse: Callable[[object], Any]
    default: Any = None
    metavar: str = "VALUE"

    @property
    def cli(self) -> str:
        return "--ingress-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "ingress_" + self.name

    @property
    def env(self) -> str:
        return "PYTEST_INGRESS_" + self.name.upper()


OPTIONS: tuple[OptionDef, ...] = (
    OptionDef("backend", f"where the service runs: {', '.join(BACKENDS)} (default sim)",
              choice(*BACKENDS), "sim", "NAME"),
    OptionDef("mode", "target type when a test has no ingress_mode marker: ip or instance "
              f"(default {DEFAULT_MODE})", choice(*MODES), DEFAULT_MODE, "MODE"),
    OptionDef("rate", "default load rate in requests per second (default 60)",
              positive_number, None, "RPS"),
    OptionDef("duration", f"default load window ({DURATION_FORMS}; default 20s)",
              positive_duration, None, "DURATION"),
    OptionDef("url", "send the load to this existing endpoint instead of a provisioned "
              "service (chaos markers are then rejected)", http_url, None, "URL"),
    OptionDef("load_processes", "spread each load window over this many processes, for rates "
              "one process cannot hold (default 1)", count_at_least_one, None, "N"),
    OptionDef("seed", "seed for victim choice; printed in every report so a run can be "
              "replayed (default: random)", count_at_least_zero, None, "N"),
    OptionDef("time_scale", "sim backend: factor applied to every simulated timing, load "
              "window and chaos offset; 0.1 runs a story ten times faster (default 1)",
              positive_number, 1.0, "FACTOR"),
    OptionDef("report_dir", "write one JSON report per ingress test into this directory",
              lambda value: Path(str(value)), None, "DIR"),
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

    def load_defaults(self) -> LoadSpec:
        """The ``ingress_load`` values a test gets before its own marker is applied."""
        base = LoadSpec(url=self.url, processes=self.load_processes or 1)
        if self.rate is not None:
            base = dataclasses.replace(base, rate=self.rate)
        if self.duration is not None:
            base = dataclasses.replace(base, duration=self.duration)
        return base


def resolve_session(
    cli: Mapping[str, object], ini: Mapping[str, object], env: Mapping[str, str]
) -> SessionSettings:
    """Apply precedence (command line, then environment, then ini file) and validate."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        for source, raw in (
            (option.cli, cli.get(option.name)),
            (f"env {option.env}", env.get(option.env)),
            (f"ini {option.ini}", ini.get(option.name)),
        ):
            if raw is None or raw == "":
                continue
            try:
                values[option.name] = option.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{source}={raw!r}: {exc}") from None
            break
    return SessionSettings(**values)
