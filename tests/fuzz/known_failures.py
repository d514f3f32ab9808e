"""KNOWN_FAILURES: the fuzz tests that fail today because of unfixed bugs (issue 9).

This is the one place where fuzz tests are marked xfail(strict=False). When a
root cause is fixed, delete its line here (the test then must pass).
"""

KNOWN_FAILURES: dict[str, str] = {
    # Census of 3,000 cases on the live tree: 9 cases (levels=2, per-feature bounds, eps=0).
    "attack_call": "issue 9: an input accepted as on the grid within a tolerance is snapped, so "
                   "eps=0 returns x_adv != x",
    # A corrupted record field (a list where a number belongs) loads, then summary() crashes.
    "result_load": "issue 9: AttackResult.load trusts the types of the JSON fields "
                   "(summary() raises TypeError)",
    "cli_message": "issue 9: usage errors are a 5-line box, not the one line the README promises",
}


#: Areas whose *fast* (derandomized, default) test fails today; the others' fast examples
#: pass, so only their long runs carry the mark.
FAILING_FAST = {"result_load", "cli_message"}


def reason(area: str, *, fast: bool = False) -> str | None:
    """The xfail reason of ``area`` (its fast or long test), or None when it must pass."""
    if fast and area not in FAILING_FAST:
        return None
    return KNOWN_FAILURES.get(area) or None
