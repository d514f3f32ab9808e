"""The oracle of the generated-input suite, shared by the tests and bench/fuzz_census.py.

A :class:`Case` is one generated call: a thunk, a validator of its result and a
reproducer. :func:`judge` runs it under a per-case timeout and classifies it:

``ok``          returned, and the validator found nothing wrong;
``documented``  raised a :class:`hoodwink.errors.HoodwinkError` (the documented tree),
                except :class:`~hoodwink.errors.InternalError`;
``crash``       raised anything else (keyed by exception type and top frame), or an
                InternalError: the library's own "this is a hoodwink bug";
``wrong``       returned a result that breaks a documented guarantee (NaN, out of
                the eps-ball, success disagreeing with the model, ...);
``hang``        ran past the timeout.
"""

from __future__ import annotations

import contextlib
import signal
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hoodwink.errors import HoodwinkError, InternalError

#: Outcomes that satisfy the oracle.
PASSING = ("ok", "documented")


class Hang(BaseException):
    """Raised by the timer when a case runs past its timeout (a BaseException, so that
    no ``except Exception`` in the library can swallow it)."""


@dataclass
class Case:
    """One generated call.

    Attributes
    ----------
    area : str
        Which generator made it ("attack_call", "cli", ...).
    call : callable
        The call under test; its return value goes to ``check``.
    check : callable
        ``check(result) -> list of problems``: empty when every guarantee holds.
    repro : str
        Python (or shell) text that reproduces the call.
    timeout : float
        Seconds before the case counts as a hang.
    cleanup : callables run after the case, whatever happened.
    """

    area: str
    call: Callable[[], Any]
    check: Callable[[Any], list[str]] = lambda r: []
    repro: str = ""
    timeout: float = 20.0
    after: list[Callable[[], list[str]]] = field(default_factory=list)
    #: For calls that report errors by value (the CLI's exit code 2): whether the
    #: result is a documented error rather than a success.
    refused: Callable[[Any], bool] | None = None

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        return f"Case({self.area}: {self.repro})"


@dataclass
class Outcome:
    kind: str
    key: str
    detail: str
    repro: str
    area: str

    @property
    def passed(self) -> bool:
        return self.kind in PASSING

    def message(self) -> str:
        return f"[{self.area}] {self.kind}: {self.key}\n  {self.detail}\n  repro: {self.repro}"


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (SIGALRM; Unix only)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_SRC = str(Path(__file__).resolve().parents[2] / "src" / "hoodwink")


def top_frame(exc: BaseException) -> str:
    """``file:line function`` of the innermost frame inside hoodwink (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "hoodwink" in f.filename and "tests" not in f.filename
            and "bench" not in f.filename]
    f = (ours or frames or [None])[-1]
    if f is None:
        return "?"
    name = f.filename
    if "hoodwink" in name:
        name = "hoodwink" + name.split("hoodwink", 1)[1].replace("\\", "/")
        if name.startswith("hoodwink/src/hoodwink"):
            name = name[len("hoodwink/src/"):]
    else:
        name = Path(name).name
    return f"{name}:{f.lineno} {f.name}"


def judge(case: Case) -> Outcome:
    """Run ``case`` and classify what happened (never raises, except KeyboardInterrupt)."""
    problems: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with time_limit(case.timeout):
                result = case.call()
                problems = list(case.check(result))
                refused = case.refused is not None and case.refused(result)
    except Hang as exc:
        out = Outcome("hang", "hang", str(exc), case.repro, case.area)
    except KeyboardInterrupt:
        raise
    except InternalError as exc:  # documented, but by definition a hoodwink bug
        out = Outcome("crash", f"InternalError @ {top_frame(exc)}", _short(exc), case.repro,
                      case.area)
    except HoodwinkError as exc:
        out = Outcome("documented", type(exc).__name__, _short(exc), case.repro, case.area)
    except BaseException as exc:  # noqa: BLE001 - classifying every escape is the point
        out = Outcome("crash", f"{type(exc).__name__} @ {top_frame(exc)}", _short(exc),
                      case.repro, case.area)
    else:
        out = (Outcome("wrong", problems[0].split(":")[0], "; ".join(problems), case.repro,
                       case.area) if problems
               else Outcome("documented", "exit 2", "", case.repro, case.area) if refused
               else Outcome("ok", "ok", "", case.repro, case.area))
    # Post-conditions that hold whatever the call did (the user's module, inputs, ...).
    for after in case.after:
        try:
            late = after()
        except BaseException as exc:  # noqa: BLE001
            late = [f"post-check raised {type(exc).__name__}: {exc}"]
        if late and out.kind in PASSING:
            out = Outcome("wrong", late[0].split(":")[0], "; ".join(late), case.repro, case.area)
    return out


def _short(exc: BaseException, limit: int = 300) -> str:
    s = f"{type(exc).__name__}: {exc}"
    return s if len(s) <= limit else s[:limit] + "..."
