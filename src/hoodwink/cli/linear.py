"""``hoodwink linear ...``: the essay's linear-classifier experiments from the shell.

A thin shell over :mod:`hoodwink.studies.linear.experiments`: every option maps
onto one argument of the study's ``run``; ``report(record).write`` writes the
report folder (``report.json``, PNG figures, ``report.md`` and ``report.html``)
into ``--out``, and the command prints a short summary read from the record (or
the JSON record with ``--json``).

Exit codes: 0 done; 2 usage or library error (one line); 3 ``train`` finished
but a sanity check fired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from hoodwink.cli._common import (
    EXIT_FLAGS,
    check_output,
    console,
    output_dir,
    parse_eps,
    run_guarded,
    state,
)
from hoodwink.cli._progress import progress_reporter
from hoodwink.cli._study_options import OutOpt
from hoodwink.errors import ConfigError

if TYPE_CHECKING:  # the studies load only when a command runs
    from hoodwink.progress import ProgressCallback
    from hoodwink.reports import ReportPaths
    from hoodwink.studies._record import Rendered

__all__ = ["app"]

app = typer.Typer(
    name="linear",
    help="The essay's experiments on linear classifiers over raw pixels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Where ``linear train`` writes its model by default (the output rule: ./out/linear-train/).
_DEFAULT_MODEL = Path("out") / "linear-train" / "model.safetensors"

DataOpt = Annotated[
    str, typer.Option("--data", help="'mnist' (bundled), 'synthetic', a folder of class "
                                     "sub-folders, or an .npz with arrays x and y.")
]
SizeOpt = Annotated[
    str | None, typer.Option("--size", help="Resize images to HxW, e.g. 64x64.")
]
ChannelsOpt = Annotated[
    int | None, typer.Option("--channels", help="Convert images to 1 (grey) or 3 (RGB) channels.")
]
ValOpt = Annotated[
    float, typer.Option("--val-fraction", help="Share of each class held out (user data).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the split and the training.")]
KindOpt = Annotated[
    str, typer.Option("--kind", help="softmax (cross-entropy) or svm (multi-class hinge).")
]
InitOpt = Annotated[float, typer.Option("--init-std", help="Std of the Gaussian weight init.")]
LrOpt = Annotated[float, typer.Option("--lr", help="SGD learning rate.")]
WdOpt = Annotated[
    float, typer.Option("--weight-decay", help="Coefficient of 0.5*wd*||W||^2 in the loss.")
]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Passes over the training set.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Minibatch size.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON record instead.")]


def _kind(text: str) -> Literal["softmax", "svm"]:
    if text == "softmax":
        return "softmax"
    if text == "svm":
        return "svm"
    raise ConfigError(f"The '--kind' option must be 'softmax' or 'svm'. Got {text!r}.")


def _floats(text: str, name: str) -> list[float]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"The '{name}' option needs a comma-separated list of numbers.")
    return [parse_eps(p) for p in parts]


def _data(data: str, size: str | None, channels: int | None, val_fraction: float,
          seed: int) -> Any:
    from hoodwink._validation import Interval, check
    from hoodwink.studies.linear import load_data, parse_size

    # Checked before any data loads: the split and the training seed torch generators,
    # which take exactly 0..2**64 - 1.
    seed = check("hoodwink linear", "seed", seed, Interval(int, 0, 2**64 - 1),
                 hint="Give --seed between 0 and 18446744073709551615.")
    return load_data(data, size=parse_size(size), channels=channels,
                     val_fraction=val_fraction, seed=seed)


def _print_json(path: Path) -> None:
    typer.echo(path.read_text(encoding="utf-8"))


def _run_study(
    label: str, run: Callable[[ProgressCallback], dict[str, Any]],
    report: Callable[[Mapping[str, Any]], Rendered], out: Path | None, command: str,
    json_out: bool,
) -> tuple[dict[str, Any], ReportPaths] | None:
    """``run(progress)`` under a progress bar, then write ``report(record)`` into the output folder.

    The folder (``--out`` or ``./out/COMMAND/``) is made only after the run, so a bad
    option leaves none. Returns the record and the written paths; None once ``--json``
    has printed the record, which is all the command then shows.
    """
    with progress_reporter(label, quiet=state.quiet) as update:
        rec = run(update)
    paths = report(rec).write(output_dir(out, command))
    if json_out:
        _print_json(paths.json)
        return None
    return rec, paths


def _written(paths: Any) -> None:
    console.print(f"report: {paths.html}  (record: {paths.json})")


@app.command("train")
def train_cmd(
    data: DataOpt = "mnist",
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    val_fraction: ValOpt = 0.2,
    kind: KindOpt = "softmax",
    init_std: InitOpt = 1e-3,
    lr: LrOpt = 0.05,
    weight_decay: WdOpt = 1e-3,
    epochs: EpochsOpt = 30,
    batch_size: BatchOpt = 128,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum.")] = 0.9,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a softmax classifier (or linear SVM) on raw pixels, with sanity checks.

    Exit codes: 0 trained with every sanity check passing; 2 usage or library
    error; 3 training finished (or stopped because the loss exploded) but a
    sanity check fired: the flags are printed and recorded in report.json.
    """
    flagged: list[bool] = [False]

    def go() -> None:
        check_output(out, "linear-train", files=("model.safetensors",))
        loss_kind = _kind(kind)  # every option is checked before a folder is made
        import warnings

        from hoodwink.studies.linear.experiments import train

        d = _data(data, size, channels, val_fraction, seed)
        folder = output_dir(out, "linear-train")
        with progress_reporter("training", quiet=state.quiet) as update, \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flags are printed below, once
            rec = train.run(
                d, kind=loss_kind, init_std=init_std, lr=lr, weight_decay=weight_decay,
                epochs=epochs, batch_size=batch_size, momentum=momentum, seed=seed,
                model_file=folder / "model.safetensors", progress=update,
            )
        paths = train.report(rec).write(folder)
        tr = rec["training"]
        flagged[0] = bool(tr["flags"])
        if json_out:
            _print_json(paths.json)
            return
        console.print(
            f"initial loss {_num(tr['initial_loss'])} (expected "
            f"{tr['expected_initial_loss']:.3g}). {train.summary(rec)}", highlight=False,
        )
        for f in tr["flags"]:
            console.print(f"[bold yellow]{f['warning']}:[/] {f['message']}", highlight=False)
        console.print(f"model: {folder / rec['model_file']}")
        _written(paths)

    run_guarded(go)
    if flagged[0]:
        raise typer.Exit(EXIT_FLAGS)


