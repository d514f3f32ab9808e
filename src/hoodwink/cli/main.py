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
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Literal, TextIO

import typer

from hoodwink.cli._common import (
    DEFAULT_OUT_ROOT,
    EXIT_ERROR,
    check_budget,
    check_output,
    console,
    parse_eps,
    print_error,
    print_warning,
    resolve_target,
    run_guarded,
    state,
)

__all__ = ["MAX_THREADS", "app", "main"]

#: The most ``--threads`` accepted: more than any CPU has cores; a larger count only
#: overflows torch's C int or asks OpenMP for billions of threads.
MAX_THREADS = 1024

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
        int,
        typer.Option(min=1, max=MAX_THREADS,
                     help="CPU threads for torch (1 is fastest on a busy machine)."),
    ] = 1,
) -> None:
    import logging

    state.debug = debug
    state.quiet = quiet
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


#: Below this probability a fooled top-1 class is reported as a narrow win.
_CONFIDENT = 0.5

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


@app.command("attacks")
def attacks_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the list as JSON instead of a table.")
    ] = False,
) -> None:
    """List every attack with its threat model, norms and whether it can be targeted."""
    import json

    from rich.table import Table

    from hoodwink.attacks.registry import available

    rows = [{"name": i.name, "threat": i.threat, "norms": list(i.norms),
             "targeted": i.targeted, "minimum_norm": i.minimum_norm,
             "class": i.path.rpartition(":")[2], "summary": i.summary}
            for i in available()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "needs", "norms", "targeted", "description")
    for r in rows:
        needs = {"white-box": "gradients", "scores": "scores", "labels": "labels"}[
            str(r["threat"])]
        table.add_row(str(r["name"]), needs, ", ".join(r["norms"]),  # type: ignore[arg-type]
                      "yes" if r["targeted"] else "no", str(r["summary"]))
    console.print(table)
    console.print("needs: gradients = white box; scores = logits or probabilities; "
                  "labels = the predicted class only. Every attack also runs untargeted.",
                  highlight=False)


