"""The plugin's markers: which spec each one builds, its help text, and marker -> spec.

``pytest --markers`` shows help generated from the specs themselves, so a keyword added to a
spec can never be missing from the help. Backends add markers of their own (the simulator's
``sim``) through the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..base.errors import SettingsError
from ..base.specs import (
    CHAOS_SPECS,
    MODES,
    AlbSpec,
    FieldError,
    LoadSpec,
    ServiceSpec,
    SLOSpec,
    Spec,
)
from ..base.units import choice

S = TypeVar("S", bound=Spec)


@dataclass(frozen=True)
class MarkerDef:
    """A keyword marker backed by a spec."""

    name: str
    spec: type[Spec]
    doc: str

    def signature(self) -> str:
        args = []
        for spec_field in dataclasses.fields(self.spec):
            shown = spec_field.metadata.get("shown") or repr(spec_field.default)
            args.append(f"{spec_field.name}={shown}")
        return f"{self.name}({', '.join(args)})"

    def help(self) -> str:
        return f"{self.name}: {self.signature()}: {self.doc}"


MODE_MARKER_HELP = ("ingress_mode: ingress_mode(*modes): target type(s), 'ip' and/or 'instance'; "
                    "several modes make one test per mode.")

CORE_MARKERS: tuple[MarkerDef, ...] = (
    MarkerDef("ingress_load", LoadSpec, "the constant-rate load window."),
    MarkerDef("ingress_slo", SLOSpec, "the verdict; None switches a check off."),
    MarkerDef("sample_service", ServiceSpec, "how the sample app is deployed."),
    MarkerDef("alb", AlbSpec, "the load balancer's settings (AWS Load Balancer Controller "
              "annotations)."),
    MarkerDef("kill_pods", CHAOS_SPECS["kill_pods"],
              "delete pods (or, with signal, kill their container) at an offset from load "
              "start."),
    MarkerDef("rollout_restart", CHAOS_SPECS["rollout_restart"],
              "kubectl rollout restart at an offset from load start."),
    MarkerDef("scale_deployment", CHAOS_SPECS["scale_deployment"],
              "scale the sample Deployment at an offset from load start."),
    MarkerDef("drain_node", CHAOS_SPECS["drain_node"],
              "cordon nodes running pods, evict the pods, terminate the nodes; with "
              "exclude_from_load_balancers, first label them excluded from load balancers "
              "and wait deregistration_wait."),
)


def marker_help(extra: Iterable[MarkerDef]) -> list[str]:
    """One ``markers`` ini line per marker, for ``pytest --markers``."""
    return [MODE_MARKER_HELP, *(m.help() for m in (*CORE_MARKERS, *extra))]


def spec_from_marker(
    spec_type: type[S],
    marker_name: str,
    args: Sequence[object],
    kwargs: Mapping[str, object],
    where: str,
    base: S | None = None,
) -> S:
    """Build ``spec_type`` from a marker's arguments, on top of ``base`` (session defaults).

    ``where`` names the test, e.g. ``"test_pod_kill"``; it goes into every error message.
    """
    source = f"marker {marker_name} on {where}"
    fields = [spec_field.name for spec_field in dataclasses.fields(spec_type)]
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
    try:
        if base is None:
            return spec_type(**kwargs)
        return dataclasses.replace(base, **kwargs)
    except FieldError as exc:
        raise SettingsError(f"{source}: {exc}") from None


def merged_kwargs(
    marker_name: str,
    nodes: Sequence[tuple[str, Sequence[Mapping[str, object]]]],
    where: str,
) -> dict[str, object]:
    """The keywords of one marker kind given on several nodes, merged keyword by keyword.

    ``nodes`` is closest first (the function, its class, its module), each node's name with the
    keywords of its markers of this kind. The closest node that gives a keyword wins for that
    keyword. Two markers on one node that give one keyword different values are an error
    naming both: neither is closer, so which one wins would be a guess.
    """
    merged: dict[str, object] = {}
    for node_name, markers in nodes:
        given: dict[str, Mapping[str, object]] = {}  # keyword -> its marker here
        for kwargs in markers:
            for key, value in kwargs.items():
                other = given.get(key)
                if other is not None and other[key] != value:
                    raise SettingsError(
                        f"marker {marker_name} on {where}: two {marker_name} markers on "
                        f"{node_name} give {key} different values: {_shown(marker_name, other)} "
                        f"and {_shown(marker_name, kwargs)}; keep one")
                given.setdefault(key, kwargs)
        for key, kwargs in given.items():
            merged.setdefault(key, kwargs[key])
    return merged


def _shown(marker_name: str, kwargs: Mapping[str, object]) -> str:
    return f"{marker_name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


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
