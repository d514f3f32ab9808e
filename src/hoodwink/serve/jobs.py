"""A single-worker job queue: one attack at a time, the others wait in line.

The page's requests are queued rather than run at once: attacks share one model
and a few CPU cores, so running two together makes both slower and can run the
machine out of memory. :class:`JobQueue` owns one worker thread that takes jobs
in arrival order; a job's place in the line (:meth:`JobQueue.position`) is what
the page shows while it waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hoodwink.errors import HoodwinkError

__all__ = ["Job", "JobQueue", "QueueFullError"]

_log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]


class QueueFullError(HoodwinkError):
    """The line of waiting jobs is full; the request was not queued."""


@dataclass
class Job:
    """One upload to attack, and what became of it.

    Attributes
    ----------
    id : str
        Random hex token; also the name of the job's folder.
    folder : Path
        The job's own folder inside the server's output folder; everything the
        job writes goes there.
    upload : Path
        The uploaded file, saved under a fixed name inside ``folder``.
    source_name : str
        The upload's file name, sanitised, for display and download names only.
    target : int
        Class index to aim for.
    target_name : str
    eps_255 : int
        L∞ budget in 8-bit levels (the attack's ``eps`` is ``eps_255 / 255``).
    robust : bool
        Ask for the transformation-robust attack.
    state : {"queued", "running", "done", "failed"}
    progress : float
        Fraction of the attack done, in [0, 1].
    error : str or None
        Why the job failed, for the user.
    result : dict or None
        The JSON-ready result once done.
    times : dict of str to float
        ``time.perf_counter()`` at ``created``, ``started`` and ``finished``.
    paths : dict of str to Path
        The job's files once done: ``png``, ``json``, ``figure``, ``original``.
    """

    id: str
    folder: Path
    upload: Path
    source_name: str
    target: int
    target_name: str
    eps_255: int
    robust: bool
    state: JobState = "queued"
    progress: float = 0.0
    error: str | None = None
    result: dict[str, Any] | None = None
    times: dict[str, float] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


class JobQueue:
    """First in, first out, with one worker thread.

    Parameters
    ----------
    run : callable
        ``run(job) -> dict``: does the work and returns the job's result. A
        :class:`~hoodwink.errors.HoodwinkError` it raises fails the job with
        the error's message; any other exception fails it with a note that it
        is a bug (the traceback goes to the log).
    max_waiting : int
        Most jobs waiting (not counting the one running);
        :meth:`submit` raises :class:`QueueFullError` beyond it.
    keep : int
        Finished jobs remembered (oldest forgotten first); ``on_forget(job)``
        is called for each one forgotten (the server removes its folder).
    on_forget : callable, optional
    """

    def __init__(self, run: Callable[[Job], dict[str, Any]], *, max_waiting: int = 16,
                 keep: int = 100, on_forget: Callable[[Job], None] | None = None) -> None:
        from hoodwink._validation import check_int

        self._run = run
        self.max_waiting = check_int("JobQueue", "max_waiting", max_waiting, low=1)
        self.keep = check_int("JobQueue", "keep", keep, low=1)
        self._on_forget = on_forget
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._work, name="hoodwink-serve-worker",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` s for the running one to end."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ use

    def submit(self, job: Job) -> int:
        """Queue ``job``; return its place in line (1: next to run).

        Raises
        ------
        QueueFullError
            ``max_waiting`` jobs are waiting already.
        """
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFullError(
                    f"{len(self._waiting)} photos are waiting already, the most this server "
                    "queues (max_waiting). Try again in a minute."
                )
            job.state = "queued"
            job.times["created"] = time.perf_counter()
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify_all()
            return len(self._waiting)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (unknown or forgotten)."""
        with self._cond:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """Place in line: 1 is next to run; 0 when running or finished."""
        with self._cond:
            for i, waiting in enumerate(self._waiting):
                if waiting is job:
                    return i + 1
            return 0

    def wait(self, job: Job, timeout: float | None = None) -> bool:
        """Block until ``job`` is done or failed; False when ``timeout`` s passed first."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while job.state in ("queued", "running"):
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._waiting.popleft()
                job.state = "running"
                job.times["started"] = time.perf_counter()
            try:
                result = self._run(job)
            except HoodwinkError as exc:
                self._finish(job, None, str(exc))
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any job
                _log.exception("job %s failed", job.id)
                self._finish(job, None,
                             f"Internal error ({type(exc).__name__}: {exc}). This is a hoodwink "
                             "bug; the server's log has the traceback.")
            else:
                self._finish(job, result, None)

    def _finish(self, job: Job, result: dict[str, Any] | None, error: str | None) -> None:
        forgotten: list[Job] = []
        with self._cond:
            job.result, job.error = result, error
            job.state = "done" if error is None else "failed"
            job.progress = 1.0 if error is None else job.progress
            job.times["finished"] = time.perf_counter()
            done = [j for j in self._jobs.values() if j.state in ("done", "failed")]
            for old in done[:max(0, len(done) - self.keep)]:
                del self._jobs[old.id]
                forgotten.append(old)
            self._cond.notify_all()
        for old in forgotten:
            if self._on_forget is not None:
                try:
                    self._on_forget(old)
                except OSError:
                    _log.warning("could not remove the folder of job %s", old.id)
