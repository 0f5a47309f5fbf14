"""The JSON report: everything in the result, with the context, one file per test.

Strict JSON (RFC 8259): a float that is not finite (NaN, infinity), which ``json.dumps`` would
write as a bare ``NaN`` or ``Infinity`` that no strict reader accepts, is written as ``null``,
wherever it is, also in what a ``pytest_ingress_update_json`` hook added
(``docs/report-formats.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..core.result import LoadResult
from .context import ReportContext


def to_json(result: LoadResult, context: ReportContext) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["error_rate"] = result.error_rate
    data["held_rate"] = result.held_rate
    return {"context": context.to_json(), "result": data}


# A file name may be 255 bytes (ext4, xfs, APFS, NTFS); the stem leaves room for the longest
# suffix a report file gets (".records.csv") and some to spare.
MAX_STEM_BYTES = 200
_HASH_CHARS = 10  # of the node id's SHA-256: 40 bits, no collision among a suite's tests


def file_stem(test: str) -> str:
    """The name every report file of the test with node id ``test`` starts with: the id made
    file-safe, one file name per id.

    Making it file-safe loses characters (``a b``, ``a_b`` and ``a/b`` all read ``a_b``), so
    whenever it changed the id, or the id is too long for a file name (a long parametrize id),
    a short hash of the whole id follows: two ids never share a stem, whichever process
    (xdist worker) writes them."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
    if safe == test and len(safe) <= MAX_STEM_BYTES:
        return safe
    digest = hashlib.sha256(test.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{safe[:MAX_STEM_BYTES - _HASH_CHARS - 1]}-{digest}"  # safe is ASCII: chars = bytes


def strict(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None, in dicts, lists and
    tuples at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def dumps(data: Any) -> str:
    """Strict JSON text of ``data`` (see the module docstring)."""
    return json.dumps(strict(data), indent=2, allow_nan=False)


def path_for(directory: Path, test: str) -> Path:
    """Where the JSON report of the test with node id ``test`` goes."""
    return directory / f"{file_stem(test)}.json"


def write(directory: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``<directory>/<test id made file-safe>.json``; returns the path."""
    text = dumps(data) + "\n"  # first: a value JSON cannot hold leaves no half-written file
    directory.mkdir(parents=True, exist_ok=True)
    path = path_for(directory, str(data["context"]["test"]))
    path.write_text(text, encoding="utf-8")
    return path
