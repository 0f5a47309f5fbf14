"""``ingress-chaos-sweep``: delete what killed test sessions left on a cluster.

A session deletes its namespace when it ends, also on Ctrl-C and SIGTERM; a SIGKILLed one (an
OOM kill, a CI runner torn down) cannot. Run this from a cron job or before a CI run: it deletes
only namespaces labelled ``app.kubernetes.io/managed-by=pytest-ingress-chaos`` whose
``ingress-chaos.dev/created`` label (Unix seconds) is older than ``--ttl`` (default 1h, longer
than any session should last). A namespace without a valid ``created`` label is kept and named:
the sweeper never guesses an age.

Exit codes: 0 nothing failed (also when nothing was old enough), 1 the API server could not be
reached (refused, silent past ``--timeout``, credentials rejected) or a namespace could not be
listed or deleted, 2 a usage error (bad option, no cluster configured, a kubeconfig that cannot
be used). Every failure is one line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ...base.errors import BackendError
from ...base.units import DurationStyle, format_duration, positive_age, positive_duration
from ...settings.options import SessionSettings
from .apis import ApiError, JsonDict, KubeApi
from .connect import DEFAULT_CONNECT_TIMEOUT, KubeconfigError, connect_and_reach, connect_to
from .labels import (
    CREATED_LABEL,
    RUN_LABEL,
    created_by_run,
    labels_of,
    managed_selector,
    namespace_name,
)

DEFAULT_TTL = 3600.0


@dataclass(frozen=True)
class Managed:
    """A namespace some run of the plugin created."""

    name: str
    run: str
    created: int | None  # None: no valid created label
    terminating: bool

    def age(self, now: float) -> float | None:
        return None if self.created is None else now - self.created


def _managed(namespace: JsonDict) -> Managed:
    labels = labels_of(namespace)
    meta = namespace.get("metadata") or {}
    raw = labels.get(CREATED_LABEL, "")
    return Managed(name=str(meta.get("name")), run=labels.get(RUN_LABEL, "?"),
                   created=int(raw) if raw.isdigit() else None,
                   terminating=bool(meta.get("deletionTimestamp")))


def managed_namespaces(api: KubeApi) -> list[Managed]:
    """Every namespace carrying the managed-by label, oldest first."""
    listed = api.items("list namespaces managed by pytest-ingress-chaos",
                       api.core.list_namespace, label_selector=managed_selector())
    found = [_managed(namespace) for namespace in listed]
    return sorted(found, key=lambda m: (m.created is None, m.created or 0, m.name))


def expired(namespaces: list[Managed], ttl: float, now: float) -> list[Managed]:
    """Those whose created label is more than ``ttl`` seconds old and not being deleted."""
    return [m for m in namespaces
            if m.created is not None and now - m.created > ttl and not m.terminating]


def sweep(api: KubeApi, ttl: float, *, dry_run: bool, out: TextIO,
          now: float | None = None) -> int:
    """Delete (or with ``dry_run`` list) the expired namespaces; the exit code."""
    now = time.time() if now is None else now
    try:
        namespaces = managed_namespaces(api)
    except BackendError as exc:
        print(f"ingress-chaos-sweep: {exc}", file=out)
        return 1
    for managed in namespaces:
        if managed.created is None:
            print(f"kept {managed.name}: no valid {CREATED_LABEL} label", file=out)
    doomed = expired(namespaces, ttl, now)
    failed = 0
    for managed in doomed:
        age = format_duration(now - (managed.created or 0), DurationStyle.AGE)
        if dry_run:
            print(f"would delete {managed.name} (run {managed.run}, {age} old)", file=out)
            continue
        try:
            api.call(f"delete namespace {managed.name}", api.core.delete_namespace,
                     managed.name, propagation_policy="Background")
        except ApiError as exc:
            if exc.status == 404:  # gone meanwhile
                continue
            failed += 1
            print(f"could not delete {managed.name}: {exc}", file=out)
            continue
        print(f"deleted {managed.name} (run {managed.run}, {age} old)", file=out)
    verb = "would delete" if dry_run else "deleted"
    print(f"{len(namespaces)} namespaces managed by pytest-ingress-chaos; {verb} "
          f"{len(doomed) - failed} older than {format_duration(ttl, DurationStyle.AGE)}"
          f"{f'; {failed} failed' if failed else ''}", file=out)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingress-chaos-sweep",
        description="Delete namespaces that pytest-ingress-chaos sessions left behind: only "
        "those labelled app.kubernetes.io/managed-by=pytest-ingress-chaos whose "
        f"{CREATED_LABEL} label is older than --ttl. Exit codes: 0 ok, 1 the API server failed "
        "or a deletion did, 2 usage error (also a kubeconfig that cannot be used).")
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the "
                        "in-cluster service account)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--ttl", default="1h",
                        help="delete namespaces created longer ago than this (e.g. 30m, 2h, "
                        "3600; default 1h)")
    parser.add_argument("--timeout", default=f"{DEFAULT_CONNECT_TIMEOUT:g}s",
                        help="how long the API server has to answer each request (e.g. 10s; "
                        f"default {DEFAULT_CONNECT_TIMEOUT:g}s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be deleted, delete nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        ttl = positive_age(args.ttl)
    except ValueError as exc:
        parser.error(f"--ttl: {exc}")
    try:
        timeout = positive_duration(args.timeout)
    except ValueError as exc:
        parser.error(f"--timeout: {exc}")
    try:
        connection = connect_and_reach(args.kubeconfig, args.context, timeout=timeout)
    except BackendError as exc:
        print(f"ingress-chaos-sweep: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, KubeconfigError) else 1
    api = KubeApi(connection.api_client, request_timeout=timeout)
    try:
        return sweep(api, ttl, dry_run=args.dry_run, out=sys.stdout)
    finally:
        connection.api_client.close()


if __name__ == "__main__":
    sys.exit(main())


# --- from pytest: `pytest --ingress-sweep`, and the namespace of a worker that died ----------


def sweep_from_settings(settings: SessionSettings, ttl: float, *, dry_run: bool,
                        out: TextIO) -> int:
    """What ``pytest --ingress-sweep`` runs, with the session's cluster options."""
    try:
        connection = connect_to(settings)
    except BackendError as exc:
        print(f"ingress-chaos-sweep: {exc}", file=out)
        return 2 if isinstance(exc, KubeconfigError) else 1
    try:
        return sweep(KubeApi(connection.api_client), ttl, dry_run=dry_run, out=out)
    finally:
        connection.api_client.close()


def reap_worker(settings: SessionSettings, run_id: str, worker: str) -> str | None:
    """Delete the namespace of an xdist worker that died (``os._exit``, a crash): its own
    teardown never ran. Only a namespace carrying this plugin's label and this run's id goes.
    Returns what was done, for the controller to say, or None when there was nothing."""
    name = namespace_name(run_id, worker)
    connection = connect_to(settings)
    api = KubeApi(connection.api_client)
    try:
        try:
            found = api.call(f"read namespace {name}", api.core.read_namespace, name)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        if not created_by_run(found, run_id):
            return f"kept {name}: not labelled as this run's"
        try:
            api.call(f"delete namespace {name}", api.core.delete_namespace, name,
                     propagation_policy="Background")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return f"deleted {name}, the namespace of worker {worker}, which died"
    finally:
        connection.api_client.close()
