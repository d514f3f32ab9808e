"""Shared pieces of the CLI: consoles, error handling, argument parsing."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.console import Console
from rich.markup import escape

from hoodwink.errors import ConfigError, EpsScaleWarning, HoodwinkError

if TYPE_CHECKING:  # torch loads only when a command runs, never at start-up
    from hoodwink.models.base import Classifier
    from hoodwink.models.torch import TorchClassifier

__all__ = [
    "EXIT_ERROR",
    "EXIT_FLAGS",
    "DEFAULT_OUT_ROOT",
    "check_budget",
    "check_output",
    "console",
    "err_console",
    "output_dir",
    "output_file",
    "parse_eps",
    "print_error",
    "print_warning",
    "resolve_target",
    "run_guarded",
    "state",
]

#: Usage or library error.
EXIT_ERROR = 2
#: An evaluation finished but raised sanity flags.
EXIT_FLAGS = 3

console = Console()
err_console = Console(stderr=True)


@dataclass
class _State:
    debug: bool = False
    quiet: bool = False


state = _State()


#: Where every command writes when ``--out`` is not given: ``./out/<command>/``.
DEFAULT_OUT_ROOT = Path("out")


def check_output(
    out: Path | None,
    command: str,
    *,
    kind: Literal["file", "folder"] = "folder",
    filename: str | None = None,
    files: tuple[str, ...] = (),
) -> Path:
    """Check where a command will write, before any work; create nothing.

    Every command that writes calls this first, so that an unwritable output
    costs one line and exit code 2 before a model is loaded, not a traceback
    after the work.

    Parameters
    ----------
    out : Path or None
        ``--out``; None means the default ``./out/<command>/`` (``/<filename>``
        for a file).
    command : str
        The command's folder name under ``./out/``.
    kind : {"folder", "file"}
        What ``out`` names.
    filename : str, optional
        For ``kind="file"`` without ``--out``: the file's name in the default folder.
    files : tuple of str
        For a folder: names the command writes inside it (none may be a folder).

    Returns
    -------
    Path
        The output folder or file (not created).

    Raises
    ------
    ConfigError
        The location is a folder where a file is expected (or the reverse),
        lies under a regular file, or its nearest existing folder refuses new
        files (``/proc``, a read-only mount, no permission).
    """
    from hoodwink.reports import check_output_path

    if out is not None:
        path = out
    elif kind == "file":
        path = DEFAULT_OUT_ROOT / command / (filename or "out")
    else:
        path = DEFAULT_OUT_ROOT / command
    return check_output_path(path, kind=kind, files=files)


def output_dir(out: Path | None, command: str) -> Path:
    """The folder a command writes into, created if missing.

    The one rule for every command: ``--out`` when given, else
    ``./out/<command>/`` under the current directory (``out/`` is git-ignored
    in this repository). Missing parent folders are created.
    """
    folder = out if out is not None else DEFAULT_OUT_ROOT / command
    _mkdir(folder)
    return folder


def output_file(out: Path | None, command: str, filename: str) -> Path:
    """A file a command writes: ``--out`` when given, else ``./out/<command>/<filename>``.

    The parent folder is created if missing.
    """
    path = out if out is not None else DEFAULT_OUT_ROOT / command / filename
    _mkdir(path.parent)
    return path


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(
            f"Cannot create the output folder {folder}: a file is in the way. Choose another "
            "--out."
        ) from exc
    except PermissionError as exc:
        raise ConfigError(
            f"Cannot create the output folder {folder}: permission denied. Choose another --out."
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the output folder {folder}: {exc.strerror or exc}. Choose another "
            "--out."
        ) from exc


def parse_eps(text: str) -> float:
    """Parse a budget: ``0.03``, ``8/255`` or ``2e-3``.

    Raises
    ------
    ConfigError
        Not a number or fraction, or not in [0, inf) (negative, NaN, infinite,
        or too large for a float).
    """
    from hoodwink._validation import Interval  # here, to keep `hoodwink --help` light

    s = text.strip()
    try:
        value = float(Fraction(s)) if "/" in s else float(s)
    except OverflowError as exc:
        raise ConfigError(
            f"The budget {_shorten(text)} is too large for a float. Give a budget within the "
            "model's input range, e.g. 8/255."
        ) from exc
    except (ValueError, ZeroDivisionError) as exc:
        raise ConfigError(
            f"Cannot read the budget {_shorten(text)}: give a number such as 0.03 or a "
            "fraction such as 8/255."
        ) from exc
    budget = Interval(float, 0, None)
    if not budget.accepts(value):
        raise ConfigError(f"The budget must be {budget.description}. Got {_shorten(text)}.")
    if value == 0 and _exact(s) != 0:
        raise ConfigError(
            f"The budget {_shorten(text)} is too small for a float: it would be 0. Give 0 for "
            "no perturbation, or a budget such as 1/255."
        )
    return value


def _exact(s: str) -> Fraction:
    """The exact value of a budget that parsed as a float (0 where Fraction cannot say)."""
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def _shorten(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut in the middle when longer than ``limit`` (a 5000-digit flag)."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    half = (limit - 5) // 2
    return f"{shown[:half]}...{shown[-half:]} ({len(text)} characters)"


def check_budget(eps: float, *, norm: str, model: Classifier, dims: int,
                 text: str | None = None) -> None:
    """The CLI's one policy for budgets: refuse ``eps`` larger than the whole input range.

    Such a budget leaves the attack unconstrained, and is almost always an 8-bit budget
    given without its ``/255``. The range is measured in the attack's norm: the
    diameter of the model's input box, ``span * dims ** (1/p)``.

    Parameters
    ----------
    eps : float
        The budget, in raw input units.
    norm : {"linf", "l2", "l1"}
    model : Classifier
        Whose ``bounds`` give the range.
    dims : int
        Features per input (for L2 and L1).
    text : str, optional
        The budget as the user typed it, repeated in the message.

    Raises
    ------
    ConfigError
        ``eps`` exceeds the diameter; the message suggests ``eps/255`` where that
        reading is plausible.
    """
    from hoodwink.attacks._norms import range_diameter

    lo, hi = model.bounds
    span = float((hi - lo).max())
    diameter = range_diameter(lo, hi, norm, dims)  # type: ignore[arg-type]
    if eps <= diameter:
        return
    shown = text.strip() if text is not None and len(text.strip()) <= 20 else f"{eps:.6g}"
    lo_s, hi_s = f"{float(lo.min()):g}", f"{float(hi.max()):g}"
    where = "" if norm == "linf" else f" in {norm} (the diameter of the input box is " \
                                        f"{diameter:.6g})"
    if norm == "linf" and 1 < eps <= 255 and "/" not in shown and abs(span - 1) < 1e-9:
        fix = f"did you mean {shown}/255?"
    else:
        fix = f"give at most {diameter:.6g}."
    raise ConfigError(
        f"eps {shown} is larger than the whole input range [{lo_s}, {hi_s}]{where}, so the "
        f"attack would be unconstrained; {fix}"
    )


def resolve_target(model: TorchClassifier, spec: str) -> int:
    """A class index from an index or a class name of ``model``."""
    names = model.class_names
    if names is not None and len(names) == 1000:
        from hoodwink.zoo.imagenet import resolve_class

        return resolve_class(spec)
    from hoodwink._validation import parse_index

    s = spec.strip()
    idx = parse_index(s)  # ASCII digits only: "²".isdigit() is True, int("²") fails
    if idx is not None:
        c = len(names) if names is not None else model.num_classes
        if not 0 <= idx < c:
            raise ConfigError(
                f"Target {_shorten(s)} is outside the model's classes 0..{c - 1}."
            )
        return idx
    if names is not None:
        lowered = [n.lower() for n in names]
        if s.lower() in lowered:
            return lowered.index(s.lower())
        raise ConfigError(
            f"Unknown class {_shorten(spec)}; the model's classes are {', '.join(names)}."
        )
    raise ConfigError(f"Target {_shorten(spec)} must be a class index for this model.")


def run_guarded(fn: Callable[[], None]) -> None:
    """Run a command body; library errors become one line and exit code 2.

    An :class:`~hoodwink.errors.EpsScaleWarning` (a budget larger than the input
    range) is such an error too: the one budget policy of every command.
    """
    try:
        with warnings.catch_warnings():
            # The CLI's budget policy (see check_budget) for every command: a budget larger
            # than the input range is an error, not a warning scrolled past.
            warnings.simplefilter("error", EpsScaleWarning)
            fn()
    except (HoodwinkError, EpsScaleWarning) as exc:
        if state.debug:
            traceback.print_exc()
        print_error(str(exc))
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, on one line whatever the terminal width."""
    err_console.print(f"[bold red]error:[/] {escape(_one_line(message))}", highlight=False,
                      soft_wrap=True)


def print_warning(message: str) -> None:
    """``warning: MESSAGE`` on stderr, on one line whatever the terminal width."""
    err_console.print(f"[yellow]warning:[/] {escape(_one_line(message))}", highlight=False,
                      soft_wrap=True)
