"""Shared pieces of the CLI: consoles, error handling, argument parsing."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from hoodwink.errors import ConfigError, HoodwinkError

if TYPE_CHECKING:  # torch loads only when a command runs, never at start-up
    from hoodwink.models.torch import TorchClassifier

__all__ = [
    "EXIT_ERROR",
    "EXIT_FLAGS",
    "DEFAULT_OUT_ROOT",
    "console",
    "err_console",
    "output_dir",
    "output_file",
    "parse_eps",
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
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise ConfigError(
            f"Cannot read the budget {text!r}: give a number such as 0.03 or a fraction such "
            "as 8/255."
        ) from exc
    budget = Interval(float, 0, None)
    if not budget.accepts(value):
        raise ConfigError(f"The budget must be {budget.description}. Got {text!r}.")
    return value


def resolve_target(model: TorchClassifier, spec: str) -> int:
    """A class index from an index or a class name of ``model``."""
    names = model.class_names
    if names is not None and len(names) == 1000:
        from hoodwink.zoo.imagenet import resolve_class

        return resolve_class(spec)
    s = spec.strip()
    if s.lstrip("-").isdigit():
        idx = int(s)
        c = len(names) if names is not None else model.num_classes
        if not 0 <= idx < c:
            raise ConfigError(f"Target {idx} is outside the model's classes 0..{c - 1}.")
        return idx
    if names is not None:
        lowered = [n.lower() for n in names]
        if s.lower() in lowered:
            return lowered.index(s.lower())
        raise ConfigError(f"Unknown class {spec!r}; the model's classes are {', '.join(names)}.")
    raise ConfigError(f"Target {spec!r} must be a class index for this model.")


def run_guarded(fn: Callable[[], None]) -> None:
    """Run a command body; library errors become one line and exit code 2."""
    try:
        fn()
    except HoodwinkError as exc:
        if state.debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
