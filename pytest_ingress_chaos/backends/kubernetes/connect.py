"""Which cluster the backend talks to, decided explicitly when the backend is created.

The official client reads ``$KUBECONFIG`` once, when ``kubernetes.config`` is imported, and
``load_kube_config()`` without arguments then uses that stale value and sets a process-wide
default configuration. Neither is acceptable in a test session (tests point the backend at
throwaway clusters, and xdist workers import the client early), so the file is chosen here, at
call time, and loaded into a Configuration of our own:

1. ``--kubeconfig`` (``settings.kubeconfig``);
2. ``$KUBECONFIG`` as it is now (a ``:``-separated list is merged, as kubectl does);
3. ``~/.kube/config`` when it exists;
4. the pod's service account, when running inside a cluster (``$KUBERNETES_SERVICE_HOST``).

Every way this can go wrong is one sentence (a :class:`KubeconfigError` or an
:class:`~.apis.ApiError`, both ``BackendError``) naming the file and where it came from, the
context, the server and the HTTP status, never a traceback from the client's loader.
:func:`reach` asks the server its version before anything else, within seconds and without
urllib3's retries, so a server that refuses, is silent or rejects the credentials says so in
seconds (the client's default, four tries of 30 s, takes two minutes).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client
from kubernetes import config as _config

from ...base.errors import BackendError
from ...settings.options import DEFAULT_KUBE_TIMEOUT, SessionSettings
from .apis import ApiError, KubeApi

# kubernetes.config has no type annotations (kubernetes.client has): typed as Any on purpose.
config: Any = _config

# Four watches per service, plus requests; the client's default pool (5 per CPU) would discard
# and reopen connections on a two-core machine.
POOL_SIZE = 32
# Seconds the first request (the server's version) may take (--ingress-kube-timeout).
DEFAULT_CONNECT_TIMEOUT = DEFAULT_KUBE_TIMEOUT


class KubeconfigError(BackendError):
    """The kubeconfig cannot be used: missing, unreadable, not a kubeconfig, or without the
    context asked for. A setup (usage) error: the message names the file and its source."""


@dataclass(frozen=True)
class Connection:
    """An ``ApiClient`` and what it points at, for the pytest header."""

    api_client: Any
    context: str  # the kubeconfig context, or "in-cluster"
    server: str  # the API server URL
    source: str  # the kubeconfig file(s), or "service account"


def _kubeconfig_path(given: Path | None, environ: Mapping[str, str]
                     ) -> tuple[str | None, str]:
    """The kubeconfig file(s) to load, and where that choice came from."""
    if given is not None:
        return str(given), "--kubeconfig"
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"], "$KUBECONFIG"
    default = Path("~/.kube/config").expanduser()
    return (str(default), "the default ~/.kube/config") if default.is_file() else (None, "")


def _check_kubeconfig(path: str, source: str) -> None:
    """Each file of ``path`` (``:``-separated, as kubectl merges them) is readable YAML and a
    mapping: the client's loader answers anything else with a TypeError or a YAML traceback."""
    for name in filter(None, path.split(os.pathsep)):
        where = f"kubeconfig {name} (from {source})"
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KubeconfigError(f"cannot read {where}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubeconfigError(f"{where} is not valid YAML{at}: "
                                  f"{getattr(exc, 'problem', None) or exc}") from None
        if document is not None and not isinstance(document, dict):
            raise KubeconfigError(f"{where} is not a kubeconfig: expected a mapping with "
                                  f"clusters, contexts and users, found a "
                                  f"{type(document).__name__}")


def connect(kubeconfig: Path | None, context: str | None,
            environ: Mapping[str, str] | None = None) -> Connection:
    """A client for the cluster the settings name (see the module docstring for the order);
    nothing is sent yet (:func:`reach` checks the server)."""
    return _configure(kubeconfig, context, os.environ if environ is None else environ)


def connect_to(settings: SessionSettings) -> Connection:
    """The cluster the session's options name, reached within ``--ingress-kube-timeout``."""
    given = settings.origins.get("kube_timeout") or "the default of --ingress-kube-timeout"
    return connect_and_reach(settings.kubeconfig, settings.kube_context,
                             timeout=settings.kube_timeout, timeout_from=given)