@app.command("templates")
def templates_cmd(
    model: Annotated[Path, typer.Option("--model", help="A model.safetensors from "
                                                        "'hoodwink linear train'.")
                     ] = _DEFAULT_MODEL,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Draw every class's weights as an image (a template) in a grid PNG."""

    def go() -> None:
        check_output(out, "linear-templates")
        from hoodwink.studies.linear.experiments import templates

        done = _run_study(
            "templates", lambda update: templates.run(model, source=str(model), progress=update),
            templates.report, out, "linear-templates", json_out,
        )
        if done is None:
            return
        _, paths = done
        console.print(f"templates: {paths.folder / 'templates.png'}")
        _written(paths)

    run_guarded(go)


@app.command("fool")
def fool_cmd(
    model: Annotated[Path, typer.Option("--model", help="A model.safetensors from "
                                                        "'hoodwink linear train'.")
                     ] = _DEFAULT_MODEL,
    data: DataOpt = "mnist",
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    val_fraction: ValOpt = 0.2,
    seed: SeedOpt = 0,
    index: Annotated[int, typer.Option("--index", help="Validation image to fool.")] = 0,
    target: Annotated[int | None, typer.Option("--target", help="Target class (default: "
                                                                "the next class).")] = None,
    noise_seed: Annotated[int, typer.Option("--noise-seed", help="Seed of the noise image.")
                          ] = 0,
    confidence: Annotated[float, typer.Option("--confidence", help="Target probability the "
                                                                   "strip shows.")] = 0.9,
    n_compare: Annotated[int, typer.Option("--n-compare", help="Images in the comparison "
                                                               "with FGSM and PGD.")] = 100,
    eps_linf: Annotated[str, typer.Option("--eps-linf", help="L∞ budgets, comma-separated "
                                                             "(fractions such as 8/255 parse)."
                                          )] = "0.01,0.02,0.05,0.1,0.2",
    eps_l2: Annotated[str, typer.Option("--eps-l2", help="L2 budgets, comma-separated.")
                      ] = "0.25,0.5,1,2,4",
    pgd_steps: Annotated[int, typer.Option("--pgd-steps", help="PGD steps.")] = 20,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fool the model with its own template (x + α·w_t), side by side with FGSM and PGD."""

    def go() -> None:
        check_output(out, "linear-fool")
        from hoodwink.studies.linear import LinearModel
        from hoodwink.studies.linear.experiments import fool

        m = LinearModel.load(model)
        d = _data(data, size, channels, val_fraction, seed)
        done = _run_study(
            "fooling", lambda update: fool.run(
                m, d, index=index, target=target, noise_seed=noise_seed, confidence=confidence,
                n_compare=n_compare, eps_linf=_floats(eps_linf, "--eps-linf"),
                eps_l2=_floats(eps_l2, "--eps-l2"), pgd_steps=pgd_steps, progress=update,
            ), fool.report, out, "linear-fool", json_out,
        )
        if done is None:
            return
        rec, paths = done
        table = Table("start", "direction", "α min (closed form)", "α min (measured)",
                      "‖α d‖∞", "‖α d‖₂")
        for e in rec["examples"]:
            table.add_row(e["start"], e["direction"], _g(e["alpha_min_closed_form"]),
                          _g(e["alpha_min_measured"]), _g(e["alpha_min_linf"]),
                          _g(e["alpha_min_l2"]))
        console.print(table)
        _written(paths)

    run_guarded(go)


def _sizes(text: str) -> list[int]:
    """``--sizes 7,14,28`` as sides >= 1 (at least two), refused before any work."""
    try:
        sides = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sides = []
    if len(sides) < 2 or min(sides) < 1:
        raise ConfigError(f"The '--sizes' option must list at least two square sizes >= 1, "
                          f"e.g. 7,14,28. Got {text!r}.")
    return sides


def _diverged(rows: list[tuple[str, Mapping[str, Any]]]) -> None:
    """One line per model whose training diverged: its row describes a broken model."""
    for label, r in rows:
        if "exploding_loss" in r["flags"]:
            console.print(f"[bold yellow]ExplodingLossWarning:[/] the model for {label} "
                          f"diverged at lr={r['lr']:g}; its row describes the weights before "
                          "the explosion. Lower --lr.", highlight=False)


def _g(v: Any) -> str:
    return "never" if v is None or v == float("inf") else f"{v:.4g}"


def _num(v: Any, digits: int = 4) -> str:
    return "–" if v is None else f"{v:.{digits}g}"


@app.command("regularization")
def regularization_cmd(
    data: DataOpt = "mnist",
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    val_fraction: ValOpt = 0.2,
    weight_decays: Annotated[str, typer.Option("--weight-decays", help="Comma-separated, "
                                                                       "several orders of "
                                                                       "magnitude.")
                             ] = "1e-6,1e-5,1e-4,1e-3,1e-2,1e-1,1",
    kind: KindOpt = "softmax",
    init_std: InitOpt = 1e-3,
    lr: LrOpt = 0.05,
    epochs: EpochsOpt = 30,
    batch_size: BatchOpt = 128,
    eps: Annotated[str, typer.Option("--eps", help="L∞ budget of the fooling-confidence "
                                                   "measure.")] = "0.1",
    seed: SeedOpt = 0,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sweep weight decay: accuracy, template smoothness and how easily each model is fooled."""

    def go() -> None:
        check_output(out, "linear-regularization")
        from hoodwink.studies.linear.experiments import regularization

        d = _data(data, size, channels, val_fraction, seed)
        decays = _floats(weight_decays, "--weight-decays")
        done = _run_study(
            "models", lambda update: regularization.run(
                d, decays, kind=_kind(kind), init_std=init_std, lr=lr, epochs=epochs,
                batch_size=batch_size, seed=seed, eps=parse_eps(eps), progress=update,
            ), regularization.report, out, "linear-regularization", json_out,
        )
        if done is None:
            return
        rec, paths = done
        table = Table("weight decay", "val acc", "roughness", "mean L2 dist", "mean L∞ dist",
                      "wrong-class conf.")
        for r in rec["rows"]:
            table.add_row(f"{r['weight_decay']:g}", f"{r['val_accuracy']:.4f}",
                          f"{r['roughness']:.3f}", _num(r["mean_l2_distance"]),
                          _num(r["mean_linf_distance"]), f"{r['fooling_confidence']:.3f}")
        console.print(table)
        _diverged([(f"weight decay {r['weight_decay']:g}", r) for r in rec["rows"]])
        for f in rec["findings"]:
            mark = "[green]holds[/]" if f["holds"] else "[red]does not hold[/]"
            console.print(f"{f['claim']}: {mark} ({_g(f['low'])} -> {_g(f['high'])})")
        console.print(f"{rec['time_s']:.1f} s")
        _written(paths)

    run_guarded(go)


@app.command("dimension")
def dimension_cmd(
    data: DataOpt = "mnist",
    channels: ChannelsOpt = None,
    val_fraction: ValOpt = 0.2,
    sizes: Annotated[str, typer.Option("--sizes", help="Comma-separated square sizes, e.g. "
                                                       "7,14,28,56.")] = "7,14,28,56",
    eps: Annotated[str, typer.Option("--eps", help="L∞ perturbation size.")] = "0.01",
    weight_decay: WdOpt = 1e-3,
    kind: KindOpt = "softmax",
    lr: LrOpt = 0.05,
    epochs: EpochsOpt = 30,
    scale_lr: Annotated[bool, typer.Option("--scale-lr/--no-scale-lr",
                                           help="Divide lr by the growth of n.")] = False,
    seed: SeedOpt = 0,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train at growing input size and plot the score change ε·‖w‖₁ against n."""

    def go() -> None:
        check_output(out, "linear-dimension")
        from hoodwink.studies.linear.experiments import dimension

        sides = _sizes(sizes)
        d = _data(data, None, channels, val_fraction, seed)
        done = _run_study(
            "models", lambda update: dimension.run(
                d, [(s, s) for s in sides], eps=parse_eps(eps), weight_decay=weight_decay,
                kind=_kind(kind), lr=lr, epochs=epochs, seed=seed, scale_lr=scale_lr,
                progress=update,
            ), dimension.report, out, "linear-dimension", json_out,
        )
        if done is None:
            return
        rec, paths = done
        table = Table("size", "n", "val acc", "mean |w|", "ε‖w‖₁", "mean min L∞ dist")
        for r in rec["rows"]:
            table.add_row("x".join(map(str, r["size"])), str(r["n"]), f"{r['val_accuracy']:.4f}",
                          _num(r["mean_abs_weight"], 3), _num(r["activation_change"]),
                          _num(r["mean_linf_distance"]))
        console.print(table)
        _diverged([("x".join(map(str, r["size"])), r) for r in rec["rows"]])
        _written(paths)

    run_guarded(go)


@app.command("toy")
def toy_cmd(
    alpha: Annotated[float, typer.Option("--alpha", help="Step along w.")] = 0.5,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The essay's toy logistic regression: score -3 (P = 0.0474) becomes 2 (P = 0.8808)."""

    def go() -> None:
        check_output(out, "linear-toy")
        from hoodwink.studies.linear.experiments import toy

        done = _run_study("toy", lambda update: toy.run(alpha, progress=update), toy.report,
                          out, "linear-toy", json_out)
        if done is None:
            return
        r, paths = done
        console.print(f"x      = [{', '.join(f'{v:g}' for v in r['x'])}]")
        console.print(f"w      = [{', '.join(f'{v:g}' for v in r['w'])}]")
        console.print(f"score  = w·x = {r['score']:g}   P(class 1) = {r['probability']:.4f}")
        console.print(f"x_adv  = x + {r['alpha']:g}·w = "
                      f"[{', '.join(f'{v:g}' for v in r['x_adv'])}]")
        console.print(f"score  = {r['score_adv']:g}   P(class 1) = {r['probability_adv']:.4f}")
        _written(paths)

    run_guarded(go)
