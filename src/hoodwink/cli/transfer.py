"""``hoodwink transfer``: the transfer matrix between pretrained zoo models.

A thin shell over :func:`hoodwink.studies.transfer.run` and
:func:`hoodwink.studies.transfer.report`: every option maps onto one of their
arguments. Writes the JSON record, Markdown and HTML reports and the heat map
into ``--out`` (default ``./out/transfer/``); prints a table per mode and
budget, or the JSON record with ``--json``. Progress (per attack, mode, budget
and photo) goes to stderr.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hoodwink.cli._common import (
    check_output,
    console,
    output_dir,
    parse_eps,
    run_guarded,
    state,
)
from hoodwink.cli._study_options import JsonOpt, OutOpt, SeedOpt, split_list

__all__ = ["register"]


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
        seed: SeedOpt = 0,
        out: OutOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Measure how often adversarial examples made on SOURCE fool the --to models."""

        def go() -> None:
            check_output(out, "transfer")
            from rich.table import Table

            from hoodwink.cli._progress import progress_reporter
            from hoodwink.studies import transfer as study
            from hoodwink.studies.transfer import FIGURE, TransferStudy, format_eps

            budgets = [parse_eps(e) for e in split_list(eps)] if eps is not None else None
            with progress_reporter(f"transfer from {source}", quiet=state.quiet) as cb:
                record = study.run(
                    source, split_list(to), n=n, eps=budgets, attacks=split_list(attacks),
                    targeted=targeted, target=target, steps=steps, seed=seed, progress=cb,
                )
            rendered = study.report(record)
            # The folder is made once there is something to write: a bad option leaves none.
            paths = rendered.write(output_dir(out, "transfer"), stem="transfer")
            heatmap = paths.folder / FIGURE
            if as_json:
                full = rendered.report.full_record()
                # Per-sample arrays stay in the file; stdout gets the figures.
                full.pop("samples", None)
                full["outputs"] = {"record": str(paths.json), "markdown": str(paths.markdown),
                                   "html": str(paths.html), "heatmap": str(heatmap)}
                typer.echo(json.dumps(full, indent=2))
                return
            s = TransferStudy.from_dict(record)
            for mode in s.modes:
                for e in s.eps:
                    table = Table(title=f"{mode} transfer from {s.source}, eps {format_eps(e)}",
                                  title_justify="left")
                    table.add_column("attack")
                    for m in s.models:
                        table.add_column(f"{m}\n(white-box)" if m == s.source else m,
                                         justify="right")
                    for r in s.rows:
                        cells = [s.cell(mode, e, r, m) for m in s.models]
                        table.add_row(r, *[
                            ("–" if c.rate is None else f"{c.rate:.1%}") + f" (n={c.n_eligible})"
                            for c in cells
                        ])
                    console.print(table)
            console.print(f"record: {paths.json}\nreport: {paths.markdown}, {paths.html}\n"
                          f"heat map: {heatmap}\n{s.time_s:.1f} s", highlight=False)

        run_guarded(go)
