"""Kubernetes' naming rules, for values users give and names the plugin builds.

The rules are the API server's own (k8s.io/apimachinery/pkg/util/validation, linked from
docs/kubernetes-backend.md), checked here so that a bad value fails at start with the name of
the option or setting that carried it, never as a 422 from the API server halfway through a
provision. Each check says whether a value conforms; the caller words the error, and the
``*_FORM`` texts say what is accepted.
"""

from __future__ import annotations

import re
from typing import TypeGuard

# fullmatch throughout: "$" would let a trailing newline through.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

DNS_NAME_FORM = ("a DNS name: at most 253 characters, dot-separated lower-case labels of "
                 "letters, digits and '-'")
QUALIFIED_NAME_FORM = ("[prefix/]name, the name at most 63 letters, digits, '-', '_' or '.' "
                       "starting and ending with a letter or digit, the prefix a DNS name")
LABEL_VALUE_FORM = ("a label value: at most 63 letters, digits, '-', '_' or '.', starting and "
                    "ending with a letter or digit")


def is_dns_label(value: object, *, must_start_with_letter: bool = False) -> TypeGuard[str]:
    """RFC 1123 label (a namespace); RFC 1035 (a letter first) for a Service's name."""
    pattern = _DNS1035_LABEL if must_start_with_letter else _DNS1123_LABEL
    return isinstance(value, str) and len(value) <= 63 and pattern.fullmatch(value) is not None


def is_dns_subdomain(value: object) -> TypeGuard[str]:
    """RFC 1123 subdomain: an ingress class, a host, a key's prefix."""
    return isinstance(value, str) and len(value) <= 253 and \
        _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_qualified_name(key: object) -> TypeGuard[str]:
    """A label or annotation key: ``[prefix/]name``."""
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None and (
        not slash or is_dns_subdomain(prefix))


def is_label_value(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 63 and \
        _LABEL_VALUE.fullmatch(value) is not None
