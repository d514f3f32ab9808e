"""Progress reporting for long library calls: an optional callback, off by default.

The library never prints. A long call (an attack over many samples, a study)
takes ``progress=``, a callable ``progress(done, total, message)`` that it
calls as work completes; ``done`` and ``total`` count units of the call's own
choosing (steps, samples, rounds) and ``total`` never changes within a call.
The CLI turns these calls into a bar on a terminal and a short line every
~10 s when the output is piped (:mod:`hoodwink.cli._progress`).

>>> seen = []
>>> report = as_callback(lambda d, t, m: seen.append((d, t, m)))
>>> report(1, 4, "step")
>>> seen
[(1, 4, 'step')]
>>> as_callback(None)(1, 4, "ignored")  # no callback: a no-op
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback", "as_callback", "scaled"]

#: ``progress(done, total, message)``; see the module docstring.
ProgressCallback = Callable[[int, int, str], None]


def _silent(done: int, total: int, message: str) -> None:
    """The callback used when none is given."""


def as_callback(progress: ProgressCallback | None) -> ProgressCallback:
    """``progress`` itself, or a no-op when it is None.

    Raises
    ------
    hoodwink.errors.ConfigError
        When ``progress`` is neither None nor callable.
    """
    if progress is None:
        return _silent
    if not callable(progress):
        from hoodwink.errors import ConfigError

        raise ConfigError(
            "The 'progress' parameter must be a callable progress(done, total, message) or "
            f"None. Got {progress!r}."
        )
    return progress


def scaled(progress: ProgressCallback | None, offset: int, span: int,
           total: int) -> ProgressCallback:
    """A callback for one part of a larger job.

    A sub-task reporting ``(d, t, m)`` is shown to ``progress`` as
    ``(offset + round(span * d / t), total, m)``: use it to run several
    attacks (e.g. one per eps of a sweep) under one bar.
    """
    outer = as_callback(progress)

    def inner(done: int, sub_total: int, message: str) -> None:
        frac = done / sub_total if sub_total > 0 else 1.0
        outer(offset + round(span * frac), total, message)

    return inner
