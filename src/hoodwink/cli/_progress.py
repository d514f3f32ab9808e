"""Progress in the CLI: a bar on a terminal, a short line every ~10 s when piped.

Every long command wraps its work in :func:`progress_reporter` and passes the
callback it yields to the library's ``progress=`` parameter. The rule is the
same for every command:

* stderr is a terminal: a rich bar with %, elapsed time and ETA;
* stderr is piped or redirected: one short line (``label: 40% (8/20) eta 12s``)
  at most every ``interval`` seconds, plus one at the end;
* ``--quiet``: nothing.

Progress goes to stderr so that ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from hoodwink.progress import ProgressCallback

__all__ = ["PipedProgress", "progress_reporter"]

#: Seconds between two lines when the output is not a terminal.
INTERVAL_S = 10.0


class PipedProgress:
    """Writes ``label: 40% (8/20) eta 12s — message`` lines, throttled.

    Parameters
    ----------
    label : str
    stream : text stream
    interval : float
        Minimum seconds between two lines (the first update after the start
        waits for it too; the final ``done == total`` line is always written).
    clock : callable
        Time source, replaceable in tests.
    """

    def __init__(self, label: str, stream: TextIO, interval: float = INTERVAL_S,
                 clock: Callable[[], float] | None = None) -> None:
        self.label = label
        self.stream = stream
        self.interval = interval
        self._clock = clock or time.monotonic
        self._start = self._clock()
        self._last = self._start
        self._finished = False

    def __call__(self, done: int, total: int, message: str) -> None:
        now = self._clock()
        final = total > 0 and done >= total
        if final and self._finished:
            return
        if not final and now - self._last < self.interval:
            return
        self._last = now
        self._finished = final
        elapsed = now - self._start
        if total > 0:
            pct = f"{100 * done / total:.0f}% ({done}/{total})"
            eta = f" eta {_fmt_s(elapsed * (total - done) / done)}" if 0 < done < total else ""
        else:
            pct, eta = f"{done}", ""
        tail = f" - {message}" if message else ""
        self.stream.write(f"{self.label}: {pct}{eta}, {_fmt_s(elapsed)} elapsed{tail}\n")
        self.stream.flush()


def _fmt_s(s: float) -> str:
    if s < 60:
        return f"{s:.0f}s"
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


@contextmanager
def progress_reporter(label: str, *, quiet: bool = False,
                      stream: TextIO | None = None) -> Iterator[ProgressCallback]:
    """Yield a ``progress(done, total, message)`` callback for one command.

    Parameters
    ----------
    label : str
        What is running, e.g. ``"PGD on 500 samples"``.
    quiet : bool
        Report nothing.
    stream : text stream, optional
        Where to write; stderr by default. A bar is drawn only on a terminal.
    """
    out = stream if stream is not None else sys.stderr
    if quiet:
        yield lambda done, total, message: None
        return
    if not out.isatty():
        yield PipedProgress(label, out)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(file=out), transient=False) as bar:
        task = bar.add_task(label, total=None, info="")

        def update(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total if total > 0 else None, info=message)

        yield update
