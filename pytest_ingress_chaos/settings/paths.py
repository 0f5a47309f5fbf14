"""The settings that name files and directories, checked against the filesystem at start.

Parsing (:mod:`.options`) says whether a value is a path at all; only the filesystem says
whether it is a usable one. Each refusal names where the value came from (the option, the ini
key or the environment variable the user actually set) and what is wrong with the path, in
words ("is a file, not a directory") rather than the operating system's errno text, which for
``mkdir`` on a file says "File exists".
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base.errors import SettingsError
from .options import SessionSettings


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the current directory at worst)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def create_report_dir(settings: SessionSettings) -> None:
    """Create ``--ingress-report-dir`` (and its parents) now, at start, rather than after the
    first load window: a bad directory then fails the run before any test is spent."""
    directory = settings.report_dir
    if directory is None:
        return
    where = settings.origin("report_dir")
    existing = _first_existing(directory)
    if existing == directory and not directory.is_dir():
        raise SettingsError(f"{where}: is a file, not a directory")
    if existing != directory and not existing.is_dir():
        raise SettingsError(f"{where}: {str(existing)!r} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"{where}: cannot create the directory: {reason}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SettingsError(f"{where}: the directory is not writable")


def check_kubeconfig(settings: SessionSettings) -> None:
    """A kubeconfig the user named must be a readable file; only the kubernetes backend reads
    it (the simulator ignores the option). Absent, the backend looks for one itself."""
    path = settings.kubeconfig
    if path is None or settings.backend != "kubernetes":
        return
    where = settings.origin("kubeconfig")
    if not path.exists():
        raise SettingsError(f"{where}: no such file")
    if path.is_dir():
        raise SettingsError(f"{where}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise SettingsError(f"{where}: the file is not readable")
