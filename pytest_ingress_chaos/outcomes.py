"""How one request ended: an HTTP status code, or a transport failure.

Outcomes are stored as small integers so the load generator can keep them in compact arrays:
HTTP status codes as themselves, transport failures as negative codes.
"""

from __future__ import annotations

TIMEOUT = -1
CONNECTION_REFUSED = -2
CONNECTION_RESET = -3
OTHER_ERROR = -4
NOT_SENT = -5  # the load generator could not send it (shut down before its turn came)

ERROR_LABELS: dict[int, str] = {
    TIMEOUT: "timeout",
    CONNECTION_REFUSED: "connection refused",
    CONNECTION_RESET: "reset",
    OTHER_ERROR: "error",
    NOT_SENT: "not sent",
}
LABEL_CODES = {label: code for code, label in ERROR_LABELS.items()}


def label(code: int) -> str:
    """``200`` -> ``"200"``, ``-1`` -> ``"timeout"``."""
    return str(code) if code >= 0 else ERROR_LABELS.get(code, "error")


def is_success(code: int) -> bool:
    return 200 <= code < 300
