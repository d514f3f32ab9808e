"""The ``hoodwink`` command: a thin shell over the library.

Exit codes: 0 done; 2 usage or library error (one clear line; the traceback
only with ``--debug``).

Start-up stays cheap: this module and the command modules it mounts import
neither torch nor numpy at the top level (each command imports what it needs
when it runs), so ``hoodwink --version`` and ``--help`` return in a fraction of a
second; tests/test_startup.py checks that torch is not loaded.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from hoodwink.cli._common import (
    DEFAULT_OUT_ROOT,
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
    import logging

    state.debug = debug
    state.quiet = quiet
    if threads < 1:
        raise typer.BadParameter(f"--threads must be >= 1. Got {threads}.")
    _set_threads(threads)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def _set_threads(threads: int) -> None:
    """Give torch ``threads`` CPU threads without importing it here.

    The root callback runs before every command, ``hoodwink CMD --help`` included,
    so it must not pay for importing torch. torch reads these variables when it is
    first imported; if it already is (tests calling the app in-process), it is told
    directly.
    """
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), or None where unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


#: When this module was imported: the fallback start of the clock for start-up time.
_IMPORTED_AT = time.perf_counter()


@app.command("models")
def models_cmd() -> None:
    """List the pretrained models that load offline."""
    from rich.table import Table

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
        Path | None,
        typer.Option(help="Adversarial PNG path (default ./out/fool/<stem>-adv.png); the "
                          "triptych and the JSON record go beside it."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON record.")] = False,
) -> None:
    """Fool a pretrained classifier on IMAGE with an invisible change; write the PNG."""
    started = time.perf_counter()
    age = _process_age_s()
    # The clock starts at the process's start (or, where unknown, this module's import).
    clock_start = started - age if age is not None else _IMPORTED_AT

    def go() -> None:
        import json

        from hoodwink import zoo
        from hoodwink.cli._progress import progress_reporter
        from hoodwink.studies.fool import fool_image

        t_load = time.perf_counter()
        startup = t_load - clock_start  # interpreter, CLI and library imports (torch)
        clf = zoo.load(model)
        model_load = time.perf_counter() - t_load
        e: float | str = "auto" if eps.strip().lower() == "auto" else parse_eps(eps)
        t = resolve_target(clf, target) if target is not None else None
        mode: Literal["RGB", "L"] = "L" if model.startswith("mnist") else "RGB"
        # The output rule of every command (hoodwink.cli._common.output_file): --out, else
        # ./out/fool/. The folders are made only once the attack succeeded, so that a
        # failed run leaves nothing behind.
        path = out if out is not None else DEFAULT_OUT_ROOT / "fool" / f"{image.stem}-adv.png"
        with progress_reporter(f"fooling {model} on {image.name}", quiet=state.quiet) as report:
            res = fool_image(clf, image, model_name=model, target=t, eps=e,  # type: ignore[arg-type]
                             out=path, steps=steps, seed=seed, mode=mode, progress=report,
                             timings={"startup": startup, "model_load": model_load},
                             clock_start=clock_start, create_folders=True)
        if as_json:
            typer.echo(json.dumps(res.to_dict(), indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{model} on {image.name} ({res.size[0]}×{res.size[1]})")
        table.add_column("rank")
        table.add_column("before")
        table.add_column("after (re-read from the PNG)")
        for i, (b, a) in enumerate(zip(res.before, res.after, strict=True)):
            table.add_row(str(i + 1), f"{b.name} {b.probability:.3f}",
                          f"{a.name} {a.probability:.3f}")
        console.print(table)
        how = " (found by --eps auto)" if res.eps_auto else ""
        tm = res.timings_s
        split = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in tm.items() if k != "total")
        console.print(
            f"eps = {res.eps * 255:g}/255{how}; max change per pixel on disk: "
            f"{res.max_change_255}/255; {tm.get('total', res.time_s):.1f} s ({split})",
            highlight=False,
        )
        for k, v in res.outputs.items():
            console.print(f"{k}: {v}", highlight=False)

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


if __name__ == "__main__":  # python -m hoodwink.cli.main
    main()
