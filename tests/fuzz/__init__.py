"""Generated-input suite (issue 9): every public function and command, against the oracle.

The oracle (:mod:`fuzz._oracle`): a call either returns a result that keeps the
documented guarantees, or raises an error of the documented tree
(:class:`hoodwink.errors.HoodwinkError`); the CLI exits 0, 2 or 3 without a
traceback. Anything else (a raw exception, a NaN or silently wrong result, a
hang past the per-case timeout) is a failure.
"""
