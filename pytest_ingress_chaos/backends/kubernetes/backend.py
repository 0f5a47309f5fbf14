"""The ``kubernetes`` backend: the sample service on a real cluster, through the official client.

One namespace per session and xdist worker (``ingress-chaos-<run>-<worker>``), created on the
first provision, labelled so that the sweeper can find it, deleted by :meth:`close`. Each
provision creates ``kubia-<n>`` (Deployment, Service, Ingress) from ``manifests.py``, watches it,
and returns only once the service is in a steady state through its ingress (``waits.py``).

Capabilities: none of the optional ones. The API cannot signal a container (CONTAINER_KILL),
a drained node stays (NODE_TERMINATION is the cloud's business), and load balancer target states
live in the cloud provider's API, not Kubernetes'. On AWS they are read from there when the
evidence is on (``aws/``): ``target.*`` events of source ``aws``, not a capability a test may
require, since credentials decide it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping

from ...base.backend import Capability, ProvisionRequest, ServiceIdentity
from ...base.errors import BackendError, BackendTimeout
from ...base.events import EventKind
from .. import BackendConfig
from . import profiles, waits
from .apis import ApiError, JsonDict, KubeApi
from .aws.access import Access, open_access
from .aws.evidence import SOURCE as AWS_SOURCE
from .aws.evidence import Observation
from .aws.poller import DEFAULT_INTERVAL, MIN_POLL_INTERVAL
from .connect import Connection, connect_to
from .deadline import Deadline
from .guard import Guard, allowed_chaos
from .labels import CREATED_LABEL, RUN_LABEL, created_by_run, namespace_name, session_labels
from .lifecycle import ExitCleanup
from .manifests import (
    ManifestSettings,
    anchor_manifest,
    namespace_manifest,
    service_manifests,
)
from .service import KubernetesService

log = logging.getLogger(__name__)

NAMESPACE_DELETION_TIMEOUT = 120.0  # seconds close() waits for the namespace to go
_NAME_ATTEMPTS = 100
_CREATE = {  # kind -> how to create it; all namespaced
    "Deployment": ("apps", "create_namespaced_deployment"),
    "Service": ("core", "create_namespaced_service"),
    "Ingress": ("networking", "create_namespaced_ingress"),
}


class KubernetesBackend:
    """Session-wide access to one cluster (the contract's ``Backend``)."""

    name = "kubernetes"
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, config: BackendConfig, *, connection: Connection | None = None,
                 namespace_deletion_timeout: float = NAMESPACE_DELETION_TIMEOUT) -> None:
        self.config = config
        self.settings = config.settings
        self.guard = Guard(config.run_id, allowed_chaos(self.settings))
        # Checked now, in seconds: a missing or silent server is one setup error, not a
        # timeout per request later.
        self.connection = connection or connect_to(self.settings)
        self.api = KubeApi(self.connection.api_client)
        self.namespace = namespace_name(config.run_id, config.worker)
        self.namespace_deletion_timeout = namespace_deletion_timeout
        self.profile = profiles.profile(self.settings.profile)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()  # the namespace, the services, closing
        self._created: int | None = None  # the namespace's created label, once it exists
        self._owns_namespace = False
        self._extra_labels: dict[str, str] = {}
        self._services: list[KubernetesService] = []
        self._closed = False
        self._cleanup = ExitCleanup(self.close, f"the kubernetes backend ({self.namespace})")
        self.aws: Access = open_access(self.settings.aws_evidence, self.profile.name,
                                       region=self.settings.aws_region,
                                       aws_profile=self.settings.aws_profile)

    def describe(self) -> str:
        c = self.connection
        described = (f"kubernetes (context {c.context}, server {c.server}, profile "
                     f"{self.profile.name}, namespace {self.namespace})")
        if self.aws.client is not None:
            return (f"{described}\nthe ALB's own view (AWS API): on, region {self.aws.region}, "
                    f"endpoint {self.aws.endpoint}")
        if self.profile.name == "aws-alb" or self.settings.aws_evidence == "on":
            return f"{described}\nthe ALB's own view (AWS API) is off: {self.aws.off}"
        return described

    # --- the namespace --------------------------------------------------------------------

    def _ensure_namespace(self, extra_labels: Mapping[str, str], deadline: Deadline) -> None:
        """Create the session's namespace on first use; afterwards give it the labels this
        provision's profile needs (e.g. the AWS readiness-gate switch), dropping those the
        previous provision needed. The namespace is shared by the session's tests, which a
        worker runs one at a time."""
        with self._lock:
            if self._closed:
                raise BackendError(f"the kubernetes backend ({self.namespace}) is closed")
            if self._created is None:
                self._create_namespace(dict(extra_labels), deadline)
                return
            if dict(extra_labels) == self._extra_labels:
                return
            labels: dict[str, str | None] = {key: None for key in self._extra_labels}
            labels.update(extra_labels)
            self.api.call(f"label namespace {self.namespace}", self.api.core.patch_namespace,
                          self.namespace, {"metadata": {"labels": labels}})
            self._extra_labels = dict(extra_labels)

    def _create_namespace(self, extra_labels: dict[str, str], deadline: Deadline) -> None:
        created = int(time.time())
        body = namespace_manifest(self.namespace, session_labels(self.config.run_id, created),
                                  extra_labels)
        while True:
            try:
                self.api.call(f"create namespace {self.namespace}",
                              self.api.core.create_namespace, body)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                existing = self._existing_namespace()
                if existing is None:  # it went meanwhile: create it again
                    continue
                if not created_by_run(existing, self.config.run_id):
                    raise BackendError(
                        f"namespace {self.namespace} exists and this run did not create it "
                        f"(no {RUN_LABEL}={self.config.run_id} label): refusing to use it") from exc
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    # Ours, being deleted (a backend of this run closed it): wait it out.
                    deadline.poll(lambda: True if self._existing_namespace() is None else None,
                                  lambda: f"namespace {self.namespace} is still terminating")
                    continue
                # Ours and alive: another backend of this run and worker uses it; share it,
                # and leave its deletion to that backend.
                labels = (existing.get("metadata") or {}).get("labels") or {}
                self._created = int(labels.get(CREATED_LABEL) or created)
                self._extra_labels = {}
                return
            self._created, self._owns_namespace = created, True
            self._extra_labels = extra_labels
            self._create_anchor(created)
            return

    def _create_anchor(self, created: int) -> None:
        """The namespace's place in the run's IngressGroup, kept between tests (see
        :func:`profiles.anchor_annotations`); deleted with the namespace."""
        anchor = anchor_manifest(self.namespace, self.config.run_id,
                                 session_labels(self.config.run_id, created),
                                 self.profile.name, self.settings.ingress_class)
        if anchor is not None:
            self._create(anchor)

    def _existing_namespace(self) -> JsonDict | None:
        try:
            return self.api.call(f"read namespace {self.namespace}",
                                 self.api.core.read_namespace, self.namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # --- provisioning ---------------------------------------------------------------------

    def provision(self, request: ProvisionRequest) -> KubernetesService:
        """Create ``kubia-<n>``, wait for its steady state, report what it does from now on."""
        deadline = Deadline(request.timeout, f"provision ({request.mode} mode) in namespace "
                            f"{self.namespace} for {request.test}")
        self._ensure_namespace(
            profiles.namespace_labels(self.profile, request.mode, request.service), deadline)
        manifest, bodies = self._claim(request)
        name = manifest.name
        deadline.what = (f"provision of {name} ({request.mode} mode) in namespace "
                         f"{self.namespace} for {request.test}")
        identity = ServiceIdentity(namespace=self.namespace, deployment=name, service=name,
                                   ingress=name, selector=manifest.selector)
        # The deadline's cancel event is the service's: a teardown during the provision (from
        # another thread, or close()) ends its waits.
        service = KubernetesService(self.api, identity, request.mode, self.guard,
                                    request.events, prestop=request.service.prestop_sleep > 0,
                                    forget=self._forget, cancel=deadline.cancel,
                                    request_headers=manifest.route_headers)
        with self._lock:
            self._services.append(service)
        try:
            # Watches start right after the Deployment exists: each lists before it watches,
            # so the pods its ReplicaSet creates meanwhile are reported all the same.
            service.start_watches()
            for body in bodies[1:]:
                self._create(body)
            self._wait_steady(service, manifest, request, deadline)
            self._observe_aws(service, request)
        except BaseException:
            try:
                service.teardown()
            except BackendError as exc:
                log.warning("cleaning up after the failed provision of %s: %s", name, exc)
            raise
        return service

    def _claim(self, request: ProvisionRequest) -> tuple[ManifestSettings, list[JsonDict]]:
        """Create the Deployment of the next free ``kubia-<n>`` (after the request's
        customization of its manifests): the name is taken when the create succeeds. Another
        backend of this run and worker (sharing the namespace) may hold a number:
        AlreadyExists moves on to the next one."""
        assert self._created is not None
        s = self.settings
        for _ in range(_NAME_ATTEMPTS):
            manifest = ManifestSettings(
                namespace=self.namespace, name=f"kubia-{next(self._numbers)}",
                run_id=self.config.run_id, mode=request.mode, profile=self.profile.name,
                ingress_class=s.ingress_class, host=s.host, image=s.image,
                service=request.service, alb=request.alb,
                labels=session_labels(self.config.run_id, self._created),
                generic_annotations=s.annotations_per_mode())
            bodies = service_manifests(manifest)
            if request.customize is not None:
                request.customize(bodies)  # the user's pytest_ingress_manifests hook
            try:
                self._create(bodies[0])
            except ApiError as exc:
                if exc.status != 409:
                    raise
                continue
            return manifest, bodies
        raise BackendError(f"no free kubia-<n> name in namespace {self.namespace} after "
                           f"{_NAME_ATTEMPTS} attempts")

    def _create(self, body: JsonDict) -> None:
        kind, name = body["kind"], body["metadata"]["name"]
        group, method = _CREATE[kind]
        self.api.call(f"create {kind} {name} in namespace {self.namespace}",
                      getattr(getattr(self.api, group), method), self.namespace, body)

    def _wait_steady(self, service: KubernetesService, manifest: ManifestSettings,
                     request: ProvisionRequest, deadline: Deadline) -> None:
        api, namespace, name = self.api, self.namespace, manifest.name
        selector = service.selector
        waits.pods_ready(api, namespace, name, selector, request.service.replicas, deadline)
        address = waits.ingress_address(api, namespace, name, deadline)
        host = waits.url_host(address, manifest.host)
        waits.resolvable(host.strip("[]"), address.port, deadline)
        url = f"http://{host}:{address.port}"
        state = waits.steady_state(api, namespace, name, selector, url,
                                   self.settings.steady_requests, deadline,
                                   service.request_headers)
        service.url = url
        service.emit(EventKind.ALB_READY, name, f"the ingress serves {name} at {url}: "
                     f"{state.consecutive} consecutive 2xx, every Ready pod answered "
                     f"({', '.join(sorted(state.answered))}) after {deadline.elapsed():.1f} s",
                     source="ingress")

    def _observe_aws(self, service: KubernetesService, request: ProvisionRequest) -> None:
        """The ALB's own view of the service's targets, until teardown; or the one line that
        says why there is none (silent for profiles other than aws-alb unless asked for)."""
        if self.aws.client is None:
            if self.profile.name == "aws-alb" or self.settings.aws_evidence == "on":
                service.emit(EventKind.AWS_NOTE, service.name,
                             f"the ALB's own view (AWS API) is off: {self.aws.off}",
                             source=AWS_SOURCE)
            return
        observation = Observation(
            self.aws, self.api, self.namespace, service.name, request.mode, request.alb,
            lambda at, kind, subject, message: service.emit(kind, subject, message,
                                                            source=AWS_SOURCE, at=at),
            # Under a time scale (the local cluster's) the targets change that much faster.
            interval=max(MIN_POLL_INTERVAL, DEFAULT_INTERVAL * self.settings.time_scale))
        observation.start()
        for line in observation.lines:
            service.emit(EventKind.AWS_NOTE, service.name, line, source=AWS_SOURCE)
        service.on_teardown.append(observation.stop)

    def _forget(self, service: KubernetesService) -> None:
        with self._lock:
            if service in self._services:
                self._services.remove(service)

    # --- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Tear down every live service, delete the namespace (if this backend created it) and
        wait until it is gone, then close the client. Idempotent; raises BackendTimeout when
        the namespace outlives its deadline (the sweeper will remove it later)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            services, owns = list(self._services), self._owns_namespace
        self._cleanup.disarm()
        errors: list[BaseException] = []
        for service in services:
            try:
                service.teardown()
            except BackendError as exc:
                errors.append(exc)
        try:
            if owns:
                self._delete_namespace()
        except BackendError as exc:
            errors.append(exc)
        finally:
            self.api.api_client.close()
        if errors:
            raise errors[0]

    def _delete_namespace(self) -> None:
        try:
            self.api.call(f"delete namespace {self.namespace}", self.api.core.delete_namespace,
                          self.namespace, propagation_policy="Background")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        deadline = Deadline(self.namespace_deletion_timeout,
                            f"deletion of namespace {self.namespace}")
        last: list[JsonDict | None] = [None]

        def gone() -> bool | None:
            last[0] = self._existing_namespace()
            return True if last[0] is None else None

        def why() -> str:
            status = (last[0] or {}).get("status") or {}
            conditions = "; ".join(f"{c.get('type')}: {c.get('message')}"
                                   for c in status.get("conditions") or [] if c.get("message"))
            return (f"It is {status.get('phase', 'still there')}: "
                    f"{conditions or 'no reason given'}. `ingress-chaos-sweep` deletes it later.")

        try:
            deadline.poll(gone, why, interval=0.2)
        except BackendTimeout:
            log.warning("namespace %s outlived its deletion deadline", self.namespace)
            raise
