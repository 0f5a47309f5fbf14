"""The soak benchmark's analysis (benchmarks/soak.py), on hand-made samples (no I/O).

The benchmark itself runs 30 minutes by hand; what is checked here is that its verdict tells
the records' expected growth from a leak, and a settling warm-up from a trend.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
RATE = 500.0
DURATION = 1800.0
WARMUP = 120.0
MB = 1024 * 1024


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _samples(pytest_rss: Callable[[float], float], simulator_rss: Callable[[float], float],
             pod_rss: Callable[[float], float] = lambda t: 22 * MB) -> list[dict[str, Any]]:
    """A sample every 10 s from load start to 10 s after the window; pods 1-3, pod 1 killed at
    900 s and replaced by pod 4."""
    samples = []
    for step in range(int(DURATION / 10) + 2):
        t = step * 10.0
        pods = [1, 2, 3] if t < 900 else [2, 3, 4]
        processes = [
            {"pid": 100, "role": "pytest", "rss": pytest_rss(t), "uss": pytest_rss(t) - 12 * MB,
             "fds": 117, "threads": 4},
            {"pid": 200, "role": "simulator", "rss": simulator_rss(t),
             "uss": simulator_rss(t) - 12 * MB, "fds": 130, "threads": 5},
            *({"pid": 300 + k, "role": "pod", "name": f"kubia-{k}", "rss": pod_rss(t),
               "uss": pod_rss(t) - 10 * MB} for k in pods),
        ]
        samples.append({"t": t + 5, "since_load_start": t, "processes": processes})
    return samples


def _records(soak: ModuleType, t: float) -> float:
    return 50 * MB + float(soak.RECORD_BYTES * RATE * t)


def test_records_are_expected_growth_not_a_leak(soak: ModuleType) -> None:
    # Allocator noise: +-200 KB, alternating.
    samples = _samples(lambda t: _records(soak, t) + (200_000 if int(t) % 20 else -200_000),
                       lambda t: 28 * MB)
    analysis = soak.analyze(samples, duration=DURATION, warmup=WARMUP, record_rate=RATE)
    assert analysis["grows"] == []
    pytest_rss = analysis["roles"]["pytest"]["rss"]
    assert pytest_rss["mb_per_hour"] == pytest.approx(soak.RECORD_BYTES * RATE * 3600 / MB,
                                                      abs=1)
    assert abs(pytest_rss["excess_mb_per_hour"]) < 1
    assert analysis["roles"]["pods"]["processes_seen"] == 4
    assert (analysis["roles"]["pods"]["alive_min"], analysis["roles"]["pods"]["alive_max"]) == \
        (3, 3)


def test_a_leak_beyond_the_records_is_named(soak: ModuleType) -> None:
    # 100 bytes a request more than the records: about 172 MB an hour at 500/s.
    samples = _samples(lambda t: _records(soak, t) + 100 * RATE * t, lambda t: 28 * MB)
    analysis = soak.analyze(samples, duration=DURATION, warmup=WARMUP, record_rate=RATE)
    assert analysis["roles"]["pytest"]["rss"]["excess_mb_per_hour"] == pytest.approx(
        100 * RATE * 3600 / MB, rel=0.01)
    assert [line.split(":")[0] for line in analysis["grows"]] == ["pytest rss", "pytest uss"]


def test_a_growing_simulator_is_named_and_a_settling_one_is_not(soak: ModuleType) -> None:
    growing = soak.analyze(_samples(lambda t: _records(soak, t), lambda t: 28 * MB + 5000 * t),
                           duration=DURATION, warmup=WARMUP, record_rate=RATE)
    assert [line.split(":")[0] for line in growing["grows"]] == ["simulator rss",
                                                                 "simulator uss"]
    # 4 MB more over the first 15 minutes after warm-up, then flat: a warm-up still settling.
    settling = soak.analyze(
        _samples(lambda t: _records(soak, t), lambda t: 28 * MB + 4 * MB * min(t, 900) / 900),
        duration=DURATION, warmup=WARMUP, record_rate=RATE)
    assert settling["roles"]["simulator"]["rss"]["mb_per_hour"] > soak.FLAT_MB_PER_HOUR
    assert settling["grows"] == []


def test_kills_stay_inside_the_window_with_room_to_finish(soak: ModuleType) -> None:
    assert soak.kill_offsets(1800, 300) == [300, 600, 900, 1200, 1500]
    assert soak.kill_offsets(60, 20) == [20, 40]
    assert soak.kill_offsets(60, 0) == []
