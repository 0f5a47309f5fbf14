"""The value forms users write in markers, options and ini files: parse and format.

Every parser takes what a user typed (a string from the command line or an ini file, or a Python
value from a marker) and returns the normalised value, or raises ``ValueError`` saying what is
accepted. Callers add where the value came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Parser = Callable[[Any], Any]

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


# --- parsers: each raises ValueError saying what is accepted ---------------------------------


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


def _wire_safe(text: str) -> bool:
    """Printable ASCII without spaces: what may go into a request line unescaped (a space, CR
    or LF would break the request line; non-ASCII has to be percent-encoded first)."""
    return text.isascii() and text.isprintable() and " " not in text


def http_url(value: object) -> str:
    """An ``http://`` or ``https://`` URL with a host and a valid port, safe on the wire."""
    accepted = "an http:// or https:// URL with a host, printable ASCII without spaces"
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or \
            not _wire_safe(value):
        raise ValueError(f"expected {accepted}, got {value!r}")
    parts = urlsplit(value)
    try:
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise ValueError(f"expected a port from 1 to 65535 in the URL, got {value!r}") from None
    if not parts.hostname:
        raise ValueError(f"expected {accepted}, got {value!r} (no host)")
    if port == 0:
        raise ValueError(f"expected a port from 1 to 65535 in the URL, got {value!r}")
    return value


def url_path(value: object) -> str:
    """The path (and query) of the load's requests: starts with '/', safe on the wire."""
    if not isinstance(value, str) or not value.startswith("/") or not _wire_safe(value):
        raise ValueError("expected a path starting with '/', printable ASCII without spaces "
                         f"(percent-encode the rest), got {value!r}")
    return value


def optional(parse: Parser) -> Parser:
    """``None`` switches the setting off; anything else goes through ``parse``."""

    def parse_or_none(value: object) -> Any:
        return None if value is None else parse(value)

    return parse_or_none
