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
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as _config

from ...base.errors import BackendError

# kubernetes.config has no type annotations (kubernetes.client has): typed as Any on purpose.
config: Any = _config

# Four watches per service, plus requests; the client's default pool (5 per CPU) would discard
# and reopen connections on a two-core machine.
POOL_SIZE = 32


@dataclass(frozen=True)
class Connection:
    """An ``ApiClient`` and what it points at, for the pytest header."""

    api_client: Any
    context: str  # the kubeconfig context, or "in-cluster"
    server: str  # the API server URL
    source: str  # the kubeconfig file(s), or "service account"


def _kubeconfig_path(given: Path | None, environ: Mapping[str, str]) -> str | None:
    if given is not None:
        return str(given)
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    default = Path("~/.kube/config").expanduser()
    return str(default) if default.is_file() else None


def connect(kubeconfig: Path | None, context: str | None,
            environ: Mapping[str, str] | None = None) -> Connection:
    """A client for the cluster the settings name (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    path = _kubeconfig_path(kubeconfig, environ)
    try:
        if path is None and environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise BackendError(f"--kube-context {context!r} needs a kubeconfig; inside a "
                                   "cluster the backend uses the pod's service account")
            config.load_incluster_config(client_configuration=configuration)
            return Connection(client.ApiClient(configuration), "in-cluster",
                              configuration.host, "service account")
        if path is None:
            raise BackendError(
                "the kubernetes backend found no cluster: give --kubeconfig (ini kubeconfig, env "
                "PYTEST_INGRESS_KUBECONFIG), set $KUBECONFIG, create ~/.kube/config, or run inside "
                "a cluster")
        contexts, current = config.list_kube_config_contexts(config_file=path)
        names = [entry["name"] for entry in contexts or []]
        chosen = context or (current or {}).get("name")
        if not chosen:
            raise BackendError(f"kubeconfig {path} has no current context: give --kube-context "
                               f"(one of: {', '.join(names) or 'none'})")
        if chosen not in names:
            raise BackendError(f"kubeconfig {path} has no context {chosen!r}: expected one of "
                               f"{', '.join(names) or 'none'}")
        config.load_kube_config(config_file=path, context=chosen,
                                client_configuration=configuration, persist_config=False)
    except config.ConfigException as exc:
        raise BackendError(f"cannot load the Kubernetes configuration from "
                           f"{path or 'the service account'}: {exc}") from exc
    except OSError as exc:
        raise BackendError(f"cannot read kubeconfig {path}: {exc}") from exc
    return Connection(client.ApiClient(configuration), chosen, configuration.host, path)
