"""The value forms users write in markers, options and ini files: parse and format.

Every parser takes what a user typed (a string from the command line, an environment variable
or an ini file, or a Python value from a marker) and returns the normalised value, or raises
``ValueError`` saying what is accepted. Callers add where the value came from.

The numeric parsers (:class:`Count`, :class:`Number`, :class:`Duration`) carry their range as
data, so a message always states it, and a setting's range is written once, where the setting
is defined. Numbers in strings are ASCII: ``str.isdigit()`` and ``float()`` also take
Arabic-Indic or fullwidth digits, which nobody types on purpose in a test setting.
"""

from __future__ import annotations

import argparse
import enum
import math
import numbers
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

Parser = Callable[[Any], Any]
T = TypeVar("T")

# Surrounding blanks are forgiven (an ini file's indentation, a shell's quoting), nothing else.
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*", re.ASCII)
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?\s*", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

DURATION_FORMS = '"250ms", "5s", "1m" or a number of seconds'
# The longest duration of any kind a test may ask for: a load window, a preStop sleep, a chaos
# offset, a controller lag. A day is far beyond any story this plugin tells (the longest
# documented wait is the ALB's 3600 s deregistration delay); longer is a typo, and would look
# like a hang.
MAX_DURATION = 86_400.0


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxlong, _SHOWN.maxother = 80, 40, 80


def shown(value: object) -> str:
    """``repr(value)`` for a message, shortened in the middle when long (a 400-digit number, a
    pasted file): the message stays one readable line."""
    return _SHOWN.repr(value)


class DurationStyle(enum.Enum):
    """The forms a duration is written in, each for one kind of reader."""

    SHORT = "short"  # 250ms, 5s, 1.5s: as users write durations (messages, headers)
    ON_AXIS = "on-axis"  # 1.23 s: a place on a report's time axis, to the hundredth
    LIVE = "live"  # 12.3s, 123s: the live progress line, whose width barely moves
    AGE = "age"  # 2h03m, 45m10s, 30s: an age people read at a glance (whole seconds)
    PLAIN = "plain"  # 15, 0.5: a bare number of seconds, as ``sleep`` and annotations read it


def format_duration(seconds: float, style: DurationStyle = DurationStyle.SHORT) -> str:
    """The one duration formatter: ``seconds`` in ``style``."""
    if style is DurationStyle.ON_AXIS:
        return f"{seconds:.2f} s"
    if style is DurationStyle.LIVE:
        return f"{seconds:.1f}s" if seconds < 100 else f"{seconds:.0f}s"
    if style is DurationStyle.AGE:
        hours, rest = divmod(max(0, int(seconds)), 3600)
        minutes, whole = divmod(rest, 60)
        if hours:
            return f"{hours}h{minutes:02d}m"
        return f"{minutes}m{whole:02d}s" if minutes else f"{whole}s"
    if style is DurationStyle.PLAIN:  # never 1e+06, never float noise past the millisecond
        return f"{round(seconds, 3):.3f}".rstrip("0").rstrip(".") or "0"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def format_seconds(seconds: float) -> str:
    """Short human form of a duration: ``250ms``, ``5s``, ``1.5s`` (``DurationStyle.SHORT``)."""
    return format_duration(seconds)


def _format_bound(seconds: float) -> str:
    """A range's end: ``5s``, ``3600s`` (as AWS writes it), ``24h``."""
    if seconds >= 7200 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return format_seconds(seconds)


def whole_seconds(seconds: float) -> int:
    """``seconds`` rounded up to a whole number of seconds.

    Kubernetes (probe delays, grace periods) and AWS (every ``*-seconds`` annotation and
    ``*.timeout_seconds`` attribute) take integers only. Rounding up never gives less time
    than asked for: a 0.5 s grace period becomes 1 s, not 0 s (which would mean "kill at
    once"). The value is first rounded to the microsecond so that float noise such as
    ``3000 * 0.001 == 3.0000000000000004`` does not add a second.
    """
    return math.ceil(round(seconds, 6))


def _real(value: object) -> float | None:
    """A number given as a number or an ASCII decimal string; None when it is neither (or out
    of float's range: ``10**400`` is no number of seconds either)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        return None
    if not isinstance(value, (str, numbers.Real)):
        return None
    try:
        return float(value)
    except (OverflowError, ValueError):
        return None


def _range(minimum: float, maximum: float, above_minimum: bool,
           show: Callable[[float], str]) -> str:
    if math.isinf(maximum):
        return f"{'>' if above_minimum else '>='} {show(minimum)}"
    if above_minimum:
        return f"> {show(minimum)} and <= {show(maximum)}"
    return f"from {show(minimum)} to {show(maximum)}"


def _inside(number: float, minimum: float, maximum: float, above_minimum: bool) -> bool:
    """Also False for NaN, and for infinities unless a bound is infinite."""
    low = number > minimum if above_minimum else number >= minimum
    return low and number <= maximum and math.isfinite(number)


@dataclass(frozen=True)
class Number:
    """A finite real number in a range: a rate, a fraction, a time scale."""

    minimum: float = 0.0
    maximum: float = math.inf
    above_minimum: bool = True  # the minimum itself is refused
    note: str = ""  # why the range, shown after it

    @property
    def accepted(self) -> str:
        bounds = _range(self.minimum, self.maximum, self.above_minimum, lambda x: f"{x:g}")
        return f"a number {bounds}{self.note}"

    def __call__(self, value: object) -> float:
        number = _real(value)
        if number is None or not _inside(number, self.minimum, self.maximum,
                                         self.above_minimum):
            raise ValueError(f"expected {self.accepted}, got {shown(value)}")
        return number


@dataclass(frozen=True)
class Count:
    """A whole number in a range: replicas, connections, processes, a seed."""

    minimum: int = 0
    maximum: float = math.inf  # an int, or math.inf for no upper bound
    note: str = ""

    @property
    def accepted(self) -> str:
        return f"a whole number {_range(self.minimum, self.maximum, False, str)}{self.note}"

    def __call__(self, value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value):
            number = int(value)
        else:
            raise ValueError(f"expected {self.accepted}, got {shown(value)}")
        if not self.minimum <= number <= self.maximum:
            raise ValueError(f"expected {self.accepted}, got {shown(value)}")
        return number


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"5s"``, ``"1m"``, ``"1h"`` or a number; finite and >= 0.

    Raises ValueError with the accepted forms when the value is none of them.
    """
    seconds: float | None = None
    if isinstance(value, str):
        if match := _DURATION.fullmatch(value):
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    elif not isinstance(value, bool):
        seconds = _real(value)
    if seconds is None or not _inside(seconds, 0.0, math.inf, False):
        raise ValueError(f"expected a finite duration >= 0 ({DURATION_FORMS}), got {shown(value)}")
    return seconds


