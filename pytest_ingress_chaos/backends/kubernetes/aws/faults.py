"""What a failed AWS call means for the user, in one line: throttling, expired credentials, a
missing permission (with the IAM policy line to add), an endpoint that does not answer."""

from __future__ import annotations

from typing import Any

THROTTLING = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded",
                        "TooManyRequestsException"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""


def throttled(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING


def describe(call: str, exc: BaseException) -> str:
    """One line: what failed, and what to do about it."""
    code = error_code(exc)
    if code in THROTTLING:
        return (f"{call} was throttled by AWS ({code}; ELBv2 limits calls per account and "
                "region): polling backed off")
    if code in EXPIRED:
        return f"{call}: the AWS credentials have expired ({code}): refresh them"
    if code in DENIED:
        return (f"{call} was denied ({code}): add \"elasticloadbalancing:{call}\" to the IAM "
                "policy's Action list (deploy/aws-evidence-iam-policy.json)")
    if code:
        return f"{call} failed: {code}: {exc}"
    return f"{call}: the AWS endpoint did not answer ({type(exc).__name__}: {exc})"
