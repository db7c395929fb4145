"""Shared test settings: the hypothesis profiles.

Profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

- ``ci`` (the default): deterministic (``derandomize=True``: the same examples on every run
  and every machine, so a red CI is reproducible), ``max_examples=40`` per property unless a
  test asks for fewer, no deadline (an exact sympy step may take a second on a slow machine),
  and the ``too_slow`` health check off (building a random model draws many values).
- ``dev``: random, 200 examples per property, for hunting bugs locally:
  ``HYPOTHESIS_PROFILE=dev python -m pytest tests/test_properties.py``.

Tests that are expensive per example (the exact engine on two-layer models, torch) set a
smaller ``max_examples`` in their own ``@settings``; the profile's value is the ceiling for
the rest.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
