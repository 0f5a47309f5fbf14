"""Settings shared by the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property-based tests are deterministic: the same examples on every run and every machine
# (derandomize), no example database written into the checkout, no per-example deadline (a
# shared CI runner can stall any single call), and a budget that keeps the suite fast.
settings.register_profile(
    "ingress-chaos", derandomize=True, database=None, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ingress-chaos")
