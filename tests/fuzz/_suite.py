"""Builds the fast and the long test of each generator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ._oracle import judge

_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def fuzz_pair(
    strategy: st.SearchStrategy[Any], area: str, *, examples: int | None = None
) -> tuple[Callable[..., None], Callable[..., None]]:
    """(fast test, long test) asserting the oracle over ``strategy``'s cases.

    ``examples`` overrides the fast profile's count (for costly generators).
    Known failures of ``area`` are marked xfail(strict=False) from KNOWN_FAILURES.
    """
    from .known_failures import reason

    def body(case: Any) -> None:
        out = judge(case)
        assert out.passed, out.message()

    fast_reason, long_reason = reason(area, fast=True), reason(area)
    fast_settings = settings(settings.get_profile("hoodwink-fuzz"),
                             **({"max_examples": examples} if examples else {}),
                             # A known failure is not shrunk again on every CI run.
                             **({"phases": _NO_SHRINK} if fast_reason else {}))
    fast = fast_settings(given(strategy)(body))
    long = pytest.mark.fuzz_long(settings(settings.get_profile("hoodwink-fuzz-long"))(
        given(strategy)(body)))
    if fast_reason:
        fast = pytest.mark.xfail(strict=False, reason=fast_reason)(fast)
    if long_reason:
        long = pytest.mark.xfail(strict=False, reason=long_reason)(long)
    return fast, long
