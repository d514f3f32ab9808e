"""``hoodwink evaluate``: a trustworthy robust-accuracy number, from the shell.

A thin shell over :func:`hoodwink.evaluation.evaluate`: the model and data
options are those of ``hoodwink attack`` (same loaders); every other option
maps onto one argument of ``evaluate``. Writes ``report.json`` and
``report.safetensors`` into ``--report`` (default ``./out/evaluate/``), plus
``report.html`` and ``report.md`` when the renderer is installed; finished work
streams to ``--store`` (default ``<report>/run.sqlite``), so running the same
command again after a crash resumes where it stopped. Prints the robust
accuracy per eps, each stage's contribution and the sanity flags, or a JSON
summary with ``--json``. Exit codes: 0 done, 2 usage or library error, 3 done
but sanity flags were raised.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hoodwink.cli._common import (
    EXIT_FLAGS,
    check_budget,
    check_output,
    console,
    err_console,
    output_dir,
    parse_eps,
    run_guarded,
    state,
)
from hoodwink.cli._study_options import (
    ArchOpt,
    BoundsOpt,
    LevelsOpt,
    MeanOpt,
    StdOpt,
    TrustPickleOpt,
)
from hoodwink.cli.attack import _DATA_HELP, _MODEL_HELP, _data_spec, _load_data, _load_model

if TYPE_CHECKING:
    from hoodwink.evaluation.record import Evaluation

__all__ = ["register"]

#: The files written into ``--report``.
_FILES = ("report.json", "report.safetensors", "report.html", "report.md")


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in tests).
    """
    app.command("evaluate")(evaluate_cmd)


def evaluate_cmd(
    model: Annotated[str, typer.Option(help=_MODEL_HELP)] = "mnist-cnn",
    arch: ArchOpt = None,
    bounds: BoundsOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    levels: LevelsOpt = None,
    data: Annotated[str | None, typer.Option(help=_DATA_HELP)] = None,
    trust_pickle: TrustPickleOpt = False,
    n: Annotated[
        int | None, typer.Option(help="Evaluate the first N samples (default: all of them).")
    ] = None,
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    eps: Annotated[
        str, typer.Option(help="Budget, e.g. 8/255, or a comma grid such as 0.1,0.2,0.3.")
    ] = "8/255",
    attacks: Annotated[
        str, typer.Option(help="standard (minimum-norm fmn, then apgd, apgd-t and square in "
                               "cascade; fmn and pgd for l1), or comma-separated names from "
                               "`hoodwink attacks`.")
    ] = "standard",
    seed: Annotated[int, typer.Option(help="Seed; each unit of work derives its own.")] = 0,
    max_queries: Annotated[
        int, typer.Option(help="Query budget per sample of the black-box attacks.")
    ] = 5000,
    full_budget: Annotated[
        bool, typer.Option("--full-budget", help="Spend every attack's whole budget, as the "
                                                 "reference AutoAttack does, instead of "
                                                 "probing first (see docs/evaluate.md#probes).")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Samples per unit of work (default: all at once). "
                                      "Smaller units lose less work to a crash.")
    ] = None,
    examples: Annotated[
        int, typer.Option(help="Samples whose input and adversarial the report shows.")
    ] = 6,
    report: Annotated[
        Path | None,
        typer.Option(help="Folder for report.json, report.safetensors, report.html and "
                          "report.md (default ./out/evaluate/)."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="SQLite file that keeps finished work, to resume after a crash "
                          "(default <report>/run.sqlite). Another configuration needs another "
                          "file."),
    ] = None,
    no_checks: Annotated[
        bool, typer.Option("--no-checks", help="Skip the sanity checks (flags).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout instead of tables.")
    ] = False,
) -> None:
    """Measure robust accuracy with a cascade of attacks and flag gradient masking."""

    def go() -> None:
        check_output(report, "evaluate", files=_FILES)
        from hoodwink import zoo
        from hoodwink.cli._progress import progress_reporter
        from hoodwink.errors import ConfigError
        from hoodwink.evaluation import evaluate

        texts = [e for e in eps.split(",") if e.strip()]
        budgets = [parse_eps(e) for e in texts]
        if not budgets:
            raise ConfigError(f"--eps needs at least one budget, e.g. 8/255. Got {eps!r}.")
        names: str | list[str] = attacks.strip()
        if str(names).lower() != "standard":
            names = [a.strip() for a in attacks.split(",") if a.strip()]
            if not names:
                raise ConfigError(f"--attacks needs 'standard' or attack names; got {attacks!r}.")
        if report is not None and report.suffix.lower() == ".json":
            raise ConfigError(
                f"--report is a folder (it receives report.json and more); got the file name "
                f"{report}. Give a folder, e.g. --report {report.with_suffix('')}."
            )
        zoo_name = model.strip().lower() if model.strip().lower() in zoo.available() else None
        if zoo_name is not None:
            _data_spec(model, data)  # a missing --data fails before a large model loads
        clf = _load_model(model, arch=arch, bounds=bounds, mean=mean, std=std, levels=levels,
                          trust_pickle=trust_pickle)
        ds = _load_data(_data_spec(model, data), clf, trust_pickle=trust_pickle)
        if n is not None:
            ds = ds.head(n)
        dims = math.prod(int(d) for d in ds.x.shape[1:])
        for e, text in zip(budgets, texts, strict=True):
            check_budget(e, norm=norm, model=clf, dims=dims, text=text)
        folder = output_dir(report, "evaluate")
        db = store if store is not None else folder / "run.sqlite"
        with progress_reporter(f"evaluate {len(ds)} samples", quiet=state.quiet) as cb:
            ev = evaluate(clf, ds.x, ds.y, norm=norm,
                          eps=budgets[0] if len(budgets) == 1 else budgets, attacks=names,
                          seed=seed, batch_size=batch_size, max_queries=max_queries, store=db,
                          **({"probe_queries": None, "probe_targets": None} if full_budget
                             else {}),
                          checks=not no_checks, examples=examples, progress=cb,
                          model_name=zoo_name or model, data_name=ds.source)
        written = ev.save(folder / "report.json")
        rendered = _render(ev, folder)
        raised = [f for f in ev.flags if f["severity"] in ("warning", "error")]
        if as_json:
            typer.echo(json.dumps({
                "summary": ev.totals, "attacks": ev.attacks, "flags": ev.flags,
                "report": str(written), "rendered": [str(p) for p in rendered],
                "store": str(db)}, indent=2))
        else:
            _print(ev)
            console.print(f"report written to {written}"
                          + "".join(f", {p}" for p in rendered) + f"; run store {db}",
                          highlight=False)
        if raised:
            raise typer.Exit(EXIT_FLAGS)

    run_guarded(go)


