"""``hoodwink attack``: attack a model on labelled data and summarise the result.

A thin shell over :func:`hoodwink.models.load_model`,
:func:`hoodwink.data.load_dataset` and :class:`hoodwink.FGSM` /
:class:`hoodwink.PGD` (``attack(...)`` for one budget, ``attack.sweep(...)``
for a comma-separated list). Every option maps onto one of their arguments.
The record goes to ``--out`` (default ``./out/attack/``); ``--json`` prints a
summary on stdout instead of the table. Notes and progress go to stderr.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hoodwink.cli._common import (
    check_budget,
    check_output,
    console,
    err_console,
    output_dir,
    parse_eps,
    resolve_target,
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

if TYPE_CHECKING:
    from hoodwink.attacks.base import Attack
    from hoodwink.data.files import Dataset
    from hoodwink.models.base import Classifier

__all__ = ["register"]


_MODEL_HELP = (
    "A zoo name (see `hoodwink models`); package.module:factory or path/to/file.py:factory, "
    "a function called with no arguments that returns an nn.Module or a hoodwink classifier "
    "(this RUNS the named code; it may also return a fitted scikit-learn classifier); "
    "weights.safetensors together with --arch; a scikit-learn .skops file or an .onnx model, "
    "both with --bounds lo,hi. A pickle (.pt, .pth, .pkl, .joblib) needs --trust-pickle."
)
_DATA_HELP = (
    "mnist (the 1,000 bundled held-out digits), a folder of class sub-folders of images, or "
    "an .npz / .safetensors file with arrays x and y (uint8 x is divided by 255). A pickle "
    "(.pt, .pkl) needs --trust-pickle. Default: mnist for the mnist zoo models; required "
    "otherwise."
)


def register(app: typer.Typer) -> None:
    """Add the ``attack`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in tests).
    """
    app.command("attack")(attack_cmd)


def attack_cmd(
    model: Annotated[str, typer.Option(help=_MODEL_HELP)] = "mnist-cnn",
    arch: ArchOpt = None,
    bounds: BoundsOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    levels: LevelsOpt = None,
    data: Annotated[str | None, typer.Option(help=_DATA_HELP)] = None,
    trust_pickle: TrustPickleOpt = False,
    attack: Annotated[
        str, typer.Option(help="An attack name from `hoodwink attacks`: pgd, fgsm (white box); "
                               "square, simba, nes, ... (scores); hopskipjump, ... (labels).")
    ] = "pgd",
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    eps: Annotated[
        str,
        typer.Option(help="Budget, e.g. 0.1 or 8/255; a comma list such as "
                          "1/255,2/255,4/255,8/255 runs a sweep and writes the curve."),
    ] = "0.1",
    target: Annotated[
        str | None,
        typer.Option(help="Target class (index or name); untargeted if omitted. Samples "
                          "already of that class are dropped (and counted)."),
    ] = None,
    n: Annotated[
        int | None, typer.Option(help="Attack the first N samples (default: all of them).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="PGD steps (pgd, and the PGD inside nes, fd and "
                                      "substitute; default 40).")
    ] = None,
    stepsize: Annotated[str | None, typer.Option(help="PGD step size (default 2.5·eps/steps).")]
    = None,
    restarts: Annotated[int | None, typer.Option(help="PGD restarts (default 1).")] = None,
    loss: Annotated[str | None, typer.Option(help="ce, margin or dlr (default ce).")] = None,
    max_queries: Annotated[
        int | None,
        typer.Option(help="Most model calls per sample for a black-box attack (default 1000), "
                          "the clean and verification passes included; never exceeded."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the attack's random generator.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for result.json (+ .safetensors), or curve.json and "
                          "curve.png for a sweep (default ./out/attack/)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout instead of a table.")
    ] = False,
) -> None:
    """Attack a model on labelled data and summarise the result."""

    def go() -> None:
        check_output(out, "attack", files=("result.json", "curve.json", "curve.png"))
        from hoodwink import zoo
        from hoodwink.errors import ConfigError

        texts = [e for e in eps.split(",") if e.strip()]
        budgets = [parse_eps(e) for e in texts]
        if not budgets:
            raise ConfigError(f"--eps needs at least one budget, e.g. 8/255. Got {eps!r}.")
        a = _make_attack(attack, norm=norm, steps=steps, stepsize=stepsize, restarts=restarts,
                         loss=loss, seed=seed, max_queries=max_queries)
        if out is not None and out.suffix.lower() == ".json":
            raise ConfigError(
                f"--out is a folder (it receives result.json and more); got the file name "
                f"{out}. Give a folder, e.g. --out {out.with_suffix('')}."
            )
        # The one name policy (hoodwink.zoo.canonical_name): zoo names are case-insensitive.
        zoo_name = model.strip().lower() if model.strip().lower() in zoo.available() else None
        if zoo_name is not None:
            _data_spec(model, data)  # a missing --data fails before an ImageNet model loads
        clf = _load_model(model, arch=arch, bounds=bounds, mean=mean, std=std, levels=levels,
                          trust_pickle=trust_pickle)
        ds = _load_data(_data_spec(model, data), clf, trust_pickle=trust_pickle)
        total = len(ds)
        if n is not None:
            ds = ds.head(n)
        x, y = ds.x, ds.y
        # One budget policy for every command: a budget above the input range is refused
        # before any attack runs (a sweep included), not warned about.
        dims = math.prod(int(d) for d in x.shape[1:])
        for e, text in zip(budgets, texts, strict=True):
            check_budget(e, norm=a.norm, model=clf, dims=dims, text=text)
        run: dict[str, Any] = {"model": zoo_name or model, "data": ds.source, "n_data": total,
                               "n_used": len(ds)}
        t = _target(clf, ds, target) if target is not None else None
        if t is not None:
            keep = y != t
            dropped = int((~keep).sum())
            name = _class_label(clf, ds, t)
            if dropped == len(y):
                raise ConfigError(
                    f"All {len(y)} samples are of class {name}, the --target; nothing is left "
                    "to attack. Pick another target or other data."
                )
            x, y = x[keep], y[keep]
            err_console.print(f"dropped {dropped} samples whose true class is already {name}; "
                              f"attacking {len(y)}", highlight=False)
            run["dropped_of_target_class"] = dropped
        run["n_attacked"] = len(y)
        folder = output_dir(out, "attack")
        label = f"{type(a).__name__} on {len(y)} samples"
        if len(budgets) == 1:
            _single(a, clf, x, y, t, budgets[0], label, folder, run, as_json)
        else:
            _sweep(a, clf, x, y, t, budgets, label, folder, run, as_json)

    run_guarded(go)


# ---------------------------------------------------------------------- pieces
def _floats(text: str, flag: str) -> list[float]:
    from hoodwink.errors import ConfigError

    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"{flag} takes comma-separated numbers, e.g. 0.485,0.456,0.406. Got {text!r}."
        ) from exc
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{flag} takes finite numbers, e.g. 0.485,0.456,0.406. Got {text!r}.")
    return values


def _load_model(spec: str, *, arch: str | None, bounds: str | None, mean: str | None,
                std: str | None, levels: int | None, trust_pickle: bool) -> Classifier:
    from hoodwink.errors import ConfigError
    from hoodwink.models.loading import load_model

    b: tuple[float, float] | None = None
    if bounds is not None:
        parts = _floats(bounds, "--bounds")
        if len(parts) != 2:
            raise ConfigError(f"--bounds takes two numbers lo,hi, e.g. 0,1. Got {bounds!r}.")
        b = (parts[0], parts[1])
    return load_model(spec, arch=arch, bounds=b,
                      mean=_floats(mean, "--mean") if mean is not None else None,
                      std=_floats(std, "--std") if std is not None else None,
                      levels=levels, trust_pickle=trust_pickle)


def _data_spec(model: str, data: str | None) -> str:
    """``--data``, defaulting to the bundled digits for the MNIST zoo models."""
    from hoodwink import zoo
    from hoodwink.errors import ConfigError

    if data is not None:
        return data
    key = model.strip().lower()
    if key.startswith("mnist") and key in zoo.available():
        return "mnist"
    raise ConfigError(
        f"--data is required for the model {model!r}: give a folder of class sub-folders of "
        "images, an .npz or .safetensors file with arrays x and y, or 'mnist'. To fool one "
        "photo, use `hoodwink fool IMAGE`."
    )


def _load_data(data: str, clf: Classifier, *, trust_pickle: bool) -> Dataset:
    from hoodwink.data.files import load_dataset
    from hoodwink.errors import InputError

    ds = load_dataset(data, trust_pickle=trust_pickle)
    _probe(clf, ds)
    names = getattr(clf, "class_names", None)
    if names and ds.class_names is not None and tuple(ds.class_names) != tuple(names):
        ds = ds.relabel(tuple(names))
    top = int(ds.y.max())
    if top >= clf.num_classes:
        raise InputError(
            f"The labels of {ds.source} go up to {top}, but the model has {clf.num_classes} "
            f"classes (0..{clf.num_classes - 1}). Check that --data belongs to --model."
        )
    return ds


def _probe(clf: Classifier, ds: Dataset) -> None:
    """One forward pass on one input: the model's errors, said in terms of the flags."""
    from hoodwink.errors import HoodwinkError, InputError

    try:
        clf.predict(ds.x[:1])
    except HoodwinkError:
        raise
    except Exception as exc:  # the user's network can raise anything
        raise InputError(
            f"The model cannot take the inputs of {ds.source}: one input of shape "
            f"{tuple(ds.x.shape[1:])} raised {type(exc).__name__}: {exc}. Give --data whose "
            "inputs have the shape and layout the model expects (images are (C, H, W))."
        ) from exc


def _target(clf: Classifier, ds: Dataset, spec: str) -> int:
    from hoodwink._validation import parse_index
    from hoodwink.errors import ConfigError

    s = spec.strip()
    idx = parse_index(s)  # ASCII digits only: "²".isdigit() is True, int("²") fails
    if not getattr(clf, "class_names", None) and ds.class_names and idx is None:
        lowered = [c.lower() for c in ds.class_names]
        if s.lower() in lowered:
            return lowered.index(s.lower())
        raise ConfigError(
            f"Unknown class {spec!r}; the classes of {ds.source} are "
            f"{', '.join(ds.class_names)}."
        )
    if not hasattr(clf, "class_names"):
        if idx is None:
            raise ConfigError(f"Target {spec!r} must be a class index for this model.")
        if not 0 <= idx < clf.num_classes:
            shown = s if len(s) <= 20 else f"{s[:8]}...{s[-8:]} ({len(s)} digits)"
            raise ConfigError(
                f"Target {shown} is outside the model's classes 0..{clf.num_classes - 1}."
            )
        return idx
    resolved: int = resolve_target(clf, spec)  # type: ignore[arg-type]
    return resolved


def _class_label(clf: Classifier, ds: Dataset, t: int) -> str:
    names = getattr(clf, "class_names", None) or ds.class_names
    if names and t < len(names) and str(names[t]) != str(t):
        return f"{t} ({names[t]})"
    return str(t)


def _make_attack(name: str, *, norm: str, steps: int | None, stepsize: str | None,
                 restarts: int | None, loss: str | None, seed: int,
                 max_queries: int | None = None) -> Attack:
    """The attack ``name`` of the registry, with the options that apply to it.

    An option given for an attack that does not take it is an error, never ignored.
    """
    import dataclasses

    import hoodwink
    from hoodwink.attacks import registry
    from hoodwink.errors import ConfigError

    info = registry.get(name)
    fields = {f.name for f in dataclasses.fields(info.cls)}
    pgd_options = {"--steps": steps, "--stepsize": stepsize, "--restarts": restarts}
    wraps_pgd = "attack" in fields
    if not (wraps_pgd or info.name == "pgd"):
        given = [k for k, v in pgd_options.items() if v is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)}: these shape PGD's iterations, which {info.name} does "
                "not run. They apply to pgd, and to the PGD inside nes, fd and substitute."
            )
    if loss is not None and "loss" not in fields and not wraps_pgd:
        raise ConfigError(f"--loss does not apply to {info.name}; leave it out.")
    if max_queries is not None and "max_queries" not in fields:
        raise ConfigError(
            f"--max-queries applies to black-box attacks; {info.name} is a white-box attack "
            "that counts its passes but has no query budget. Leave it out, or pick a "
            "black-box attack (see `hoodwink attacks`)."
        )
    # Norm, loss and budget values are checked by the attack's own validation.
    params: dict[str, Any] = {"norm": norm, "seed": seed}
    pgd_kw: dict[str, Any] = {
        "steps": 40 if steps is None else steps, "restarts": 1 if restarts is None else restarts,
        "stepsize": parse_eps(stepsize) if stepsize else None,
        "loss": "ce" if loss is None else loss}
    if info.name == "pgd":
        return hoodwink.PGD(**params, **pgd_kw)
    if wraps_pgd:
        params["attack"] = hoodwink.PGD(**params, **pgd_kw)
    elif "loss" in fields and loss is not None:
        params["loss"] = loss
    if max_queries is not None:
        params["max_queries"] = max_queries
    return registry.make(info.name, **params)


def _with_progress(fn: Any, cb: Any, **kwargs: Any) -> Any:
    from hoodwink.errors import OutOfBoundsError

    if "progress" in inspect.signature(fn).parameters:
        kwargs["progress"] = cb
    try:
        return fn(**kwargs)
    except OutOfBoundsError as exc:
        raise OutOfBoundsError(
            f"{exc} From the shell: --bounds lo,hi sets the model's input range, and "
            "--mean/--std normalise inside the model."
        ) from exc


def _single(a: Attack, clf: Classifier, x: Any, y: Any, t: int | None, e: float, label: str,
            folder: Path, run: dict[str, Any], as_json: bool) -> None:
    from hoodwink.cli._progress import progress_reporter

    with progress_reporter(label, quiet=state.quiet) as cb:
        res = _with_progress(a.__call__, cb, model=clf, x=x, y=y, target=t, eps=e)
    budget = budget_rows(e, a.norm, clf)
    summary = res.summary()
    written = _save(res, folder / "result.json", run)
    if as_json:
        typer.echo(json.dumps(summary | run | {"budget": dict(budget), "record": str(written)},
                              indent=2))
        return
    _summary_table(summary, run, budget)
    console.print(f"record written to {written}", highlight=False)


def _sweep(a: Attack, clf: Classifier, x: Any, y: Any, t: int | None, budgets: list[float],
           label: str, folder: Path, run: dict[str, Any], as_json: bool) -> None:
    from hoodwink.cli._progress import progress_reporter
    from hoodwink.reports import atomic_write_bytes

    with progress_reporter(label, quiet=state.quiet) as cb:
        curve = _with_progress(a.sweep, cb, model=clf, x=x, y=y, target=t, eps=budgets)
    json_path = _save(curve, folder / "curve.json", run)
    png = folder / "curve.png"
    atomic_write_bytes(png, curve.plot())
    if as_json:
        figures: dict[str, Any] = {
            "attack": repr(a), "norm": a.norm, "eps": budgets,
            "robust_accuracy": curve.robust_accuracy(),
            "success_rate": [_finite(v) for v in curve.success_rate()],
        }
        typer.echo(json.dumps(figures | run | {"record": str(json_path), "plot": str(png)},
                              indent=2))
        return
    console.print(f"{a!r} on {run['model']}, data {run['data']}", highlight=False)
    console.print(f"budgets ({a.norm}): " + "; ".join(_budget_with_grid(e, a.norm, clf)
                                                     for e in budgets), highlight=False)
    typer.echo(str(curve.table()))
    console.print(f"record written to {json_path}; plot {png}", highlight=False)


def _finite(v: float) -> float | None:
    return None if v != v else v


def _save(obj: Any, path: Path, run: dict[str, Any]) -> Path:
    """Save a result or curve with its own ``save`` and add the run's provenance."""
    from hoodwink.reports import atomic_write_text

    written = Path(obj.save(path))
    rec = json.loads(written.read_text(encoding="utf-8"))
    rec["run"] = run
    atomic_write_text(written, json.dumps(rec, indent=2, allow_nan=False) + "\n")
    return written


# ---------------------------------------------------------------------- budgets
def _uniform_span(clf: Classifier) -> float | None:
    lo, hi = clf.bounds
    span = (hi - lo).flatten()
    first = float(span[0])
    return first if bool((span == span[0]).all()) else None


def budget_text(e: float, norm: str, clf: Classifier) -> str:
    """A budget in its norm's units: L∞ on a [0, 1] range also as k/255; L2/L1 plain."""
    span = _uniform_span(clf)
    if norm == "linf" and span is not None and abs(span - 1.0) < 1e-12:
        return f"{e:.6g} (= {e * 255:.6g}/255)"
    return f"{e:.6g}"


def grid_budget(e: float, clf: Classifier) -> str | None:
    """What an L∞ budget allows on the model's grid, or None without ``levels``.

    The base class snaps results to the grid with
    :func:`hoodwink.attacks._norms.quantize`, which moves each feature by at most
    ``whole_steps(eps, step)`` whole steps of ``step = (upper - lower) / (levels - 1)``.
    """
    levels = clf.levels
    if levels is None:
        return None
    import torch

    from hoodwink.attacks._norms import whole_steps

    lo, hi = clf.bounds
    steps = whole_steps(torch.tensor(e, dtype=torch.float64), (hi - lo) / (levels - 1))
    k_min, k_max = int(steps.min()), int(steps.max())
    if k_min != k_max:
        return f"{k_min} to {k_max} steps of the {levels}-level grid (per feature)"
    if levels == 256:
        return f"{k_min}/255 on the 8-bit grid"
    return f"{k_min}/{levels - 1} of the range on the {levels}-level grid"


def _budget_with_grid(e: float, norm: str, clf: Classifier) -> str:
    grid = grid_budget(e, clf) if norm == "linf" else None
    return budget_text(e, norm, clf) + (f" [{grid}]" if grid else "")


def budget_rows(e: float, norm: str, clf: Classifier) -> list[tuple[str, str]]:
    """Table rows describing a budget: ``eps`` and, for L∞ with levels, the grid budget."""
    rows = [(f"eps ({norm})", budget_text(e, norm, clf))]
    grid = grid_budget(e, clf) if norm == "linf" else None
    if grid is not None:
        rows.append(("grid budget used", grid))
    return rows


def _summary_table(s: dict[str, Any], run: dict[str, Any], budget: list[tuple[str, str]]) -> None:
    table = Table(title=f"{s['attack']} on {run['model']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [("data", str(run["data"])), ("samples", str(s["n"]))]
    rows += budget if s["eps"] is not None else [("eps", "–")]
    rows.append(("targeted", str(s["targeted"])))
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
