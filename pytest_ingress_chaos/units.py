"""Parsing of the value forms users write in markers, options and ini files."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

DURATION_FORMS = '"250ms", "5s", "1m" or a number of seconds'


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds; accepts ``"250ms"``, ``"5s"``, ``"1m"``, ``"1h"`` or a number.

    Raises ValueError with the accepted forms when the value is none of them.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {value!r}")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"expected a finite duration >= 0, got {value!r}")
    return seconds


def format_seconds(seconds: float) -> str:
    """Short human form of a duration: ``250ms``, ``5s``, ``1.5s``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
