"""Settings shared by the whole suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Property-based tests are deterministic: the same examples on every run and every machine
# (derandomize), no example database written into the checkout, no per-example deadline (a
# shared CI runner can stall any single call), and a budget that keeps the suite fast.
settings.register_profile(
    "ingress-chaos", derandomize=True, database=None, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ingress-chaos")

# No test may reach an address outside loopback: boto3's credential chain ends with the instance
# metadata service (169.254.169.254), which the kubernetes backend's AWS evidence would ask on a
# machine without AWS credentials. Pytester's subprocesses inherit the environment.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
    os.environ.pop(_name, None)  # the tests that want credentials give the stand-in's
