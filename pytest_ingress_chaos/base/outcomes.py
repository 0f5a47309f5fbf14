"""How one request ended: an HTTP status code, or a transport failure.

Outcomes are stored as small integers so the load generator can keep them in compact arrays:
HTTP status codes as themselves, transport failures as negative codes.

Who is to blame differs by kind. A status code, a refused or reset connection and a timeout come
from the ingress or from what stands behind it. A name that does not resolve or a local socket
that cannot be opened (no file descriptors, no ephemeral ports left) is the machine running the
tests: such failures are reported on their own and never counted against the ingress. Name
resolution has its own deadline (``ingress_load(dns_timeout=)``), so a slow resolver is a
``dns failure``, never an ingress ``timeout``.

Here too: how outcomes are counted in text (``502 x20, timeout x3``), and how a whole load window
ended (:class:`VerdictKind`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

TIMEOUT = -1
CONNECTION_REFUSED = -2
CONNECTION_RESET = -3
OTHER_ERROR = -4
NOT_SENT = -5  # the load generator could not send it (shut down before its turn came)
RUNNER_ERROR = -6  # a local socket error on the machine running the tests (EMFILE, ...)
DNS_FAILURE = -7  # the ingress host name did not resolve on the machine running the tests
BAD_RESPONSE = -8  # an answer that is not valid HTTP/1.1 (the ingress's fault)
# Still in flight when the load generator shut down, past the window and every timeout: only a
# generator that could not run its timers gets here, so it is the runner's failure.
ABANDONED = -9
# TLS: the ingress presented a certificate the runner's trust store (or ``ca_bundle``) rejects,
# for what OpenSSL calls "certificate verify failed" (no trusted chain, expired, ...), for a
# name it was not issued to, or the handshake failed otherwise. Any client would fail the same.
TLS_UNTRUSTED = -10
TLS_HOSTNAME_MISMATCH = -11
TLS_ERROR = -12

ERROR_LABELS: dict[int, str] = {
    TIMEOUT: "timeout",
    CONNECTION_REFUSED: "connection refused",
    CONNECTION_RESET: "reset",
    OTHER_ERROR: "error",
    NOT_SENT: "not sent",
    RUNNER_ERROR: "runner error",
    DNS_FAILURE: "dns failure",
    BAD_RESPONSE: "invalid response",
    ABANDONED: "abandoned",
    TLS_UNTRUSTED: "tls certificate verify failed",
    TLS_HOSTNAME_MISMATCH: "tls hostname mismatch",
    TLS_ERROR: "tls error",
}
LABEL_CODES = {label: code for code, label in ERROR_LABELS.items()}
# Failures of the machine running the tests, never charged to the ingress.
RUNNER_SIDE = frozenset({NOT_SENT, RUNNER_ERROR, DNS_FAILURE, ABANDONED})
RUNNER_SIDE_LABELS = frozenset(ERROR_LABELS[code] for code in RUNNER_SIDE)


def label(code: int) -> str:
    """``200`` -> ``"200"``, ``-1`` -> ``"timeout"``."""
    return str(code) if code >= 0 else ERROR_LABELS.get(code, "error")


def is_success(code: int) -> bool:
    """The one rule for a successful request: a 2xx status."""
    return 200 <= code < 300


def is_success_label(label: str) -> bool:
    """The same rule for an outcome's label, as reports and JSON carry it: ``"204"`` is a
    success, ``"502"`` and ``"timeout"`` are not."""
    return label.isdigit() and is_success(int(label))


def format_counts(counts: Mapping[str, int] | Iterable[tuple[str, int]],
                  empty: str = "none") -> str:
    """``{"502": 20, "timeout": 3}`` -> ``"502 x20, timeout x3"``; ``empty`` when there are
    none."""
    items = counts.items() if isinstance(counts, Mapping) else counts
    return ", ".join(f"{name} x{n}" for name, n in items) or empty


class VerdictKind(str, enum.Enum):
    """How a load window ended. The values are what the JSON report and the summary carry;
    members compare equal to them."""

    PASS = "pass"
    FAIL = "fail"  # the ingress broke the SLO
    VOID = "void"  # the load generator could not hold its schedule: neither pass nor fail
    # Stopped by the user (Ctrl-C) before its end: a partial window proves nothing either way.
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value
