"""Options shared by the study commands (``dream``, ``defend background``, ``transfer``,
``linear ...``): one definition each, so they read the same in every ``--help``.

The output rule (:func:`hoodwink.cli._common.output_dir`): a study writes into
``--out`` when given, else into ``./out/<command>/``; missing folders are
created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ArchOpt", "BoundsOpt", "JsonOpt", "LevelsOpt", "MeanOpt", "OutOpt", "SeedOpt", "StdOpt",
           "TrustPickleOpt", "split_list"]

#: ``--out``: the report folder; default ``./out/<command>/``.
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Report folder (created if missing). Default: ./out/COMMAND/."),
]
#: ``--json``: print the JSON record instead of tables.
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the JSON record instead of tables.")
]
#: ``--seed``.
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of everything random.")]


def split_list(values: str | list[str]) -> list[str]:
    """Comma-separated and/or repeated values as one list: ``["a,b", "c"]`` → a, b, c."""
    items = [values] if isinstance(values, str) else values
    return [p.strip() for v in items for p in v.split(",") if p.strip()]


#: The options that describe a model's input domain, shared by ``attack`` and ``evaluate``.
ArchOpt = Annotated[
    str | None,
    typer.Option(help="package.module:Class or file.py:Class (built with no arguments) "
                      "that receives the weights of a .safetensors --model. Runs that code."),
]
BoundsOpt = Annotated[
    str | None, typer.Option(help="Bounds of raw inputs 'lo,hi' (default 0,1).")
]
MeanOpt = Annotated[
    str | None,
    typer.Option(help="Per-channel mean 'a,b,c', normalised inside the model adapter."),
]
StdOpt = Annotated[
    str | None,
    typer.Option(help="Per-channel std 'a,b,c', normalised inside the model adapter."),
]
LevelsOpt = Annotated[
    int | None,
    typer.Option(help="Quantisation levels between the bounds (256 for 8-bit images)."),
]
TrustPickleOpt = Annotated[
    bool,
    typer.Option("--trust-pickle",
                 help="Allow pickle files for --model/--data; unpickling runs code in them."),
]
