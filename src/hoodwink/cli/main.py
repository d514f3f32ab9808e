"""The ``hoodwink`` command: a thin shell over the library.

Exit codes: 0 done; 2 usage or library error (one clear line; the traceback
only with ``--debug``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Literal

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
    from hoodwink.cli.attack import register as register_attack
    from hoodwink.cli.dream import register as register_dream
    from hoodwink.cli.linear import app as linear_app
    from hoodwink.cli.transfer import register as register_transfer

    app.add_typer(linear_app, name="linear", help="The essay's linear-classifier experiments.")
    register_attack(app)
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


