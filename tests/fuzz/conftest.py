"""Hypothesis profiles of the generated-input suite, and the ``fuzz_long`` switch.

* ``hoodwink-fuzz`` (default): few examples per test, derandomized (the same
  examples on every run, so CI is reproducible), no example database, no
  hypothesis deadline (each case has its own timeout, see ``_oracle.judge``).
  The whole of ``tests/fuzz`` runs in well under a minute on two cores.
* ``hoodwink-fuzz-long``: 2,000 examples per test, random seeds; the tests that
  use it are marked ``fuzz_long`` and run only when selected: ``-m fuzz_long``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.register_profile("hoodwink-fuzz", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("hoodwink-fuzz-long", max_examples=2000, derandomize=False,
                          phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
                          **_COMMON)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``fuzz_long`` tests run only when asked for with ``-m fuzz_long``."""
    if "fuzz_long" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="long fuzz run: select it with -m fuzz_long")
    for item in items:
        if "fuzz_long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