@app.command("fool")
def fool_cmd(
    image: Annotated[Path, typer.Argument(
        help="The image to fool (PNG, JPEG, ...), or a 16 kHz mono 16-bit WAV clip.")],
    target: Annotated[
        str | None, typer.Option(help="Target class: name (e.g. goldfish) or index.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="Model name (see `hoodwink models`); default efficientnet-lite0, or silero-vad "
             "for a WAV.")] = None,
    eps: Annotated[str | None, typer.Option(
        help="L∞ budget, e.g. 2/255 (the default for images), or 'auto'; for a WAV, in "
             "16-bit PCM units, e.g. 300/32768 (replaces --level).")] = None,
    steps: Annotated[int | None, typer.Option(
        help="PGD steps per budget (default 40; 60 with --robust; 500 for a WAV).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Adversarial PNG (or WAV) path (default ./out/fool/<stem>-adv.png); "
                          "the figure and the JSON record go beside it."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON record.")] = False,
    hide_speech: Annotated[bool, typer.Option(
        "--hide-speech", help="WAV: make every speech chunk read as non-speech.")] = False,
    show_speech: Annotated[bool, typer.Option(
        "--show-speech", help="WAV: make every chunk (silence, noise) read as speech.")] = False,
    level: Annotated[str | None, typer.Option(
        help="WAV budget as a level: -40dB (relative to the clip's peak; the default) or "
             "-40dBFS (relative to full scale).")] = None,
    attack: Annotated[str | None, typer.Option(
        help="WAV: pgd (white box, the default) or a score-based attack (square, simba) "
             "against the ONNX model.")] = None,
    queries: Annotated[int | None, typer.Option(
        help="WAV, black-box attacks: query budget per clip (default 2000).")] = None,
    robust: Annotated[bool, typer.Option(
        "--robust", help="Make the result survive JPEG, resizing, rotation, crops, blur and "
                         "lighting changes (expectation over transformation; about 40 s "
                         "on one CPU thread).")] = False,
    eot_samples: Annotated[int | None, typer.Option(
        help="--robust: transformed images averaged per step (default 8).")] = None,
    survival_draws: Annotated[int | None, typer.Option(
        help="Held-out random real transformations to measure survival on (default 50 "
             "with --robust, else 0: not measured).")] = None,
) -> None:
    """Fool a pretrained classifier on IMAGE with an invisible change; write the PNG.

    Given a .wav file, fool the speech model silero-vad instead: --hide-speech or
    --show-speech, judged on the 16-bit WAV written and read back.
    """
    started = time.perf_counter()
    age = _process_age_s()
    # The clock starts at the process's start (or, where unknown, this module's import).
    clock_start = started - age if age is not None else _IMPORTED_AT
    speech_options = {"--hide-speech": hide_speech, "--show-speech": show_speech,
                      "--level": level is not None, "--attack": attack is not None,
                      "--queries": queries is not None}
    image_options = {"--robust": robust, "--eot-samples": eot_samples is not None,
                     "--survival-draws": survival_draws is not None}

    def go_speech() -> None:
        import json
        import re

        from hoodwink.errors import BudgetExhaustedError, ConfigError

        if target is not None:
            raise ConfigError("--target is for images; for a WAV give --hide-speech or "
                              "--show-speech.")
        if hide_speech == show_speech:
            raise ConfigError(
                "Give exactly one of --hide-speech (speech reads as non-speech) and "
                "--show-speech (silence or noise reads as speech)" +
                (", not both." if hide_speech else ".")
            )
        if level is not None and eps is not None:
            raise ConfigError("Give the budget once: --level (e.g. -40dB) or --eps (e.g. "
                              "300/32768), not both.")
        name = model if model is not None else "silero-vad"
        level_db, reference, e = -40.0, "signal", None
        if eps is not None:
            if eps.strip().lower() == "auto":
                raise ConfigError("--eps auto is for images; for a WAV give --level -40dB or "
                                  "--eps 300/32768.")
            e = parse_eps(eps)
        elif level is not None:
            m = re.fullmatch(r"\s*([-+]?\d+(?:\.\d*)?)\s*(dbfs|db)?\s*", level.lower())
            if m is None:
                raise ConfigError(f"Cannot read --level {level!r}: give a level in dB such "
                                  "as -40dB, or relative to full scale, -40dBFS.")
            level_db = float(m.group(1))
            reference = "full-scale" if m.group(2) == "dbfs" else "signal"
        path = check_output(out, "fool", kind="file", filename=f"{image.stem}-adv.wav")
        check_output(path.parent, "fool", files=(f"{path.stem}-figure.png",
                                                 f"{path.stem}.json"))
        from hoodwink.cli._progress import progress_reporter
        from hoodwink.studies.speech import DEFAULT_STEPS, fool_speech

        mode = "hide" if hide_speech else "show"
        with progress_reporter(f"fooling {name} on {image.name}", quiet=state.quiet) as report:
            res = fool_speech(name, image, mode=mode,  # type: ignore[arg-type]
                              level_db=level_db, eps=e,
                              reference=reference,  # type: ignore[arg-type]
                              attack=attack or "pgd",
                              steps=steps if steps is not None else DEFAULT_STEPS, seed=seed,
                              queries=queries, out=path, create_folders=True, progress=report)
        if not res.success:
            left = res.chunks - res.chunks_target
            goal = "non-speech" if mode == "hide" else "speech"
            budget = f"{res.eps_pcm}/32768" + (f" ({level})" if level else "")
            raise BudgetExhaustedError(
                f"{res.chunks_target} of {res.chunks} chunks read as {goal} after saving; "
                f"{left} still do not, at the budget {budget}. Try a larger budget (e.g. "
                f"--level {level_db + 5:g}dB) or more --steps"
                + (" or --queries" if res.queries is not None else "") + ". Nothing was "
                "written."
            )
        if as_json:
            typer.echo(json.dumps(res.to_dict(), indent=2))
            return
        q = f"; {res.queries} queries" if res.queries is not None else ""
        console.print(
            f"{name} on {image.name} ({res.duration_s:.2f} s, {res.chunks} chunks): speech "
            f"chunks {res.speech_chunks_before} before, {res.speech_chunks_after} after "
            f"(re-read from the WAV)", highlight=False)
        console.print(
            f"budget {res.eps_pcm}/32768; max change on disk {res.max_change_pcm}/32768 = "
            f"{res.level_db:.1f} dB relative to the peak ({res.level_dbfs:.1f} dBFS); "
            f"{res.attack}{q}; {res.time_s:.1f} s", highlight=False)
        for k, v in res.outputs.items():
            console.print(f"{k}: {v}", highlight=False)

    if image.suffix.lower() == ".wav":
        if any(image_options.values()):
            from hoodwink.errors import ConfigError

            def refuse_wav() -> None:
                given = [k for k, v in image_options.items() if v]
                raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} "
                                  f"for images only; {image.name} is a WAV clip.")

            run_guarded(refuse_wav)
            return
        run_guarded(go_speech)
        return
    given = [k for k, v in speech_options.items() if v]
    if given:
        from hoodwink.errors import ConfigError

        def refuse() -> None:
            raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} "
                              f"for a .wav clip only; {image.name} is an image.")

        run_guarded(refuse)
        return
    model = model if model is not None else "efficientnet-lite0"
    eps = eps if eps is not None else "2/255"
    # None: fool_image's default (40 PGD steps; EOT_STEPS with --robust).

    def go() -> None:
        import json

        # The adversarial PNG, its triptych and record: checked before the model loads.
        png = check_output(out, "fool", kind="file", filename=f"{image.stem}-adv.png")
        check_output(png.parent, "fool", files=(f"{png.stem}-triptych.png", f"{png.stem}.json"))
        from hoodwink import zoo
        from hoodwink.cli._progress import progress_reporter
        from hoodwink.errors import BudgetExhaustedError
        from hoodwink.studies.fool import EOT_SAMPLES, fool_image

        t_load = time.perf_counter()
        startup = t_load - clock_start  # interpreter, CLI and library imports (torch)
        name = zoo.canonical_name(model)  # the one name policy: case-insensitive
        clf = zoo.load(name)
        model_load = time.perf_counter() - t_load
        e: float | str = "auto" if eps.strip().lower() == "auto" else parse_eps(eps)
        if isinstance(e, float):
            check_budget(e, norm="linf", model=clf, dims=1, text=eps)
        t = resolve_target(clf, target) if target is not None else None
        # MNIST models read grey digits; any other model keeps the file's own mode (a grey
        # photo stays grey: see fool_image).
        mode: Literal["RGB", "L"] | None = "L" if name.startswith("mnist") else None
        # The output rule of every command (hoodwink.cli._common.output_file): --out, else
        # ./out/fool/. The folders are made only once the attack succeeded, so that a
        # failed run leaves nothing behind.
        path = out if out is not None else DEFAULT_OUT_ROOT / "fool" / f"{image.stem}-adv.png"
        try:
            with progress_reporter(f"fooling {name} on {image.name}",
                                   quiet=state.quiet) as report:
                res = fool_image(clf, image, model_name=name, target=t,
                                 eps=e,  # type: ignore[arg-type]
                                 out=path, steps=steps, seed=seed, mode=mode, progress=report,
                                 timings={"startup": startup, "model_load": model_load},
                                 clock_start=clock_start, create_folders=True,
                                 robust=robust,
                                 eot_samples=eot_samples if eot_samples is not None
                                 else EOT_SAMPLES,
                                 survival_draws=survival_draws)
        except BudgetExhaustedError as exc:
            # The library speaks of eps= and steps=; on the command line they are flags.
            advice = ("more --steps" if isinstance(e, str) else
                      f"--eps {min(255, round(2 * e * 255))}/255, --eps auto or more --steps")
            raise BudgetExhaustedError(f"{exc} On the command line: {advice}.") from exc
        top = res.after[0]
        if top.probability < _CONFIDENT:
            print_warning(
                f"{top.name} is now top-1 with only {top.probability:.1%} confidence, a narrow "
                "win that a re-encoding or another model may undo; more --steps or a larger "
                "--eps give a more confident result."
            )
        if as_json:
            typer.echo(json.dumps(res.to_dict(), indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{name} on {image.name} ({res.size[0]}×{res.size[1]})")
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
        console.print(f"the model now says {top.name} with {top.probability:.1%} confidence",
                      highlight=False)
        if res.survival is not None:
            from hoodwink.studies.fool_report import survival_lines

            for line in survival_lines(res.survival):
                console.print(line, highlight=False)
        for k, v in res.outputs.items():
            console.print(f"{k}: {v}", highlight=False)

    run_guarded(go)


def _mount_subapps() -> None:
    from hoodwink.cli.attack import register as register_attack
    from hoodwink.cli.dream import register as register_dream
    from hoodwink.cli.evaluate import register as register_evaluate
    from hoodwink.cli.forests import register as register_forests
    from hoodwink.cli.linear import app as linear_app
    from hoodwink.cli.report import register as register_report
    from hoodwink.cli.serve import register as register_serve
    from hoodwink.cli.survival import register as register_survival
    from hoodwink.cli.train import register as register_train
    from hoodwink.cli.transfer import register as register_transfer

    app.add_typer(linear_app, name="linear", help="The essay's linear-classifier experiments.")
    register_attack(app)
    register_dream(app)
    register_transfer(app)
    register_forests(app)
    register_evaluate(app)
    register_report(app)
    register_train(app)
    register_serve(app)
    register_survival(app)


_mount_subapps()


def main() -> None:
    """Entry point of the ``hoodwink`` console script.

    click's own error handling is off (``standalone_mode=False``) so that its usage
    errors, like the library's errors, are one ``error: ...`` line with exit code 2
    instead of a usage block and a box; warnings are one ``warning: ...`` line.
    """
    warnings.showwarning = _show_warning
    try:
        rv = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's ClickException and its usage errors
        raise SystemExit(_report_click_error(exc)) from None
    except typer.Abort:
        print_error("aborted.")
        raise SystemExit(1) from None
    # standalone_mode=False returns the code of a typer.Exit, else the command's value.
    raise SystemExit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


def _report_click_error(exc: typer.TyperException) -> int:
    """Print one of click's errors as one line; return its exit code."""
    code = getattr(exc, "exit_code", EXIT_ERROR)
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `hoodwink` or `hoodwink linear`
        if exc.format_message().strip():  # typer's rich help is printed while it is made
            exc.show()  # type: ignore[attr-defined]
        return int(code)
    if state.debug:
        traceback.print_exception(exc)
    possibilities = getattr(exc, "possibilities", None)
    if possibilities and isinstance(getattr(exc, "option_name", None), str):
        # click lists every close option sorted by name; the closest one is the hint.
        message = f"{exc.message} (did you mean {possibilities[0]}?)"
    else:
        message = exc.format_message()
    message = message.rstrip()
    if message and message[-1] not in ".?!":
        message += "."
    given = _value_given(exc)
    if given is not None and repr(given) not in message:
        message += f" Got {given!r}."
    if ctx is not None:
        message = f"{message} Try '{ctx.command_path} --help'."
    print_error(message)
    return int(code)


def _value_given(exc: typer.TyperException) -> str | None:
    """The text the user typed for the option a BadParameter error is about, if found."""
    param = getattr(exc, "param", None)
    opts = getattr(param, "opts", None) or []
    args = sys.argv[1:]
    for i, a in enumerate(args):
        for o in opts:
            if a == o and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(o + "="):
                return a[len(o) + 1:]
    return None


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """Print a warning as one ``warning: ...`` line (Python's two lines with --debug)."""
    if state.debug:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)
        return
    from hoodwink.errors import HoodwinkWarning

    kind = "" if issubclass(category, HoodwinkWarning) else f" ({category.__name__})"
    print_warning(f"{message}{kind}")


_PYTHON_SHOWWARNING = warnings.showwarning


if __name__ == "__main__":  # python -m hoodwink.cli.main
    main()
