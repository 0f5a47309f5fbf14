"""The real nodes' container images, built on this machine with ``umoci`` and never pulled.

No image registry is reachable here, and no component may ever try one: the images the pods
need are built from files of this machine and imported into every node's containerd before any
pod asks for them (docs/local-cluster-nodes.md).

* :data:`SAMPLE_APP` ``ingress-chaos.local/kubia:1``: the project's sample app
  (``backends/sim/sampleapp.py``: ``You've hit <hostname>`` on 8080; how it answers SIGTERM and
  its keep-alive timeout from the environment, which the manifests fill from the pod's
  annotations) run by this machine's Python, copied in with the shared libraries it loads, and
  busybox for ``sleep`` and ``sh`` (``exec`` preStop hooks). It is also tagged
  :data:`SAMPLE_APP_ALIASES` (the plugin's default image, ``luksa/kubia:latest``, fully
  qualified), so that the plugin's defaults run here unchanged; the image is a stand-in for
  kubia, built here, not kubia.
* :data:`PAUSE` ``ingress-chaos.local/pause:1``: the sandbox image, a busybox ``sleep`` forever.

Names are fully qualified: the CRI normalises a short name to ``docker.io/...``, does not find
it, and tries to pull it. The layouts are cached under :func:`~.controlplane.cache_dir`, keyed
by what they are built from, so a machine builds them once (about 10 s).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..backends.sim.dataplane import SAMPLEAPP
from .controlplane import ControlPlaneError, cache_dir

__all__ = ["PAUSE", "SAMPLE_APP", "SAMPLE_APP_ALIASES", "ImageError", "built_images",
           "import_images"]

SAMPLE_APP = "ingress-chaos.local/kubia:1"
SAMPLE_APP_ALIASES = ("docker.io/luksa/kubia:latest",)
PAUSE = "ingress-chaos.local/pause:1"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: one static binary
_BUILDER_VERSION = "1"  # bump when what goes into an image changes
_TAG = "1"
_STDLIB_SKIPPED = ("dist-packages", "site-packages", "test", "idlelib", "tkinter", "turtledemo",
                   "ensurepip", "lib2to3", "pydoc_data")
_LDD_LINE = re.compile(r"(/\S+) \(0x")


class ImageError(ControlPlaneError):
    """An image could not be built or imported; the message says which step and why."""


def _run(command: Sequence[str]) -> str:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _needed_tools() -> list[str]:
    missing = [tool for tool in ("umoci", "ldd", "tar") if shutil.which(tool) is None]
    if not BUSYBOX.is_file():
        missing.append(f"{BUSYBOX} (Debian package busybox-static)")
    return missing


def _python_files() -> list[Path]:
    """The interpreter and every shared library it or its extension modules load."""
    python = Path(os.path.realpath(sys.executable))
    stdlib = Path(os.__file__).parent
    objects = [python, *sorted((stdlib / "lib-dynload").glob("*.so"))]
    libraries: set[Path] = set()
    for chunk in range(0, len(objects), 50):
        output = _run(["ldd", *map(str, objects[chunk:chunk + 50])])
        libraries.update(Path(match) for match in _LDD_LINE.findall(output))
    return [python, *sorted(libraries)]


def _key() -> str:
    digest = hashlib.sha256()
    for part in (_BUILDER_VERSION, sys.version, SAMPLEAPP.read_bytes().hex(),
                 str(BUSYBOX.stat().st_size)):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _copy(source: Path, rootfs: Path, at: Path | None = None) -> None:
    target = rootfs / (at or source).relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(source), target)


def _busybox(rootfs: Path) -> None:
    _copy(BUSYBOX, rootfs)
    for applet in ("sh", "sleep", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")


def _fill_sample_app(rootfs: Path) -> list[str]:
    for path in _python_files():
        _copy(path, rootfs)
    python = Path(os.path.realpath(sys.executable))
    (rootfs / "usr/bin").mkdir(parents=True, exist_ok=True)
    if python != Path("/usr/bin/python3"):
        (rootfs / "usr/bin/python3").symlink_to(python)  # where it finds its stdlib
    stdlib = Path(os.__file__).parent
    shutil.copytree(stdlib, rootfs / stdlib.relative_to("/"), symlinks=True,
                    ignore=lambda directory, names: [n for n in names if n in _STDLIB_SKIPPED]
                    if Path(directory) == stdlib else [])
    _copy(SAMPLEAPP, rootfs, Path("/app/sampleapp.py"))
    _busybox(rootfs)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
    return ["/usr/bin/python3", "/app/sampleapp.py", "--host", "0.0.0.0", "--port", "8080"]


def _fill_pause(rootfs: Path) -> list[str]:
    _busybox(rootfs)
    return ["/bin/busybox", "sleep", "2147483647"]


def _build(layout: Path, fill: str, work: Path) -> None:
    image = f"{layout}:{_TAG}"
    bundle = work / f"bundle-{layout.name}"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    _run(["umoci", "unpack", "--image", image, str(bundle)])
    rootfs = bundle / "rootfs"
    entrypoint = _fill_sample_app(rootfs) if fill == "kubia" else _fill_pause(rootfs)
    _run(["umoci", "repack", "--image", image, str(bundle)])
    config = ["umoci", "config", "--image", image, "--config.workingdir", "/"]
    for part in entrypoint:
        config += ["--config.entrypoint", part]
    _run([*config, "--config.env", "PYTHONDONTWRITEBYTECODE=1",
          "--config.env", "PATH=/usr/bin:/bin"])
    _run(["umoci", "gc", "--layout", str(layout)])
    shutil.rmtree(bundle)


def built_images() -> dict[str, Path]:
    """Image name -> an OCI layout tarball of it, built now or found in the cache."""
    missing = _needed_tools()
    if missing:
        raise ImageError(f"cannot build the node images offline: missing {', '.join(missing)}")
    root = cache_dir() / "images"
    done = root / _key()
    tarballs = {SAMPLE_APP: done / "kubia.tar", PAUSE: done / "pause.tar"}
    if all(path.is_file() for path in tarballs.values()):
        return tarballs
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        for name in ("kubia", "pause"):
            layout = work / name
            _build(layout, name, work)
            _run(["tar", "-C", str(layout), "-cf", str(work / f"{name}.tar"), "."])
            shutil.rmtree(layout)
        try:
            work.rename(done)  # all at once: a directory under its key is complete
        except OSError:
            if not all(path.is_file() for path in tarballs.values()):  # not another builder's
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarballs


def import_images(ctr: Sequence[str], tarballs: dict[str, Path]) -> None:
    """Import the images into a containerd (``ctr`` = the command and its ``--address``) in
    the CRI's namespace, add the aliases, and delete any other name an import made (a short
    name would send the CRI to a registry)."""
    for name, tarball in tarballs.items():
        # The layout names its one image by the tag alone (``1``); --base-name makes that
        # ``<name without tag>:1``. (--index-name would add a second, short name for the
        # manifest, ``import-<date>:1``, which the CRI later resolves as docker.io/library/...)
        base, _, tag = name.rpartition(":")
        if tag != _TAG:
            raise ImageError(f"{name}: the layouts are tagged {_TAG}")
        _run([*ctr, "-n", "k8s.io", "images", "import", "--base-name", base, str(tarball)])
    for alias in SAMPLE_APP_ALIASES:
        _run([*ctr, "-n", "k8s.io", "images", "tag", "--force", SAMPLE_APP, alias])
    wanted = {*tarballs, *SAMPLE_APP_ALIASES}
    for name in _run([*ctr, "-n", "k8s.io", "images", "list", "-q"]).split():
        # sha256:... names are the CRI's own references to the image IDs: kept.
        if name not in wanted and not name.startswith("sha256:"):
            _run([*ctr, "-n", "k8s.io", "images", "remove", name])
