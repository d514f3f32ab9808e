"""The ``hoodwink`` command: a thin shell over the library.

Exit codes: 0 done; 2 usage or library error (one clear line; the traceback
only with ``--debug``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from hoodwink.cli._common import (
    console,
    parse_eps,
    resolve_target,
    run_guarded,
    state,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="hoodwink",
    help="Systematically fool classifiers and measure how easily they are fooled.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from hoodwink import __version__

        typer.echo(f"hoodwink {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or progress lines.")
    ] = False,
    threads: Annotated[
        int, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")
    ] = 1,
) -> None:
    import torch

    state.debug = debug
    state.quiet = quiet
    if threads < 1:
        raise typer.BadParameter(f"--threads must be >= 1. Got {threads}.")
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command("models")
def models_cmd() -> None:
    """List the pretrained models that load offline."""
    from hoodwink import zoo

    table = Table("name", "description")
    for k, v in zoo.available().items():
        table.add_row(k, v)
    console.print(table)


@app.command("attack")
def attack_cmd(
    model: Annotated[str, typer.Option(help="Model name (see `hoodwink models`).")] = "mnist-cnn",
    attack: Annotated[str, typer.Option(help="fgsm or pgd.")] = "pgd",
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    eps: Annotated[str, typer.Option(help="Budget, e.g. 0.1 or 8/255.")] = "0.1",
    target: Annotated[
        str | None, typer.Option(help="Target class (index or name); untargeted if omitted.")
    ] = None,
    n: Annotated[int, typer.Option(help="Number of held-out samples to attack.")] = 500,
    steps: Annotated[int, typer.Option(help="PGD steps.")] = 40,
    stepsize: Annotated[str | None, typer.Option(help="PGD step size (default 2.5·eps/steps).")]
    = None,
    restarts: Annotated[int, typer.Option(help="PGD restarts.")] = 1,
    loss: Annotated[str, typer.Option(help="ce or margin.")] = "ce",
    seed: Annotated[int, typer.Option(help="Seed of the attack's random generator.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the JSON record here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """Attack a bundled model on its held-out data and summarise the result."""

    def go() -> None:
        import hoodwink
        from hoodwink import zoo
        from hoodwink.data.mnist import load_mnist

        clf = zoo.load(model)
        if not model.startswith("mnist"):
            raise hoodwink.errors.ConfigError(
                f"`hoodwink attack` evaluates on bundled held-out data, which exists for the "
                f"MNIST models; got {model!r}. Use `hoodwink fool IMAGE --model {model}`."
            )
        if n < 1:
            raise hoodwink.errors.ConfigError(f"--n must be >= 1. Got {n}.")
        x, y = load_mnist("test")
        x, y = x[:n], y[:n]
        e = parse_eps(eps)
        a: hoodwink.Attack
        if attack.lower() == "fgsm":
            a = hoodwink.FGSM(norm=norm, loss=loss)  # type: ignore[arg-type]
        elif attack.lower() == "pgd":
            a = hoodwink.PGD(norm=norm, steps=steps, restarts=restarts, loss=loss,  # type: ignore[arg-type]
                             stepsize=parse_eps(stepsize) if stepsize else None, seed=seed)
        else:
            raise hoodwink.errors.ConfigError(
                f"Unknown attack {attack!r}; choose fgsm or pgd."
            )
        t = resolve_target(clf, target) if target is not None else None
        if t is not None:
            keep = y != t
            x, y = x[keep], y[keep]
        with console.status(f"running {a!r} on {len(x)} samples"):
            res = a(clf, x, y, target=t, eps=e)
        rec = res.to_dict()
        rec["model"] = model
        if out is not None:
            from hoodwink.reports import atomic_write_text

            atomic_write_text(out, json.dumps(rec, indent=2) + "\n")
        if as_json:
            typer.echo(json.dumps(rec["summary"] | {"model": model}, indent=2))
            return
        _summary_table(rec["summary"], model)
        if out is not None:
            console.print(f"record written to {out}")

    run_guarded(go)


def _summary_table(s: dict[str, Any], model: str) -> None:
    table = Table(title=f"{s['attack']} on {model}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    eps = s["eps"]
    rows: list[tuple[str, str]] = [
        ("samples", str(s["n"])),
        ("eps", f"{eps:.6g} (= {eps * 255:.3g}/255)" if eps is not None else "–"),
        ("targeted", str(s["targeted"])),
    ]
    if "clean_accuracy" in s:
        rows.append(("clean accuracy", f"{s['clean_accuracy']:.2%}"))
        rows.append(("robust accuracy", f"{s['robust_accuracy']:.2%}"))
    sr = s["success_rate"]
    rows.append(("success rate", f"{sr:.2%}" if sr is not None else "–"))
    if "median_norm_successful" in s:
        rows.append(("median ‖δ‖ (successful)", f"{s['median_norm_successful']:.4g}"))
    rows.append(("mean queries / sample", f"{s['queries_mean']:.1f}"))
    rows.append(("time", f"{s['time_s']:.2f} s"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@app.command("fool")
def fool_cmd(
    image: Annotated[Path, typer.Argument(help="The image to fool (PNG, JPEG, ...).")],
    target: Annotated[
        str | None, typer.Option(help="Target class: name (e.g. goldfish) or index.")
    ] = None,
    model: Annotated[str, typer.Option(help="Model name (see `hoodwink models`).")]
    = "efficientnet-lite0",
    eps: Annotated[str, typer.Option(help="L∞ budget, e.g. 2/255, or 'auto'.")] = "2/255",
    steps: Annotated[int, typer.Option(help="PGD steps per budget.")] = 40,
    out: Annotated[
        Path | None, typer.Option(help="Adversarial PNG path (default <stem>-adv.png).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON record.")] = False,
) -> None:
    """Fool a pretrained classifier on IMAGE with an invisible change; write the PNG."""

    def go() -> None:
        from hoodwink import zoo
        from hoodwink.studies.fool import fool_image

        clf = zoo.load(model)
        e: float | str = "auto" if eps.strip().lower() == "auto" else parse_eps(eps)
        t = resolve_target(clf, target) if target is not None else None
        mode: Literal["RGB", "L"] = "L" if model.startswith("mnist") else "RGB"
        with console.status("fooling…") as st:
            res = fool_image(clf, image, model_name=model, target=t, eps=e,  # type: ignore[arg-type]
                             out=out, steps=steps, seed=seed, mode=mode,
                             progress=lambda s: st.update(s))
        if as_json:
            typer.echo(json.dumps(res.to_dict(), indent=2))
            return
        table = Table(title=f"{model} on {image.name} ({res.size[0]}×{res.size[1]})")
        table.add_column("rank")
        table.add_column("before")
        table.add_column("after (re-read from the PNG)")
        for i, (b, a) in enumerate(zip(res.before, res.after, strict=True)):
            table.add_row(str(i + 1), f"{b.name} {b.probability:.3f}",
                          f"{a.name} {a.probability:.3f}")
        console.print(table)
        how = " (found by --eps auto)" if res.eps_auto else ""
        console.print(
            f"eps = {res.eps * 255:g}/255{how}; max change per pixel on disk: "
            f"{res.max_change_255}/255; {res.time_s:.1f} s"
        )
        for k, v in res.outputs.items():
            console.print(f"{k}: {v}")

    run_guarded(go)


def _mount_subapps() -> None:
    from hoodwink.cli.dream import register as register_dream
    from hoodwink.cli.linear import app as linear_app
    from hoodwink.cli.transfer import register as register_transfer

    app.add_typer(linear_app, name="linear", help="The essay's linear-classifier experiments.")
    register_dream(app)
    register_transfer(app)


_mount_subapps()


def main() -> None:
    """Entry point of the ``hoodwink`` console script."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code
        # click reports usage errors with exit code 2 already.
        raise SystemExit(code) from None