@dataclass(frozen=True)
class Duration:
    """A duration in a range, in seconds (test seconds for everything the time scale
    compresses)."""

    minimum: float = 0.0
    maximum: float = MAX_DURATION
    above_minimum: bool = False
    note: str = ""

    @property
    def accepted(self) -> str:
        bounds = _range(self.minimum, self.maximum, self.above_minimum, _format_bound)
        return f"a duration {bounds}{self.note} ({DURATION_FORMS})"

    def __call__(self, value: object) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            seconds = math.nan
        if not _inside(seconds, self.minimum, self.maximum, self.above_minimum):
            raise ValueError(f"expected {self.accepted}, got {shown(value)}")
        return seconds


@dataclass(frozen=True)
class Choice:
    """One of a few names, exactly as written."""

    options: tuple[str, ...]

    @property
    def accepted(self) -> str:
        return "one of " + ", ".join(map(repr, self.options))

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise ValueError(f"expected {self.accepted}, got {shown(value)}")
        return value


def choice(*accepted: str) -> Choice:
    return Choice(accepted)


@dataclass(frozen=True)
class CountOrPercent:
    """maxSurge / maxUnavailable: a whole number of pods or a percentage such as "25%"."""

    maximum: int
    note: str = ""

    @property
    def accepted(self) -> str:
        return (f"a whole number from 0 to {self.maximum} or a percentage from 0% to 100% "
                f"like '25%'{self.note}")

    def __call__(self, value: object) -> int | str:
        if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value, re.ASCII) and \
                int(value[:-1]) <= 100:
            return value
        try:
            return Count(0, self.maximum)(value)
        except ValueError:
            raise ValueError(f"expected {self.accepted}, got {shown(value)}") from None


# --- the other parsers: each raises ValueError saying what is accepted -----------------------

fraction = Number(0.0, 1.0, above_minimum=False)
# Open ranges for the few settings with no natural upper bound (how many errors an SLO allows,
# a port number's own check): still whole, still checked.
count_at_least_zero = Count(0)
duration = Duration()
positive_duration = Duration(above_minimum=True)
# An age ("sweep what is older than a week"): no wait, so no reason for a bound.
positive_age = Duration(above_minimum=True, maximum=math.inf)


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {shown(value)}")


def _wire_safe(text: str) -> bool:
    """Printable ASCII without spaces: what may go into a request line unescaped (a space, CR
    or LF would break the request line; non-ASCII has to be percent-encoded first)."""
    return text.isascii() and text.isprintable() and " " not in text


def http_url(value: object) -> str:
    """An ``http://`` or ``https://`` URL with a host and a valid port, safe on the wire."""
    accepted = ("expected an http:// or https:// URL with a host (and a port from 1 to 65535, "
                f"if any), printable ASCII without spaces, got {shown(value)}")
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or \
            not _wire_safe(value):
        raise ValueError(accepted)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:  # also a malformed "[...]" host
        raise ValueError(accepted + " (bad host or port)") from None
    if not parts.hostname:
        raise ValueError(accepted + " (no host)")
    if port == 0:
        raise ValueError(accepted + " (bad host or port)")
    return value


def url_path(value: object) -> str:
    """The path (and query) of the load's requests: starts with '/', safe on the wire."""
    if not isinstance(value, str) or not value.startswith("/") or not _wire_safe(value):
        raise ValueError("expected a path starting with '/', printable ASCII without spaces "
                         f"(percent-encode the rest), got {shown(value)}")
    return value


@dataclass(frozen=True)
class Optional:
    """``None`` switches the setting off; anything else goes through ``parse``."""

    parse: Parser

    def __call__(self, value: object) -> Any:
        return None if value is None else self.parse(value)


def optional(parse: Parser) -> Optional:
    return Optional(parse)


def describe(parse: Parser) -> str | None:
    """What ``parse`` accepts, in words, when it says (the range parsers and choices do)."""
    text = getattr(parse, "accepted", None)
    return text if isinstance(text, str) else None


def argparse_type(parse: Callable[[object], T], name: str) -> Callable[[str], T]:
    """Adapt a parser to argparse, keeping its message (which says what is accepted): argparse
    would replace a plain ValueError with a bare "invalid value"."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert
