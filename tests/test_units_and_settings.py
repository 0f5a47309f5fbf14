"""Parsing and validation of everything a user types: durations, markers, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ingress_chaos.backends import REGISTRY
from pytest_ingress_chaos.backends.sim.nodepolicy import NodePolicy, NodeView
from pytest_ingress_chaos.backends.sim.spec import SimSpec
from pytest_ingress_chaos.base.errors import SettingsError
from pytest_ingress_chaos.base.specs import DrainNode, KillPods, LoadSpec, ServiceSpec, SLOSpec
from pytest_ingress_chaos.base.units import (
    DurationStyle,
    format_duration,
    format_seconds,
    parse_duration,
)
from pytest_ingress_chaos.settings.markers import modes_from_marker, spec_from_marker
from pytest_ingress_chaos.settings.options import SessionSettings, options
from pytest_ingress_chaos.settings.options import resolve_session as _resolve_session


def resolve_session(cli: dict[str, object], ini: dict[str, object],
                    env: dict[str, str]) -> SessionSettings:
    return _resolve_session(options(tuple(REGISTRY)), cli, ini, env)


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("5s", 5.0), ("1m", 60.0), ("1.5s", 1.5), ("2h", 7200.0), (3, 3.0),
    (0.5, 0.5), ("10", 10.0), (" 7s ", 7.0),
])
def test_durations_in_every_accepted_form(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 sec", "-1s", "abc", "", None, True, "1e3s", float("nan")])
def test_bad_durations_name_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(bad)


def test_format_seconds_is_short() -> None:
    assert [format_seconds(s) for s in (0.25, 5, 1.5, 0)] == ["250ms", "5s", "1.5s", "0s"]


def test_marker_keywords_override_the_base() -> None:
    base = LoadSpec(rate=100.0)
    spec = spec_from_marker(LoadSpec, "ingress_load", (), {"duration": "3s", "timeout": 1},
                            "test_x", base)
    assert (spec.rate, spec.duration, spec.timeout, spec.connections) == (100.0, 3.0, 1.0, 100)


def test_unknown_marker_keyword_lists_the_accepted_ones() -> None:
    with pytest.raises(SettingsError) as info:
        spec_from_marker(KillPods, "kill_pods", (), {"att": "5s"}, "test_x")
    message = str(info.value)
    assert "marker kill_pods on test_x" in message
    assert "unknown keyword att" in message
    assert "at, count, grace_period, force, signal" in message


def test_positional_marker_arguments_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"keyword arguments only"):
        spec_from_marker(KillPods, "kill_pods", ("5s",), {}, "test_x")


@pytest.mark.parametrize(("spec_type", "kwargs", "fragment"), [
    (LoadSpec, {"rate": 0}, "rate=0: expected a number > 0 and <= 100000"),
    (LoadSpec, {"rate": "fast"}, "expected a number"),
    (LoadSpec, {"duration": "0s"}, "expected a duration > 0"),
    (LoadSpec, {"connections": 1.5}, "whole number from 1 to 65535"),
    (LoadSpec, {"keepalive": "maybe"}, "true or false"),
    (LoadSpec, {"path": "x"}, "starting with '/'"),
    (LoadSpec, {"url": "ftp://x"}, "http:// or https://"),
    (LoadSpec, {"url": "http://:80/"}, "(no host)"),
    (LoadSpec, {"url": "http://127.0.0.1:99999/"}, "a port from 1 to 65535"),
    (LoadSpec, {"url": "http://127.0.0.1/a\r\nX-Injected: 1"}, "printable ASCII without spaces"),
    (LoadSpec, {"path": "/a b"}, "printable ASCII without spaces"),
    (LoadSpec, {"path": "/caf\u00e9"}, "percent-encode the rest"),
    (LoadSpec, {"path": "/x", "url": "http://127.0.0.1:1/"}, "put the path into the URL"),
    (LoadSpec, {"max_connections": 5, "connections": 10}, "at least connections=10"),
    (SLOSpec, {"max_error_rate": 2}, "a number from 0 to 1"),
    (SLOSpec, {"ignore": ["nope"]}, "'timeout'"),
    (ServiceSpec, {"on_sigterm": "crash"}, "'exit', 'drain', 'ignore'"),
    (ServiceSpec, {"replicas": 0}, "whole number from 1 to 100"),
    (KillPods, {"count": 0}, "whole number from 1 to 100"),
    (KillPods, {"at": "soon"}, '"250ms", "5s", "1m"'),
    (DrainNode, {"exclude_from_load_balancers": 2}, "true or false"),
    (DrainNode, {"deregistration_wait": "5s"}, "goes with exclude_from_load_balancers=True"),
    (SimSpec, {"controller_version": "v0.9"}, "(v1.0.0 or later)"),
    (SimSpec, {"controller_version": "2"}, "like 'v3.5', 'v2.13' or 'v1.1.9'"),
])
def test_bad_marker_values_name_marker_field_and_accepted_values(
        spec_type: type, kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        spec_from_marker(spec_type, "m", (), kwargs, "test_y")
    assert str(info.value).startswith("marker m on test_y: " + next(iter(kwargs)))
    assert fragment in str(info.value)


def test_none_switches_an_slo_check_off() -> None:
    slo = spec_from_marker(SLOSpec, "ingress_slo", (), {"max_errors": None, "p99": "500ms",
                                                        "ignore": "404"}, "t")
    assert (slo.max_errors, slo.p99, slo.ignore) == (None, 0.5, ("404",))


def test_modes_marker() -> None:
    assert modes_from_marker(("ip", "instance"), {}, "t") == ["ip", "instance"]
    for args, kwargs, fragment in [((), {}, "at least one mode"),
                                   (("nlb",), {}, "'ip', 'instance'"),
                                   (("ip", "ip"), {}, "named twice"),
                                   ((), {"mode": "ip"}, "positional")]:
        with pytest.raises(SettingsError, match=fragment):
            modes_from_marker(args, kwargs, "t")


def test_session_precedence_is_cli_then_env_then_ini() -> None:
    ini = {"rate": "10", "mode": "ip", "duration": "7s"}
    env = {"PYTEST_INGRESS_RATE": "20", "PYTEST_INGRESS_MODE": "instance"}
    settings = resolve_session({"rate": "30"}, ini, env)
    assert (settings.rate, settings.mode, settings.duration) == (30.0, "instance", 7.0)
    assert settings.load_defaults().rate == 30.0
    assert resolve_session({}, {}, {}).mode == "instance"


@pytest.mark.parametrize(("cli", "ini", "env", "source"), [
    ({"rate": "-3"}, {}, {}, "--ingress-rate='-3'"),
    ({}, {}, {"PYTEST_INGRESS_MODE": "alb"}, "env PYTEST_INGRESS_MODE='alb'"),
    ({}, {"duration": "long"}, {}, "ini ingress_duration='long'"),
    ({"backend": "k8s"}, {}, {}, "--ingress-backend='k8s': expected one of 'sim'"),
])
def test_bad_option_names_its_source(cli: dict[str, object], ini: dict[str, object],
                                     env: dict[str, str], source: str) -> None:
    with pytest.raises(SettingsError) as info:
        resolve_session(cli, ini, env)
    assert str(info.value).startswith(source)


def test_generic_profile_annotations_per_mode_in_both_forms() -> None:
    """One key=value per line (an ini value over several lines), or a JSON object for values
    that hold newlines; the mode without any gets none."""
    ini = {"profile": "generic", "ip_annotations": "\n  example.com/target = pod ip\n"
           "  example.com/weights = a=1,b=2\n"}
    env = {"PYTEST_INGRESS_INSTANCE_ANNOTATIONS": '{"example.com/snippet": "a;\\nb;"}'}
    settings = resolve_session({}, ini, env)
    assert settings.annotations_per_mode() == {
        "ip": {"example.com/target": "pod ip", "example.com/weights": "a=1,b=2"},
        "instance": {"example.com/snippet": "a;\nb;"}}
    assert resolve_session({"profile": "generic"}, {}, {}).annotations_per_mode() == {}


@pytest.mark.parametrize(("cli", "ini", "env", "message"), [
    ({"ip_annotations": "a/b=c"}, {}, {},
     "--ingress-ip-annotations: annotations per mode are taken by the generic ingress profile "
     "only; the aws-alb profile sets its own (set --ingress-profile generic"),
    ({"profile": "nginx"}, {"instance_annotations": "a/b=c"}, {},
     "ini ingress_instance_annotations: annotations per mode are taken by the generic ingress "
     "profile only; the nginx profile sets its own"),
    ({"backend": "kubernetes"}, {"profile": "generic"}, {},
     "ini ingress_profile=generic: the generic ingress profile needs an ingress class: give it "
     "with --ingress-class (ini ingress_class, env PYTEST_INGRESS_CLASS)"),
])
def test_profile_settings_that_do_not_go_together_are_refused_at_start(
        cli: dict[str, object], ini: dict[str, object], env: dict[str, str],
        message: str) -> None:
    with pytest.raises(SettingsError) as info:
        resolve_session(cli, ini, env)
    assert str(info.value).startswith(message), info.value


def test_the_generic_profile_without_a_class_is_fine_on_the_simulator() -> None:
    """The profile is the kubernetes backend's: an ini file that names it for the cluster runs
    still runs on the simulator."""
    assert resolve_session({}, {"profile": "generic"}, {}).profile == "generic"
    with_class = resolve_session({"backend": "kubernetes", "class": "haproxy"},
                                 {"profile": "generic"}, {})
    assert with_class.ingress_class == "haproxy"


def test_report_dir_is_a_path() -> None:
    assert resolve_session({"report_dir": "out"}, {}, {}).report_dir == Path("out")


def test_drain_node_waits_30s_after_the_exclusion_unless_told() -> None:
    assert DrainNode().wait_before_drain is None
    assert DrainNode(exclude_from_load_balancers=True).wait_before_drain == 30.0
    assert DrainNode(exclude_from_load_balancers="yes",
                     deregistration_wait="1m").wait_before_drain == 60.0


# docs/alb-facts.md section 7, row by row: what drops a node that is still Ready.
CORDONED = NodeView("node-1", unschedulable=True, excluded=False, ready=True)
LABELLED = NodeView("node-1", unschedulable=False, excluded=True, ready=True)
NOT_READY = NodeView("node-1", unschedulable=True, excluded=False, ready=False)


@pytest.mark.parametrize(("version", "normalised", "drops_cordoned", "drops_labelled"), [
    ("v1.0.0", "v1.0.0", False, False),
    ("1.1.5", "v1.1.5", False, False),
    ("v1.1.6", "v1.1.6", True, True),
    ("v1.1.9", "v1.1.9", True, True),
    ("v2.0", "v2.0", False, True),
    ("v2.1.1", "v2.1.1", False, True),
    (" v2.13.1 ", "v2.13.1", False, True),
    ("v3.5", "v3.5", False, True),
])
def test_controller_versions_drop_nodes_as_the_table_says(
        version: str, normalised: str, drops_cordoned: bool, drops_labelled: bool) -> None:
    assert SimSpec(controller_version=version).controller_version == normalised
    policy = NodePolicy.of(normalised)
    assert (policy.drop_reason(CORDONED) is not None) is drops_cordoned
    assert (policy.drop_reason(LABELLED) is not None) is drops_labelled
    assert policy.drop_reason(NOT_READY) is not None  # every version lets a dead node go


def test_the_newest_controller_behaviour_is_the_default() -> None:
    assert SimSpec().controller_version == "v3.5"
    newest, v2_12 = NodePolicy.of(SimSpec().controller_version), NodePolicy.of("v2.12.0")
    assert (newest.drops_cordoned, newest.honours_exclude_label) == \
        (v2_12.drops_cordoned, v2_12.honours_exclude_label)


def test_one_duration_formatter_writes_every_style() -> None:
    forms = {style: format_duration(90.5, style) for style in DurationStyle}
    assert forms == {DurationStyle.SHORT: "90.5s", DurationStyle.ON_AXIS: "90.50 s",
                     DurationStyle.LIVE: "90.5s", DurationStyle.AGE: "1m30s",
                     DurationStyle.PLAIN: "90.5"}
    assert format_duration(1e6, DurationStyle.PLAIN) == "1000000"
    assert format_duration(150.4, DurationStyle.LIVE) == "150s"
