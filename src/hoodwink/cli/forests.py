"""``hoodwink forests``: are non-differentiable models safe from black-box attacks?

A thin shell over :func:`hoodwink.studies.forests.run` and
:func:`hoodwink.studies.forests.report`: every option maps onto one of their
arguments. Writes the JSON record, Markdown and HTML reports and two figures
into ``--out`` (default ``./out/forests/``); prints the verdict and a summary
table, or the JSON record with ``--json`` (without the per-input arrays, which
stay in the file). Progress (per trained model and attacked cell) goes to
stderr.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hoodwink.cli._common import check_output, console, output_dir, run_guarded, state
from hoodwink.cli._study_options import JsonOpt, OutOpt, SeedOpt, split_list

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``forests`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("forests")
    def forests_cmd(
        profile: Annotated[
            str, typer.Option(help="full: the documented record (about 25 min on one core); "
                                   "quick: a few 8x8 digits at 100 queries, for a first look.")
        ] = "full",
        quick: Annotated[
            bool, typer.Option("--quick", help="Same as --profile quick.")
        ] = False,
        datasets: Annotated[
            str | None, typer.Option(help="Comma-separated subset: digits8, mnist, "
                                          "breast-cancer. Default: the profile's.")
        ] = None,
        models: Annotated[
            str | None, typer.Option(help="Comma-separated subset: forest, boosting, svm, "
                                          "knn, logistic, cnn. Default: the profile's.")
        ] = None,
        attacks: Annotated[
            str | None, typer.Option(help="Comma-separated black-box attacks (see `hoodwink "
                                          "attacks`). Default: all.")
        ] = None,
        n: Annotated[
            int | None, typer.Option(help="Inputs attacked per model, instead of the "
                                          "profile's.")
        ] = None,
        seed: SeedOpt = 0,
        out: OutOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Attack random forests, boosted trees, k-NN, SVMs and logistic regressions with
        every black-box attack, and say whether they are safe."""

        def go() -> None:
            check_output(out, "forests")
            from rich.table import Table

            from hoodwink.cli._progress import progress_reporter
            from hoodwink.stats import rate_text
            from hoodwink.studies import forests as study
            from hoodwink.studies.forests.report import MODEL_LABELS, best_cell

            chosen = "quick" if quick else profile
            with progress_reporter(f"forests ({chosen})", quiet=state.quiet) as cb:
                record = study.run(
                    chosen,
                    datasets=split_list(datasets) if datasets is not None else None,
                    models=split_list(models) if models is not None else None,
                    attacks=split_list(attacks) if attacks is not None else None,
                    n=n, seed=seed, progress=cb,
                )
            rendered = study.report(record)
            # The folder is made once there is something to write: a bad option leaves none.
            paths = rendered.write(output_dir(out, "forests"), stem="forests")
            figures = [str(paths.folder / f) for f in rendered.figures]
            if as_json:
                full = rendered.report.full_record()
                # Per-input arrays stay in the file; stdout gets the figures.
                for c in full["cells"]:
                    c.pop("samples", None)
                full["outputs"] = {"record": str(paths.json), "markdown": str(paths.markdown),
                                   "html": str(paths.html), "figures": figures}
                typer.echo(json.dumps(full, indent=2))
                return
            table = Table(title="best black-box attack within the largest budget",
                          title_justify="left")
            for col in ("dataset", "model", "norm", "eps", "queries", "attack", "success"):
                table.add_column(col, justify="right" if col == "success" else "left")
            for d in record["datasets"]:
                for m in (m for m in record["models"] if m["dataset"] == d["name"]):
                    for norm, es in d["eps"].items():
                        for e in es:
                            c = best_cell(record, d["name"], m["model"], norm, float(e))
                            if c is None:
                                continue
                            r = c["rates"][-1]
                            table.add_row(d["name"], MODEL_LABELS[m["model"]], norm, f"{e:g}",
                                          f"{r['budget']:,}", c["attack"],
                                          rate_text(r["k"], r["n"]))
            console.print(table)
            console.print(record["verdict"], highlight=False)
            console.print(f"record: {paths.json}\nreport: {paths.markdown}, {paths.html}\n"
                          f"figures: {', '.join(figures)}\n{record['time_s']:.1f} s",
                          highlight=False)

        run_guarded(go)
