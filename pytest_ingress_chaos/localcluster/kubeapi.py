"""A small asyncio client of the Kubernetes API for the stand-ins, and an informer on top of it.

Why not the official client: it is synchronous and untyped. Its watches block a thread in a read
that nothing can interrupt, so a stand-in built on it could not stop at once, and bridging
threads into the event loop that runs the simulator's data plane adds a race per event. The
stand-ins need a handful of calls (list, watch, patch, delete) on plain JSON objects; httpx's
async client gives them with cancellation that works, TLS against the control plane's own
certificate, and never an environment proxy (``trust_env=False``: all traffic stays on
loopback).

:class:`Informer` is the client-go pattern in miniature: list, then watch from the list's
``resourceVersion``; a watch the server ends (``timeoutSeconds``) is resumed from the last
version seen; an expired version (410 Gone, as an ERROR event or as the reply to the watch
request) means list again, and objects missing from the new list are reported as deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ..base.errors import BackendError

__all__ = ["Informer", "KubeApi", "KubeApiError", "Obj", "key_of"]

log = logging.getLogger(__name__)

#: A Kubernetes object as the API serves it, decoded from JSON.
Obj = dict[str, Any]
#: (namespace, name); the namespace is "" for cluster-scoped objects.
Key = tuple[str, str]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# The server ends each watch after this long (plus its own jitter); the informer resumes it from
# the last version it saw, so a half-open connection is noticed within this time at the worst.
WATCH_SECONDS = 60
_RETRY_SECONDS = 0.5  # after a failed list or watch (refused, reset, 5xx)


class KubeApiError(BackendError):
    """The API answered with an error status; ``status`` is the HTTP code (404, 409, 410, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class WatchExpired(KubeApiError):
    """The watch's resource version has expired (410 Gone): list again."""

    def __init__(self) -> None:
        super().__init__(410, "the watch's resource version has expired")


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _error_of(response: httpx.Response) -> KubeApiError:
    try:
        message = str(response.json().get("message") or response.text)
    except ValueError:
        message = response.text
    return KubeApiError(response.status_code, message[:500])


class KubeApi:
    """The calls the stand-ins make, on one connection pool. Close it with :meth:`aclose`."""

    def __init__(
        self,
        server: str,
        token: str,
        ca_file: str | Path | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``transport`` replaces the network (tests pass an ``httpx.MockTransport``)."""
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else True
        )
        self._client = httpx.AsyncClient(
            base_url=server,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=verify,
            trust_env=False,
            timeout=timeout,
            transport=transport,
            # One connection per open watch, plus the writes.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else None
        response = await self._client.request(
            method, path, params=params, content=content, headers=headers
        )
        if response.status_code >= 400:
            raise _error_of(response)
        result: Obj = response.json() if response.content else {}
        return result

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Obj:
        return await self.request("GET", path, params=params)

    async def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Obj:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return await self.request("DELETE", path, body=body)

    async def serves(self, group_version: str) -> bool:
        """Whether the server serves ``group/version`` (e.g. ``discovery.k8s.io/v1``)."""
        try:
            await self.get(f"/apis/{group_version}")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def watch(
        self, path: str, resource_version: str, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[tuple[str, Obj]]:
        """The events of one watch from ``resource_version`` until the server ends it. Raises
        :class:`WatchExpired` when the version has expired."""
        query: dict[str, str | int] = dict(params or {})
        query.update(
            watch="true",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=WATCH_SECONDS,
        )
        timeout = httpx.Timeout(10.0, read=WATCH_SECONDS + 30.0)
        async with self._client.stream("GET", path, params=query, timeout=timeout) as response:
            if response.status_code == 410:
                raise WatchExpired()
            if response.status_code >= 400:
                await response.aread()
                raise _error_of(response)
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired()
                    raise KubeApiError(int(obj.get("code") or 500), str(obj.get("message")))
                yield kind, obj


#: Called with ADDED, MODIFIED or DELETED and the object (for DELETED, its last known state).
Handler = Callable[[str, Obj], None]


class Informer:
    """A cache of one kind of object, kept current by list + watch, calling ``handler`` on
    every change. :attr:`synced` is set once the first list is in the cache."""

    def __init__(
        self,
        api: KubeApi,
        path: str,
        handler: Handler,
        *,
        params: Mapping[str, str | int] | None = None,
        name: str = "",
    ) -> None:
        self.api = api
        self.path = path
        self.handler = handler
        self.params = dict(params or {})
        self.name = name or path
        self.items: dict[Key, Obj] = {}
        self.synced = asyncio.Event()
        self.relists = 0  # lists after the first: each one followed an expired version

    async def run(self) -> None:
        """List and watch until cancelled; errors are logged and retried, never raised."""
        while True:
            try:
                version = await self._list()
                while True:
                    version = await self._watch(version)
            except WatchExpired:
                log.info("%s: resource version expired (410); listing again", self.name)
                self.relists += 1
            except (httpx.HTTPError, KubeApiError, ValueError) as exc:
                log.warning("%s: list/watch failed (%s); retrying", self.name, exc)
                await asyncio.sleep(_RETRY_SECONDS)

    async def _list(self) -> str:
        listed = await self.api.get(self.path, self.params)
        fresh: dict[Key, Obj] = {}
        for item in listed.get("items") or []:
            fresh[key_of(item)] = item
        old, self.items = self.items, fresh
        # A relist after 410 may have missed deletions: report them from the old cache.
        for key, obj in old.items():
            if key not in fresh:
                self._call("DELETED", obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._call("ADDED", obj)
            elif _version(before) != _version(obj):
                self._call("MODIFIED", obj)
        self.synced.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        async for kind, obj in self.api.watch(self.path, version, self.params):
            version = _version(obj) or version
            if kind == "BOOKMARK":
                continue
            key = key_of(obj)
            if kind == "DELETED":
                self.items.pop(key, None)
            else:
                self.items[key] = obj
            self._call(kind, obj)
        return version

    def _call(self, kind: str, obj: Obj) -> None:
        # A handler's bug must not end the watch: the cache would go stale silently.
        try:
            self.handler(kind, obj)
        except Exception:
            log.exception("%s: handler failed on %s %s", self.name, kind, key_of(obj))


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")