def _render(ev: Evaluation, folder: Path) -> list[Path]:
    """report.html and report.md through the renderer, when it is installed."""
    try:
        from hoodwink.evaluation import render
    except ImportError:
        err_console.print("note: the report renderer is not installed; wrote report.json only",
                          highlight=False)
        return []
    from hoodwink.reports import atomic_write_text

    out = []
    for name, fn in (("report.html", "to_html"), ("report.md", "to_markdown")):
        make = getattr(render, fn, None)
        if callable(make):
            path = folder / name
            atomic_write_text(path, make(ev))
            out.append(path)
    return out


def _print(ev: Evaluation) -> None:
    """The summary table, each stage's contribution and the flags."""
    from rich.markup import escape
    from rich.table import Table

    t = ev.totals
    table = Table(title=f"{ev.model['name']} on {ev.data['name']}: {t['n']} samples, "
                        f"clean accuracy {t['clean_accuracy']:.2%}")
    for col in (f"eps ({ev.norm})", "robust", "robust accuracy", "95% interval"):
        table.add_column(col, justify="right")
    for r in t["robust"]:
        table.add_row(f"{r['eps']:.6g}", str(r["robust"]), f"{r['robust_accuracy']:.2%}",
                      f"{r['ci95'][0]:.1%} – {r['ci95'][1]:.1%}")
    console.print(table)
    if t.get("median_min_norm") is not None:
        console.print(f"median minimal {ev.norm} norm: {t['median_min_norm']:.4g}",
                      highlight=False)
    stages = Table(title="stages (broke: samples newly broken at that eps)")
    for col in ("attack", "eps", "attacked", "broke", "robust after", "queries", "time"):
        stages.add_column(col, justify="right" if col != "attack" else "left")
    for a in ev.attacks:
        stages.add_row(a["name"], "minimum norm" if a["eps"] is None else f"{a['eps']:.6g}",
                       str(a["attacked"]), str(a["broke"]), str(a["robust_after"]),
                       str(a["queries"]), f"{a['time_s']:.1f} s")
    console.print(stages)
    if not ev.config.get("checks", True):
        console.print("sanity checks: skipped (--no-checks)", highlight=False)
    elif not ev.flags:
        console.print("sanity checks: no flags raised", highlight=False)
    for f in ev.flags:
        colour = "red" if f["severity"] == "error" else "yellow"
        console.print(f"[{colour}]{f['severity']} {escape(f['code'])}:[/] "
                      f"{escape(str(f['message']))} (see {escape(str(f['doc']))})")

