"""The Kubernetes API as this backend uses it: dicts in, dicts out, every failure a BackendError.

Why dicts: the manifests are dicts, EndpointSlices of either version come through
``CustomObjectsApi`` as dicts anyway, and reading raw JSON (``_preload_content=False``) keeps the
client's models, generated for a newer API version than many clusters run, out of the way of
what the server actually sent.

Why one ``call``: every request gets a timeout (no wait can outlive its deadline inside the
client), and every ``ApiException``, urllib3 or socket error, and client-side validation error
becomes an :class:`ApiError` (a :class:`BackendError`), chained, whose message names the object
and gives the API's own reason.

Version fallbacks live here too: ``discovery.k8s.io/v1`` EndpointSlices and ``policy/v1``
evictions exist from Kubernetes 1.21 (1.22 for the Eviction body); older clusters serve v1beta1
only, and the client's typed ``DiscoveryV1Api``/``PolicyV1Api`` then answer 404. Each is probed
once per backend and remembered.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ...base.errors import BackendError

JsonDict = dict[str, Any]

DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds: any one request that does not wait on the cluster
_MIN_TIMEOUT = 0.05  # the client refuses a timeout of 0


class ApiError(BackendError):
    """A request to the Kubernetes API failed. ``status`` is the HTTP status (0 when the server
    could not be reached); ``reason`` the API's reason (``NotFound``, ``AlreadyExists``...)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer at all, the server overloaded (429) or failing (5xx)."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def api_error(what: str, exc: ApiException) -> ApiError:
    """``what`` (e.g. "create Deployment kubia-1 in ns") and the API's own reason and message."""
    status = int(exc.status or 0)
    reason = str(exc.reason or "")
    detail = ""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        detail = str(body.get("message") or "")
    text = f"{what}: {reason or 'error'} (HTTP {status})"
    return ApiError(f"{text}: {detail}" if detail else text, status, reason)


class KubeApi:
    """The typed APIs of one ``ApiClient``, called through :meth:`call`."""

    def __init__(self, api_client: Any, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
                 ) -> None:
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self._probe_lock = threading.Lock()
        self._served: dict[str, bool] = {}
        self._eviction_version: str | None = None

    # --- requests -------------------------------------------------------------------------

    def raw(self, what: str, method: Callable[..., Any], *args: Any,
            timeout: float | tuple[float, float] | None = None, **kwargs: Any) -> Any:
        """The urllib3 response of a request (for watches, which stream it); errors wrapped."""
        if timeout is None:
            timeout = self.request_timeout
        if isinstance(timeout, tuple):
            kwargs["_request_timeout"] = tuple(max(_MIN_TIMEOUT, part) for part in timeout)
        else:
            kwargs["_request_timeout"] = max(_MIN_TIMEOUT, timeout)
        try:
            return method(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise api_error(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"{what}: the Kubernetes API did not answer ({exc})") from exc
        except ValueError as exc:  # the client's own validation of a body (pydantic)
            raise ApiError(f"{what}: the Kubernetes client refused the request: {exc}") from exc

    def call(self, what: str, method: Callable[..., Any], *args: Any,
             timeout: float | None = None, **kwargs: Any) -> JsonDict:
        """One request; its JSON answer as a dict (empty for an empty answer)."""
        response = self.raw(what, method, *args, timeout=timeout, **kwargs)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"{what}: the Kubernetes API did not answer ({exc})") from exc
        finally:
            response.release_conn()
        if not data:
            return {}
        try:
            decoded: JsonDict = json.loads(data)
        except ValueError as exc:
            raise ApiError(f"{what}: the Kubernetes API sent no JSON: {data[:200]!r}") from exc
        return decoded

    def items(self, what: str, method: Callable[..., Any], *args: Any,
              timeout: float | None = None, **kwargs: Any) -> list[JsonDict]:
        """The ``items`` of a list request."""
        listed = self.call(what, method, *args, timeout=timeout, **kwargs)
        return list(listed.get("items") or [])

    # --- version fallbacks ----------------------------------------------------------------

    def _serves(self, group_version: str, probe: Callable[..., Any]) -> bool:
        with self._probe_lock:
            if group_version not in self._served:
                try:
                    self.call(f"discover {group_version}", probe)
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    self._served[group_version] = False
                else:
                    self._served[group_version] = True
            return self._served[group_version]

    def endpointslice_version(self) -> str:
        """``v1`` where the cluster serves ``discovery.k8s.io/v1`` (1.21+), else ``v1beta1``."""
        if self._serves("discovery.k8s.io/v1", client.DiscoveryV1Api(self.api_client)
                        .get_api_resources):
            return "v1"
        return "v1beta1"

    def eviction_api_version(self) -> str:
        """``policy/v1`` where the group is served, else ``policy/v1beta1``; :meth:`evict`
        moves to v1beta1 for good if the server refuses a v1 Eviction (1.21 serves policy/v1
        for PodDisruptionBudgets but takes v1 Evictions only from 1.22)."""
        if self._eviction_version is None:
            served = self._serves("policy/v1", client.PolicyV1Api(self.api_client)
                                  .get_api_resources)
            self._eviction_version = "policy/v1" if served else "policy/v1beta1"
        return self._eviction_version

    def endpoint_slice_lister(self, namespace: str, service: str) -> Callable[..., Any]:
        """The list (with ``watch=True``, watch) request for a Service's EndpointSlices, for
        :meth:`call` or :meth:`raw`; the version is chosen here, once."""
        return functools.partial(
            self.custom.list_namespaced_custom_object, "discovery.k8s.io",
            self.endpointslice_version(), namespace, "endpointslices",
            label_selector=f"kubernetes.io/service-name={service}")

    def evict(self, pod: str, namespace: str, *, uid: str | None = None,
              timeout: float | None = None) -> None:
        """Evict a pod through the Eviction subresource (what ``kubectl drain`` does), so
        PodDisruptionBudgets are honoured: a refusal is an :class:`ApiError` with status 429."""
        version = self.eviction_api_version()
        try:
            self._evict(version, pod, namespace, uid, timeout)
        except ApiError as exc:
            if not (exc.status == 400 and version == "policy/v1"):
                raise
            self._eviction_version = "policy/v1beta1"
            self._evict(self._eviction_version, pod, namespace, uid, timeout)

    def _evict(self, version: str, pod: str, namespace: str, uid: str | None,
               timeout: float | None) -> None:
        body: JsonDict = {"apiVersion": version, "kind": "Eviction",
                          "metadata": {"name": pod, "namespace": namespace}}
        if uid is not None:  # the pod we checked, not another one given its name since
            body["deleteOptions"] = {"preconditions": {"uid": uid}}
        self.call(f"evict pod {pod} in namespace {namespace} ({version})",
                  self.core.create_namespaced_pod_eviction, pod, namespace, body,
                  timeout=timeout)
