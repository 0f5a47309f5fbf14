"""List-then-watch loops in daemon threads, feeding an :class:`Observer`.

The client's own ``kubernetes.watch.Watch`` is not used: it deserializes into the client's
models (this backend reads dicts, see :mod:`.apis`), its raw mode (``deserialize=False``) fails
on an ERROR event (it looks for a key only the model path sets), and it retries a 410 only once.
Here each :class:`ResourceWatch`:

- lists first, hands the list to the observer (``sync``: the baseline, or after a reconnect,
  what changed while nobody watched), then watches from the list's ``resourceVersion``;
- watches with a server-side ``timeout_seconds`` and starts again where it stopped, so a
  silently dead connection costs at most that long;
- on 410 Gone (the version expired from the server's cache), lists again;
- on any other failure, backs off and lists again, logging why;
- on :meth:`stop`, shuts the socket down, so a read blocked on an idle watch ends at once and
  teardown never waits for ``timeout_seconds``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import urllib3

from .apis import ApiError, JsonDict, KubeApi

log = logging.getLogger(__name__)

WATCH_SECONDS = 30  # server-side end of each watch request; the loop then watches again
LIST_TIMEOUT = 15.0
_CONNECT_TIMEOUT = 10.0
MAX_BACKOFF = 5.0


class Observer(Protocol):
    """Turns what a watch sees into events; called from the watch's thread only."""

    def sync(self, items: list[JsonDict], now: float, initial: bool) -> None:
        """The full list: the first (``initial``), or after a reconnect."""

    def apply(self, change: str, obj: JsonDict, now: float) -> None:
        """One watch event: ``change`` is ADDED, MODIFIED or DELETED."""


def _lines(response: Any) -> Iterator[str]:
    """The newline-separated JSON documents of a watch response, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8", errors="replace")


class ResourceWatch:
    """One resource collection watched in a daemon thread until :meth:`stop`."""

    def __init__(self, what: str, api: KubeApi, lister: Callable[..., Any],
                 observer: Observer, *, timeout_seconds: int = WATCH_SECONDS) -> None:
        self.what = what
        self.api = api
        self.lister = lister
        self.observer = observer
        self.timeout_seconds = timeout_seconds
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._synced = threading.Event()
        self.relists = 0  # how often it listed again after the first list (410, failures)
        self.last_error: str = ""
        self._thread = threading.Thread(target=self._run, name=f"ingress-chaos watch {what}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_synced(self, timeout: float) -> bool:
        """Whether the first list has been handed to the observer (within ``timeout``)."""
        return self._synced.wait(timeout)

    def stop(self, join_timeout: float = 2.0) -> None:
        """End the watch: no event reaches the observer after this returns (unless the thread
        is stuck in the observer itself, which join_timeout bounds)."""
        self._stopped.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(join_timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                failures = 0
            except (ApiError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if self._stopped.is_set():
                    break
                if isinstance(exc, ApiError) and exc.status == 410:
                    version = None  # expired: list again, without backing off
                    continue
                failures += 1
                self.last_error = str(exc)
                log.warning("watch of %s failed (%s); listing again", self.what, exc)
                version = None
                self._stopped.wait(min(MAX_BACKOFF, 0.2 * 2 ** failures))
            except Exception:  # a bug in an observer: say so, keep the loop alive
                log.exception("watch of %s: observer failed", self.what)
                version = None
                self._stopped.wait(MAX_BACKOFF)

    def _list(self) -> str:
        listed = self.api.call(f"list {self.what}", self.lister, timeout=LIST_TIMEOUT)
        if self._stopped.is_set():
            return ""
        initial = not self._synced.is_set()
        if not initial:
            self.relists += 1
        self.observer.sync(list(listed.get("items") or []), time.monotonic(), initial)
        self._synced.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, version: str) -> str | None:
        """One watch request from ``version``; returns the version to go on from, or None to
        list again (410 Gone)."""
        response = self.api.raw(
            f"watch {self.what}", self.lister, watch=True, resource_version=version,
            allow_watch_bookmarks=True, timeout_seconds=self.timeout_seconds,
            timeout=(_CONNECT_TIMEOUT, self.timeout_seconds + _CONNECT_TIMEOUT))
        with self._lock:
            self._response = response
        try:
            if self._stopped.is_set():
                return version
            for line in _lines(response):
                event = json.loads(line)
                change, obj = event.get("type"), event.get("object") or {}
                if change == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise ApiError(f"watch {self.what}: {obj.get('reason')}: "
                                   f"{obj.get('message')}", int(obj.get("code") or 0),
                                   str(obj.get("reason") or ""))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if self._stopped.is_set():
                    break
                if change in ("ADDED", "MODIFIED", "DELETED"):
                    self.observer.apply(change, obj, time.monotonic())
            return version
        finally:
            with self._lock:
                self._response = None
            # Closed, not returned to the pool: after a stop() its socket is shut down, and
            # a connection with a half-read body must not serve the next request.
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()


def _shutdown(response: Any) -> None:
    """Unblock a thread reading ``response``: shut its socket down (closing it from another
    thread could block on the TLS object's lock, which the reader holds)."""
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
