"""``hoodwink transfer``: the transfer matrix between pretrained zoo models.

A thin shell over :func:`hoodwink.studies.transfer.zoo_transfer_study`:
every option maps onto one of its arguments. Writes the JSON record, Markdown
and HTML reports and the heat map into ``--out``; prints a table per mode and
budget, or the JSON record with ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hoodwink.cli._common import console, parse_eps, run_guarded

__all__ = ["register"]


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``transfer`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("transfer")
    def transfer_cmd(
        source: Annotated[
            str, typer.Option(help="Model the attacks are made on (see `hoodwink models`).")
        ],
        to: Annotated[
            str,
            typer.Option(help="Comma-separated models to transfer to, e.g. "
                              "efficientnet-lite1,efficientnet-lite2."),
        ],
        eps: Annotated[
            str | None,
            typer.Option(help="Comma-separated L∞ budgets, e.g. 2/255,8/255 or 0.1,0.2. "
                              "Default: 0.1,0.2 for MNIST; 2/255,4/255,8/255 for ImageNet."),
        ] = None,
        n: Annotated[
            int, typer.Option(help="Samples: held-out MNIST digits, or photos for ImageNet "
                                   "(at most 7).")
        ] = 500,
        attacks: Annotated[str, typer.Option(help="Comma-separated: fgsm, pgd.")] = "fgsm,pgd",
        targeted: Annotated[
            bool | None,
            typer.Option("--targeted/--untargeted",
                         help="Only targeted, or only untargeted; both when omitted."),
        ] = None,
        target: Annotated[
            str, typer.Option(help="Targeted mode's class: 'random' (per sample), an index "
                                   "or an ImageNet class name.")
        ] = "random",
        steps: Annotated[int, typer.Option(help="PGD steps.")] = 20,
        seed: Annotated[int, typer.Option(help="Seed of targets, noise and PGD starts.")] = 0,
        out: Annotated[
            Path | None,
            typer.Option(help="Folder for transfer.json/.md/.html/.png "
                              "(default ./transfer-SOURCE)."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the JSON record instead of tables.")
        ] = False,
    ) -> None:
        """Measure how often adversarial examples made on SOURCE fool the --to models."""

        def go() -> None:
            from hoodwink.studies.transfer import (
                format_eps,
                transfer_report,
                write_transfer_report,
                zoo_transfer_study,
            )

            budgets = [parse_eps(e) for e in _split(eps)] if eps is not None else None
            with console.status("transfer study…") as st:
                study = zoo_transfer_study(
                    source, _split(to), n=n, eps=budgets, attacks=_split(attacks),
                    targeted=targeted, target=target, steps=steps, seed=seed,
                    progress=lambda s: st.update(s),
                )
                folder = out if out is not None else Path(f"transfer-{study.source}")
                paths = write_transfer_report(study, folder)
            if as_json:
                record = transfer_report(study).full_record()
                # Per-sample arrays stay in the file; stdout gets the figures.
                record.pop("samples", None)
                record["outputs"] = {"record": str(paths.json), "markdown": str(paths.markdown),
                                     "html": str(paths.html),
                                     "heatmap": str(paths.folder / "transfer.png")}
                typer.echo(json.dumps(record, indent=2))
                return
            for mode in study.modes:
                for e in study.eps:
                    table = Table(title=f"{mode} transfer from {study.source}, eps {format_eps(e)}",
                                  title_justify="left")
                    table.add_column("attack")
                    for m in study.models:
                        table.add_column(f"{m}\n(white-box)" if m == study.source else m,
                                         justify="right")
                    for r in study.rows:
                        cells = [study.cell(mode, e, r, m) for m in study.models]
                        table.add_row(r, *[
                            ("–" if c.rate is None else f"{c.rate:.1%}") + f" (n={c.n_eligible})"
                            for c in cells
                        ])
                    console.print(table)
            console.print(f"record: {paths.json}\nreport: {paths.markdown}, {paths.html}\n"
                          f"heat map: {paths.folder / 'transfer.png'}\n"
                          f"{study.time_s:.1f} s", highlight=False)

        run_guarded(go)
