"""Generators for the CLI: argument lists for every command, through the real app.

The oracle: exit code 0, 2 or 3 (3: finished with sanity flags), never a
traceback; with ``strict_message`` also a one-line message on exit 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from hoodwink._validation import parse_index

from ._oracle import Case
from ._values import remove, scratch

#: Odd tokens for any option value.
ODD_TOKENS = ["-1", "0", "abc", "", "nan", "inf", "-inf", "1e400", "²", "٣", "1/0", "8/255",
              "1000000000000000000000/1", "2147483648", "18446744073709551616", "0x10", " 3 ",
              "1,2", ",", "None", "--", "-", "\x00"]

_LINEAR_DATA = ["synthetic", "mnist", "nope", "FOLDER", "NPZ"]
_OUTS = ["ok", "ok", "ok", "file", "under_file", "proc", "folder_exists", "none"]

# command -> (fixed cheap options, {option: valid values})
COMMANDS: dict[tuple[str, ...], tuple[list[str], dict[str, list[str]]]] = {
    ("models",): ([], {}),
    ("attacks",): ([], {"--json": []}),
    ("attack",): (["--model", "mnist-linear", "--n", "3", "--steps", "2"], {
        "--model": ["mnist-cnn", "mnist-linear", "MNIST-CNN", "nope", "FACTORY"],
        "--attack": ["fgsm", "pgd", "PGD", "cw", "square"], "--norm": ["linf", "l2", "l1"],
        "--max-queries": ["2", "20", "0", "1"],
        "--eps": ["0.1", "8/255", "1/255,2/255", "0", "8"], "--target": ["3", "0", "9", "10"],
        "--n": ["1", "2", "5"], "--steps": ["1", "2"], "--stepsize": ["0.01", "1/255"],
        "--restarts": ["1", "2"], "--loss": ["ce", "margin"], "--seed": ["0", "1"],
        "--bounds": ["0,1", "-1,1", "1,0"], "--mean": ["0.5", "0.1307"], "--std": ["0.5", "0"],
        "--levels": ["256", "2", "1"], "--data": ["mnist", "NPZ", "nope.npz"],
        "--trust-pickle": [], "--json": [], "--out": _OUTS}),
    ("fool",): (["IMAGE", "--model", "mnist-linear", "--steps", "2"], {
        "--model": ["mnist-cnn", "mnist-linear", "nope"], "--target": ["3", "seven", "10"],
        "--eps": ["2/255", "auto", "0.3", "8"], "--steps": ["1", "2"], "--seed": ["0"],
        "--out": _OUTS, "--json": []}),
    ("dream",): (["--model", "mnist-linear", "--target", "3", "--steps", "2"], {
        "--model": ["mnist-cnn", "mnist-linear"], "--target": ["3", "1,2", "seven", "10"],
        "--start": ["IMAGE", "nope.png"], "--confidence": ["0.5", "0.9", "1", "0"],
        "--steps": ["1", "3"], "--stepsize": ["1/255", "0.1"], "--norm": ["linf", "l2", "l1"],
        "--smoothness": ["0", "0.5"], "--blur": ["0", "0.5"], "--blur-every": ["1", "4"],
        "--seed": ["0"], "--out": _OUTS, "--json": []}),
    ("transfer",): (["--source", "mnist-linear", "--to", "mnist-cnn", "--n", "2", "--steps", "1"], {
        "--source": ["mnist-cnn", "mnist-linear", "nope"],
        "--to": ["mnist-cnn", "mnist-linear,mnist-cnn", ""],
        "--eps": ["0.1", "0.1,0.2", "2/255"], "--n": ["1", "3"], "--attacks": ["fgsm", "pgd", "cw"],
        "--targeted": [], "--untargeted": [], "--target": ["random", "3", "10"],
        "--steps": ["1", "2"], "--seed": ["0"], "--out": _OUTS, "--json": []}),
    ("linear", "train"): (["--data", "synthetic", "--epochs", "1"], {
        "--data": _LINEAR_DATA, "--size": ["4x4", "0x4", "4"], "--channels": ["1", "3", "2"],
        "--val-fraction": ["0.2", "0", "1"], "--kind": ["softmax", "svm", "hinge"],
        "--init-std": ["0.001", "0"], "--lr": ["0.05", "100", "0"], "--weight-decay": ["0", "0.1"],
        "--epochs": ["1", "2"], "--batch-size": ["16", "1"], "--momentum": ["0.9", "1"],
        "--seed": ["0"], "--out": _OUTS, "--json": []}),
    ("linear", "templates"): (["--model", "MODEL"], {
        "--model": ["MODEL", "BADMODEL", "nope.safetensors"], "--out": _OUTS, "--json": []}),
    ("linear", "fool"): (["--model", "MODEL", "--data", "synthetic", "--pgd-steps", "2",
                          "--n-compare", "2"], {
        "--model": ["MODEL", "BADMODEL"], "--data": _LINEAR_DATA, "--index": ["0", "5", "100000"],
        "--target": ["1", "2", "9"], "--noise-seed": ["0"], "--confidence": ["0.5", "0.9", "1"],
        "--n-compare": ["1", "2"], "--eps-linf": ["0.1", "8/255,16/255"], "--eps-l2": ["1", "0.5"],
        "--pgd-steps": ["1", "2"], "--out": _OUTS, "--json": []}),
    ("linear", "regularization"): (["--data", "synthetic", "--epochs", "1",
                                    "--weight-decays", "0.001,0.1"], {
        "--data": _LINEAR_DATA, "--weight-decays": ["0.001", "0,1", "-1"],
        "--kind": ["softmax", "svm"],
        "--lr": ["0.05"], "--epochs": ["1"], "--batch-size": ["32"], "--eps": ["0.1", "8/255"],
        "--out": _OUTS, "--json": []}),
    ("linear", "dimension"): (["--data", "synthetic", "--epochs", "1", "--sizes", "2,4"], {
        "--data": _LINEAR_DATA, "--sizes": ["2,4", "0,4", "4", "4,2"], "--eps": ["0.1", "8/255"],
        "--weight-decay": ["0"], "--kind": ["softmax", "svm"], "--lr": ["0.05", "100"],
        "--epochs": ["1"], "--scale-lr": [], "--no-scale-lr": [], "--out": _OUTS, "--json": []}),
    ("linear", "toy"): ([], {"--alpha": ["0.5", "-100", "1e308", "0"], "--out": _OUTS,
                              "--json": []}),
    ("defend", "background"): (["--rounds", "1", "--fooling-per-round", "2", "--epochs", "1",
                                "--epochs-per-round", "1", "--steps", "2", "--train-size", "40",
                                "--test-size", "10"], {
        "--rounds": ["0", "1"], "--fooling-per-round": ["1", "2"],
        "--retrain": ["finetune", "scratch", "x"],
        "--stepsize": ["2/255"], "--confidence": ["0.5", "0.99"], "--smoothness": ["0", "0.5"],
        "--train-size": ["20", "40"], "--test-size": ["5", "10"], "--seed": ["0"],
        "--out": _OUTS, "--json": []}),
}
#: The black-box attacks through ``hoodwink attack`` (no PGD options: they are refused for
#: attacks that do not run PGD), one entry per attack (``--attack`` right after the
#: command), and ``hoodwink attacks``.
_BLACKBOX_OPTIONS: dict[str, list[str]] = {
    "--attack": ["square", "SQUARE", " hopskipjump ", "pgd", "fgsm", "nope"],
    "--max-queries": ["2", "3", "10", "60", "1", "0", "-1", "1000000001", "1e3", "abc"],
    "--norm": ["linf", "l2", "l1"], "--eps": ["0.1", "8/255", "1/255,8/255", "0", "8"],
    "--target": ["3", "0", "10"], "--n": ["1", "2"], "--loss": ["ce", "margin"],
    "--steps": ["1", "2"], "--seed": ["0", "1"], "--levels": ["256", "2"],
    "--bounds": ["0,1", "-1,1"], "--json": [], "--out": _OUTS}
BLACKBOX_COMMANDS: dict[tuple[str, ...], tuple[list[str], dict[str, list[str]]]] = {
    **{("attack", "--attack", name): (
        ["--model", "mnist-linear", "--n", "2", "--max-queries", "20"], _BLACKBOX_OPTIONS)
       for name in ("square", "simba", "simba-dct", "nes", "fd", "local-search", "hopskipjump",
                    "boundary-walk", "substitute")},
    ("attacks",): ([], {"--json": []}),
}
#: Options whose value sets the work: generated values outside these are not run as-is
#: (a valid but huge --steps is a long run, not a hang).
_COST = {"--n", "--steps", "--epochs", "--restarts", "--pgd-steps", "--n-compare", "--rounds",
         "--fooling-per-round", "--train-size", "--test-size", "--epochs-per-round",
         "--batch-size", "--index"}
_ROOT = [["--quiet"], ["-q"], ["--debug"], ["--threads", "1"], ["--threads", "2147483648"],
         ["--threads", "0"], ["--verbose"], ["--version"]]


#: Largest values of work-setting options run as they are (larger valid ones become these).
_COST_CAP = {"--max-queries": 60}


@st.composite
def cli_calls(draw: Any, *, strict_message: bool = False,
              commands: dict[tuple[str, ...], Any] | None = None) -> Case:
    table = COMMANDS if commands is None else commands
    cmd = draw(st.sampled_from(list(table)))
    fixed, opts = table[cmd]
    root = draw(st.lists(st.sampled_from(_ROOT), max_size=2))
    args: list[str] = []
    for opt in draw(st.lists(st.sampled_from(sorted(opts) or ["--json"]), unique=True,
                             max_size=4)):
        vals = opts.get(opt, [])
        if opt in ("--json", "--trust-pickle", "--targeted", "--untargeted", "--scale-lr",
                   "--no-scale-lr"):
            args.append(opt)
            continue
        odd = draw(st.sampled_from([False, False, False, True]))
        v = draw(st.sampled_from(ODD_TOKENS)) if odd or not vals else draw(st.sampled_from(vals))
        # ASCII digits only: str.isdigit also accepts "²", which int() refuses.
        amount = parse_index(v)
        if opt in _COST and amount is not None and amount > 5 and opt != "--index":
            v = "2"
        cap = _COST_CAP.get(opt)
        if cap is not None and amount is not None and cap < amount <= 10**9:
            v = str(cap)  # a valid budget: 10**9 queries is a long run, not a hang
        args += [opt, v]
    junk = draw(st.sampled_from([[], [], [], ["--bogus"], ["extra"], ["--eps"]]))
    argv_t = [a for r in root for a in r] + list(cmd) + fixed + args + junk
    out_kind: dict[str, str] = {}

    def call() -> Any:
        tmp = scratch()
        out_kind["tmp"] = str(tmp)
        argv = [_fill(a, tmp) for a in argv_t]
        threads, cwd = torch.get_num_threads(), os.getcwd()
        os.chdir(tmp)
        try:
            return _invoke_main(argv), argv
        finally:
            os.chdir(cwd)
            torch.set_num_threads(threads)
            remove(tmp)

    def check(res_argv: Any) -> list[str]:
        res, argv = res_argv
        text = (res.stdout or "") + (res.stderr or "")
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            e = res.exception
            raise e  # judged as a crash, keyed by its type and frame
        if "Traceback" in text and "--debug" not in argv:
            return [f"traceback: exit {res.exit_code} with a traceback"]
        if res.exit_code not in (0, 2, 3):
            return [f"exit code: {res.exit_code} (documented: 0, 2, 3)"]
        if res.exit_code == 0 and "--version" not in argv:
            if cmd == ("attacks",):
                return _check_listing(res.stdout, "--json" in argv)
            if cmd[0] == "attack" and "--json" in argv:
                return _check_budget(res.stdout, argv)
        if strict_message and res.exit_code == 2 and "--debug" not in argv:
            # Progress lines (piped: "label: 40% (2/5), 1s elapsed") may precede the error;
            # the error itself must be one line.
            lines = [ln for ln in (res.stderr or "").splitlines()
                     if ln.strip() and not _PROGRESS_LINE.match(ln)]
            if len(lines) != 1:
                return [f"message: exit 2 with {len(lines)} lines, not one: {lines[:3]!r}"]
        return []

    area = "cli" if not strict_message else "cli_message"
    if commands is not None:
        area += "_blackbox"
    return Case(area, call, check, timeout=60,
                repro="hoodwink " + " ".join(argv_t),
                refused=lambda ra: ra[0].exit_code == 2)


def _check_listing(out: str, as_json: bool) -> list[str]:
    """``hoodwink attacks``: every registered attack, with its threat model."""
    import json

    from hoodwink.attacks.registry import available

    names = [i.name for i in available()]
    if not as_json:
        missing = [nm for nm in names if nm not in out]
        return [f"attacks: the table lacks {missing}"] if missing else []
    try:
        rows = json.loads(out)
    except ValueError:
        return [f"attacks --json: stdout is not JSON: {out[:80]!r}"]
    if [r.get("name") for r in rows] != names or any(
            r.get("threat") not in ("white-box", "scores", "labels") for r in rows):
        return ["attacks --json: names or threats differ from the registry"]
    return []


def _check_budget(out: str, argv: list[str]) -> list[str]:
    """``hoodwink attack --json`` with --max-queries: the mean queries within the budget."""
    import json

    if "--max-queries" not in argv:
        return []
    budget = int(argv[len(argv) - 1 - argv[::-1].index("--max-queries") + 1])
    try:
        rec = json.loads(out)
    except ValueError:
        return [f"attack --json: stdout is not JSON: {out[:80]!r}"]
    q = rec.get("queries_mean") if isinstance(rec, dict) else None
    if q is not None and q > budget:
        return [f"budget: queries_mean {q} above --max-queries {budget}"]
    return []


def blackbox_cli_calls() -> st.SearchStrategy[Case]:
    """``hoodwink attack`` with the black-box attacks and --max-queries; ``hoodwink attacks``."""
    return cli_calls(commands=BLACKBOX_COMMANDS)


#: A line of hoodwink.cli._progress.PipedProgress.
_PROGRESS_LINE = re.compile(r"^[^:]+: (\d+% \(\d+/\d+\)|\d+)( eta \S+)?, \S+ elapsed")


@dataclass
class _MainResult:
    """What the real entry point did: exit code, output, and an escaped exception."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def _invoke_main(argv: list[str]) -> _MainResult:
    """Run ``hoodwink.cli.main.main()`` in-process, as the console script does.

    Through ``main()`` rather than typer's CliRunner on ``app``: main() is where
    click's usage errors become one line, so only this judges what users see.
    """
    from hoodwink.cli._common import state
    from hoodwink.cli.main import main

    # A console script starts with fresh module state; in one process, a previous
    # case's --debug or --quiet must not leak into this one.
    state.debug = state.quiet = False
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["hoodwink", *argv]
    exc: BaseException | None = None
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:  # judged as a crash by check()
        exc, code = e, 1
    finally:
        sys.argv = old_argv
    return _MainResult(code, out.getvalue(), err.getvalue(), exc)


