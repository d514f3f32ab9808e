"""``hoodwink dream`` and ``hoodwink defend background``: fooling images from noise.

A thin shell over the studies :mod:`hoodwink.studies.dream` and
:mod:`hoodwink.studies.background` (``run`` then ``report``): every option maps
onto one of their arguments. Outputs go into ``--out``, by default
``./out/dream/`` and ``./out/defend-background/``; ``--json`` prints the record
instead of the tables. Progress goes to stderr (nothing with ``--quiet``).
"""

from __future__ import annotations

import json
from pathlib import Path
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
    """Add ``dream`` and the ``defend`` group (with ``background``) to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """

    @app.command("dream")
    def dream_cmd(
        target: Annotated[
            list[str],
            typer.Option(help="Target class: name or index. Repeat it, or separate by commas: "
                              "--target 'king penguin,goldfish,school bus'."),
        ],
        model: Annotated[str, typer.Option(help="Model name (see `hoodwink models`).")]
        = "efficientnet-lite0",
        start: Annotated[
            Path | None, typer.Option(help="Start from this image instead of noise.")
        ] = None,
        confidence: Annotated[
            float, typer.Option(help="Stop once the target has this probability, in (0, 1).")
        ] = 0.996,
        steps: Annotated[int, typer.Option(help="Most gradient steps per image.")] = 200,
        stepsize: Annotated[str, typer.Option(help="Step size, e.g. 1/255.")] = "1/255",
        norm: Annotated[str, typer.Option(help="linf (signed gradient) or l2.")] = "linf",
        smoothness: Annotated[
            float, typer.Option(help="Total-variation pull relative to the class gradient "
                                     "(0: off; try 0.3 to 1).")
        ] = 0.0,
        blur: Annotated[
            float, typer.Option(help="Gaussian blur sigma in pixels every --blur-every steps.")
        ] = 0.0,
        blur_every: Annotated[int, typer.Option(help="Steps between blurs.")] = 4,
        seed: SeedOpt = 0,
        out: OutOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Grow images from noise that MODEL classifies as each --target with high confidence."""

        def go() -> None:
            check_output(out, "dream")
            from rich.table import Table

            from hoodwink.cli._progress import progress_reporter
            from hoodwink.studies import dream as study

            with progress_reporter(f"dreaming on {model}", quiet=state.quiet) as cb:
                record = study.run(model, split_list(target), start=start,
                                   confidence=confidence, steps=steps,
                                   stepsize=parse_eps(stepsize), norm=norm,  # type: ignore[arg-type]
                                   smoothness=smoothness, blur=blur, blur_every=blur_every,
                                   seed=seed, progress=cb)
            rendered = study.report(record)
            folder = output_dir(out, "dream")
            paths = rendered.write(folder, stem="dream")
            full = rendered.report.full_record()
            if as_json:
                # The PNGs are in the folder (and base64 in the file); stdout gets the rest.
                for e in full["images"]:
                    e.pop("png", None)
                typer.echo(json.dumps(full, indent=2))
                return
            table = Table(title=f"fooling images for {model} (confidence read back from PNG)")
            for col in ("class", "confidence", f"≥ {confidence:g}", "steps", "file"):
                table.add_column(col)
            for e in full["images"]:
                table.add_row(e["name"], f"{e['confidence_png']:.4f}",
                              "yes" if e["success_png"] else "no", str(e["steps_used"]),
                              e["file"])
            console.print(table)
            s = full["summary"]
            console.print(f"{sum(e['success_png'] for e in full['images'])}/{s['n']} "
                          f"reached {confidence:.1%} in {s['time_s']:.1f} s")
            console.print(f"gallery: {folder / full['gallery']}")
            console.print(f"report: {paths.json}")

        run_guarded(go)

    defend = typer.Typer(help="Defences, measured.", no_args_is_help=True)

    @defend.command("background")
    def background_cmd(
        rounds: Annotated[int, typer.Option(help="Retraining rounds after round 0.")] = 5,
        fooling_per_round: Annotated[
            int, typer.Option(help="Fooling images grown per round (cycling the 10 digits).")
        ] = 100,
        epochs: Annotated[int, typer.Option(help="Epochs of the round-0 training.")] = 3,
        epochs_per_round: Annotated[
            int, typer.Option(help="Fine-tuning epochs per round.")
        ] = 2,
        retrain: Annotated[str, typer.Option(help="finetune or scratch.")] = "finetune",
        steps: Annotated[int, typer.Option(help="Step budget per fooling image.")] = 1000,
        stepsize: Annotated[str, typer.Option(help="Dream step size, e.g. 2/255.")] = "2/255",
        confidence: Annotated[
            float, typer.Option(help="Fooling images stop at this confidence.")
        ] = 0.996,
        smoothness: Annotated[float, typer.Option(help="Dream smoothness.")] = 0.0,
        train_size: Annotated[
            int | None, typer.Option(help="Use only this many training digits.")
        ] = None,
        test_size: Annotated[
            int | None, typer.Option(help="Use only this many test digits.")
        ] = None,
        seed: SeedOpt = 0,
        out: OutOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Add fooling images to an 11th 'background' class and retrain, round after round."""

        def go() -> None:
            check_output(out, "defend-background")
            from rich.table import Table

            from hoodwink.cli._progress import progress_reporter
            from hoodwink.studies import background
            from hoodwink.studies.background import BackgroundStudy

            with progress_reporter("background-class study", quiet=state.quiet) as cb:
                record = background.run(
                    rounds=rounds, fooling_per_round=fooling_per_round, epochs=epochs,
                    epochs_per_round=epochs_per_round, retrain=retrain,
                    steps=steps, stepsize=parse_eps(stepsize), confidence=confidence,
                    smoothness=smoothness, train_size=train_size, test_size=test_size,
                    seed=seed, progress=cb,
                )
            paths = background.report(record).write(output_dir(out, "defend-background"),
                                                    stem="background")
            if as_json:
                typer.echo(paths.json.read_text(encoding="utf-8"))
                return
            study = BackgroundStudy.from_dict(record)
            thr = study.config["confidence"]
            table = Table(title="background-class defence on MnistCNN (11 classes)")
            for col in ("round", "bg imgs", "clean acc", "prev. rejected", "mean conf",
                        f"≥ {thr:g}", "≥ 0.99", "steps mean", "steps median"):
                table.add_column(col, justify="right")
            for r in study.rounds:
                table.add_row(
                    str(r.round), str(r.background_size), f"{r.clean_accuracy:.3f}",
                    "–" if r.previous_rejected is None else f"{r.previous_rejected:.2f}",
                    f"{r.confidence_mean:.4f}", f"{r.reached_threshold:.2f}",
                    f"{r.reached_099:.2f}", f"{r.steps_mean:.1f}", f"{r.steps_median:g}",
                )
            console.print(table)
            console.print(study.verdict, highlight=False)
            console.print(f"report: {paths.json} ({study.time_s:.0f} s)")

        run_guarded(go)

    app.add_typer(defend, name="defend", help="Defences, measured: `hoodwink defend background`.")
