"""``hoodwink report``: render a saved evaluation as an HTML or Markdown page.

A thin shell over :func:`hoodwink.evaluation.render.write_report`: the record
path, ``--format`` and ``--out`` map onto its three arguments. Prints the path
of the page written; errors (a missing file, a record of another kind or of a
newer schema, an unwritable output) are one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hoodwink.cli._common import run_guarded

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("report")
    def report_cmd(
        record: Annotated[
            Path, typer.Argument(help="The report.json an evaluation saved (its "
                                      "report.safetensors beside it adds the examples).")
        ],
        format: Annotated[
            str, typer.Option("--format", "-f",
                              help="html: one self-contained page; md: Markdown, with its "
                                   "figures written beside it as PNG files.")
        ] = "html",
        out: Annotated[
            Path | None, typer.Option(help="The page to write. Default: beside the record, "
                                           "report.html or report.md.")
        ] = None,
    ) -> None:
        """Render a saved evaluation (report.json) as an HTML or Markdown page."""

        def go() -> None:
            from hoodwink.evaluation.render import write_report

            written = write_report(record, format=format, out=out)  # type: ignore[arg-type]
            typer.echo(str(written))

        run_guarded(go)