_ASSETS: dict[str, Path] = {}


def _assets() -> dict[str, Path]:
    """Files the CLI cases point at, made once per process."""
    if not _ASSETS:
        from PIL import Image

        from hoodwink.studies.linear import LinearModel

        d = scratch()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
                        ).save(d / "digit.png")
        _ASSETS["IMAGE"] = d / "digit.png"
        g = torch.Generator().manual_seed(0)
        LinearModel(weight=torch.randn(3, 256, generator=g) * 0.01, bias=torch.zeros(3),
                    input_shape=(1, 16, 16)).save(d / "m.safetensors")
        _ASSETS["MODEL"] = d / "m.safetensors"
        (d / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
        _ASSETS["BADMODEL"] = d / "bad.safetensors"
        x = np.random.default_rng(0).integers(0, 256, (6, 1, 28, 28), dtype=np.uint8)
        np.savez(d / "data.npz", x=x, y=np.arange(6) % 3)
        _ASSETS["NPZ"] = d / "data.npz"
        (d / "folder").mkdir()
        for c in range(2):
            (d / "folder" / f"c{c}").mkdir()
            for i in range(3):
                Image.fromarray(np.full((16, 16), 60 * c + i, np.uint8)).save(
                    d / "folder" / f"c{c}" / f"{i}.png")
        _ASSETS["FOLDER"] = d / "folder"
        (d / "factory.py").write_text(
            "import torch\ndef factory():\n    return torch.nn.Sequential(torch.nn.Flatten(), "
            "torch.nn.Linear(784, 10))\n")
        _ASSETS["FACTORY"] = d / "factory.py"
    return _ASSETS


def _fill(a: str, tmp: Path) -> str:
    assets = _assets()
    if a in assets:
        return str(assets[a]) if a != "FACTORY" else f"{assets[a]}:factory"
    if a in _OUTS:
        (tmp / "afile").write_text("x")
        return {"ok": str(tmp / "o" / f"r{uuid.uuid4().hex[:6]}"), "file": str(tmp / "afile"),
                "under_file": str(tmp / "afile" / "sub"), "proc": "/proc/hoodwink-fuzz/out",
                "folder_exists": str(tmp), "none": str(tmp / "n")}[a]
    return a