def connect_and_reach(kubeconfig: Path | None, context: str | None, *,
                      timeout: float = DEFAULT_CONNECT_TIMEOUT,
                      timeout_from: str = "") -> Connection:
    """:func:`connect`, then :func:`reach`; the client is closed if the server fails."""
    connection = connect(kubeconfig, context)
    try:
        reach(connection, timeout, timeout_from)
    except BaseException:
        connection.api_client.close()
        raise
    return connection


def reach(connection: Connection, timeout: float = DEFAULT_CONNECT_TIMEOUT,
          timeout_from: str = "") -> None:
    """Ask the server its version within ``timeout`` seconds: an :class:`ApiError` saying
    whether it refused, was silent, or rejected the credentials (401, 403). ``timeout_from``
    is the option that set the deadline, named when the server misses it."""
    source = connection.source if connection.context == "in-cluster" else \
        f"kubeconfig {connection.source}"
    where = f"the Kubernetes API server {connection.server} (context {connection.context}, " \
        f"{source})"
    # A client of its own without urllib3's retries (three by default, each with the whole
    # timeout): the session's client keeps them, for the blips of a long session.
    configuration = copy.deepcopy(connection.api_client.configuration)
    configuration.retries = False
    try:
        with client.ApiClient(configuration) as probe:
            KubeApi(probe, timeout).call("get the server version",
                                         client.VersionApi(probe).get_code)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise ApiError(f"{where} refused the credentials: {exc.reason or 'Unauthorized'} "
                           f"(HTTP {exc.status})", exc.status, exc.reason) from None
        if exc.status:
            raise ApiError(f"{where} answered the version request with HTTP {exc.status} "
                           f"({exc.reason or 'error'}): is it a Kubernetes API server?",
                           exc.status, exc.reason) from None
        cause = exc.__cause__
        given = f" ({timeout_from})" if timeout_from else ""
        raise ApiError(f"{where} did not answer within {timeout:g} s{given}: "
                       f"{_reason(cause) if cause is not None else exc}") from None


def _reason(exc: BaseException) -> str:
    """urllib3's innermost reason (refused, timed out, TLS), without its object reprs."""
    while isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "the connection was refused" if "refused" in str(exc).lower() else \
            f"cannot connect ({str(exc).rpartition(': ')[2]})"
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError,
                        urllib3.exceptions.ConnectTimeoutError, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed ({exc})"
    return str(exc)


def _configure(kubeconfig: Path | None, context: str | None, environ: Mapping[str, str]
               ) -> Connection:
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    path, source = _kubeconfig_path(kubeconfig, environ)
    try:
        if path is None and environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise KubeconfigError(f"--kube-context {context!r} needs a kubeconfig; inside a "
                                   "cluster the backend uses the pod's service account")
            config.load_incluster_config(client_configuration=configuration)
            return Connection(client.ApiClient(configuration), "in-cluster",
                              configuration.host, "service account")
        if path is None:
            raise KubeconfigError(
                "the kubernetes backend found no cluster: give --kubeconfig (ini kubeconfig, env "
                "PYTEST_INGRESS_KUBECONFIG), set $KUBECONFIG, create ~/.kube/config, or run inside "
                "a cluster")
        _check_kubeconfig(path, source)
        where = f"kubeconfig {path} (from {source})"
        contexts, current = config.list_kube_config_contexts(config_file=path)
        names = [entry["name"] for entry in contexts or []]
        chosen = context or (current or {}).get("name")
        if not chosen:
            raise KubeconfigError(f"{where} has no current context: give --kube-context "
                                  f"(one of: {', '.join(names) or 'none'})")
        if chosen not in names:
            raise KubeconfigError(f"{where} has no context {chosen!r}: expected one of "
                                  f"{', '.join(names) or 'none'}")
        config.load_kube_config(config_file=path, context=chosen,
                                client_configuration=configuration, persist_config=False)
    except config.ConfigException as exc:
        raise KubeconfigError(f"cannot load the Kubernetes configuration from "
                              f"{path or 'the service account'}"
                              f"{f' (from {source})' if source else ''}: {exc}") from None
    except (TypeError, KeyError, AttributeError, ValueError, yaml.YAMLError) as exc:
        # What the client's loader raises on a well-formed YAML that is no kubeconfig.
        raise KubeconfigError(f"kubeconfig {path} (from {source}) is not a valid kubeconfig: "
                              f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path} (from {source}): "
                              f"{exc.strerror or exc}") from None
    return Connection(client.ApiClient(configuration), chosen, configuration.host, path)
