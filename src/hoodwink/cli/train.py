"""``hoodwink adv-train``: adversarial training (Madry et al., 2018) from the shell.

A thin shell over :func:`hoodwink.training.adversarial_train` and
:meth:`hoodwink.training.TrainingResult.evaluate` / ``save``: every option maps
onto one of their arguments. ``--data mnist`` trains on the 4,000 bundled
training digits and reports on the 1,000 held-out ones. Writes the weights
(``--out``, a ``.safetensors`` file; default ``./out/adv-train/robust.safetensors``)
and the JSON record beside them; prints a summary, or the record with
``--json``. Progress goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hoodwink.cli._common import (
    check_budget,
    check_output,
    console,
    parse_eps,
    run_guarded,
    state,
)
from hoodwink.cli._study_options import JsonOpt, SeedOpt

if TYPE_CHECKING:
    from hoodwink.data.files import Dataset
    from hoodwink.models.torch import TorchClassifier

__all__ = ["register"]

_DEFAULT_FILE = "robust.safetensors"


def register(app: typer.Typer) -> None:
    """Add the ``adv-train`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the ``hoodwink`` command, or a fresh one in
        tests).
    """
    app.command("adv-train")(adv_train_cmd)


def adv_train_cmd(
    arch: Annotated[
        str, typer.Option(help="The network to train: package.module:Class or file.py:Class, "
                               "built with no arguments (this RUNS that code).")
    ] = "hoodwink.zoo.mnist:MnistCNN",
    data: Annotated[
        str, typer.Option(help="Training data: mnist (the 4,000 bundled training digits; the "
                               "1,000 held-out ones are the test data), a folder of class "
                               "sub-folders of images, or an .npz / .safetensors file with x "
                               "and y.")
    ] = "mnist",
    test_data: Annotated[
        str | None, typer.Option(help="Held-out data for the report (default: the held-out "
                                      "digits for --data mnist, none otherwise).")
    ] = None,
    eps: Annotated[str, typer.Option(help="Training budget, e.g. 0.3 or 8/255.")] = "0.3",
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 20,
    steps: Annotated[int, typer.Option(help="PGD steps per batch.")] = 7,
    stepsize: Annotated[
        str | None, typer.Option(help="PGD step size (default 2.5·eps/steps).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per training step.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = 1e-3,
    lr_schedule: Annotated[
        str, typer.Option(help="constant, or cosine (decay to 0 over the run).")
    ] = "constant",
    eps_warmup_epochs: Annotated[
        int, typer.Option(help="Ramp eps linearly from 0 over this many epochs.")
    ] = 0,
    clean_fraction: Annotated[
        float, typer.Option(help="Fraction of each batch trained on clean inputs.")
    ] = 0.0,
    bounds: Annotated[
        str | None, typer.Option(help="Bounds of raw inputs 'lo,hi' (default 0,1).")
    ] = None,
    levels: Annotated[
        int | None,
        typer.Option(help="Quantisation levels between the bounds (256 for 8-bit images)."),
    ] = None,
    n: Annotated[
        int | None, typer.Option(help="Train on the first N samples (default: all).")
    ] = None,
    eval_n: Annotated[
        int | None, typer.Option(help="Report on the first N held-out samples (default: all).")
    ] = None,
    eval_steps: Annotated[
        int, typer.Option(help="PGD steps of the held-out robust accuracy.")
    ] = 40,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle",
                           help="Allow pickle files for --data; unpickling runs code in them."),
    ] = False,
    seed: SeedOpt = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Weights file (.safetensors); the JSON record goes beside it. "
                          f"Default ./out/adv-train/{_DEFAULT_FILE}."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Adversarially train a network (PGD, Madry et al. 2018); write weights and a record."""

    def go() -> None:
        from hoodwink.errors import ConfigError

        path = check_output(out, "adv-train", kind="file", filename=_DEFAULT_FILE)
        if path.suffix.lower() != ".safetensors":
            raise ConfigError(
                f"--out names the weights file, which must end in .safetensors; got {path}. "
                f"E.g. --out {path.with_suffix('.safetensors')}."
            )
        check_output(path.with_suffix(".json"), "adv-train", kind="file")
        budget = parse_eps(eps)
        import hoodwink

        # The held-out attack's settings are checked now, not after the training.
        hoodwink.PGD(norm=norm, steps=eval_steps, seed=seed)  # type: ignore[arg-type]
        step = parse_eps(stepsize) if stepsize is not None else None
        b = _bounds(bounds)
        clf = _network(arch, b, levels)
        train, test = _datasets(data, test_data, trust_pickle)
        if n is not None:
            train = train.head(n)
        if test is not None and eval_n is not None:
            test = test.head(eval_n)
        dims = 1
        for d in train.x.shape[1:]:
            dims *= int(d)
        check_budget(budget, norm=norm, model=clf, dims=dims, text=eps)

        from hoodwink.cli._progress import progress_reporter
        from hoodwink.training import adversarial_train

        with progress_reporter("adversarial training", quiet=state.quiet) as cb:
            result = adversarial_train(
                clf.module, train.x, train.y, eps=budget, norm=norm,  # type: ignore[arg-type]
                steps=steps, stepsize=step, epochs=epochs, batch_size=batch_size, lr=lr,
                lr_schedule=lr_schedule,  # type: ignore[arg-type]
                bounds=b if b is not None else (0.0, 1.0), levels=levels, seed=seed,
                clean_fraction=clean_fraction, eps_warmup_epochs=eps_warmup_epochs,
                progress=cb)
        evaluation: dict[str, Any] | None = None
        if test is not None:
            with progress_reporter(f"PGD-{eval_steps} on {len(test)} held-out samples",
                                   quiet=state.quiet) as cb:
                evaluation = result.evaluate(test.x, test.y, steps=eval_steps, seed=seed,
                                             progress=cb)
            evaluation["data"] = test.source
        run = {"arch": arch, "data": train.source, "n_data": len(train)}
        weights, record_path = result.save(path, evaluation=evaluation, run=run)
        load = f"hoodwink attack --model {weights} --arch {arch}"
        if bounds is not None:
            load += f" --bounds {bounds}"
        if levels is not None:
            load += f" --levels {levels}"
        if as_json:
            rec = json.loads(record_path.read_text(encoding="utf-8"))
            rec["outputs"] = {"weights": str(weights), "record": str(record_path)}
            typer.echo(json.dumps(rec, indent=2))
            return
        _print_summary(result.to_dict(), evaluation, arch)
        console.print(f"weights: {weights}\nrecord: {record_path}\nattack it: {load}",
                      highlight=False)

    run_guarded(go)


def _bounds(text: str | None) -> tuple[float, float] | None:
    from hoodwink.errors import ConfigError

    if text is None:
        return None
    try:
        parts = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        parts = []
    if len(parts) != 2:
        raise ConfigError(f"--bounds takes two numbers lo,hi, e.g. 0,1. Got {text!r}.")
    return parts[0], parts[1]


def _network(arch: str, bounds: tuple[float, float] | None,
             levels: int | None) -> TorchClassifier:
    """A fresh network from ``--arch``, in an adapter carrying the flags' input domain."""
    from hoodwink.errors import ConfigError
    from hoodwink.models.loading import load_model
    from hoodwink.models.torch import TorchClassifier

    clf = load_model(arch, bounds=bounds, levels=levels)
    if not isinstance(clf, TorchClassifier):
        raise ConfigError(
            f"--arch {arch} gave a {type(clf).__name__}; adv-train trains PyTorch networks, "
            "so --arch must name a torch.nn.Module class (package.module:Class or "
            "file.py:Class)."
        )
    return clf


def _datasets(data: str, test_data: str | None,
              trust_pickle: bool) -> tuple[Dataset, Dataset | None]:
    """The training data and the held-out data of the report (None: no report)."""
    from hoodwink.data.files import Dataset, load_dataset

    if data.strip().lower() == "mnist":
        from hoodwink.data.mnist import load_mnist

        x, y = load_mnist("train")
        train = Dataset(x, y, tuple(str(i) for i in range(10)), "mnist (train split)")
        default_test: Dataset | None = load_dataset("mnist")
    else:
        train = load_dataset(data, trust_pickle=trust_pickle)
        default_test = None
    test = (load_dataset(test_data, trust_pickle=trust_pickle) if test_data is not None
            else default_test)
    return train, test


def _print_summary(record: dict[str, Any], evaluation: dict[str, Any] | None,
                   arch: str) -> None:
    from rich.table import Table

    cfg = record["config"]
    table = Table(title=f"adversarial training of {arch}: {cfg['norm']} eps {cfg['eps']:g}, "
                        f"PGD-{cfg['steps']}, {cfg['n_train']} samples",
                  title_justify="left")
    for col in ("epoch", "eps", "loss", "clean acc", "PGD acc", "time"):
        table.add_column(col, justify="right")
    for h in record["history"]:
        adv = h["adversarial_accuracy"]
        table.add_row(str(h["epoch"]), f"{h['eps']:.4g}", f"{h['loss']:.4f}",
                      f"{h['clean_accuracy']:.2%}", "–" if adv is None else f"{adv:.2%}",
                      f"{h['time_s']:.1f} s")
    console.print(table)
    if evaluation is not None:
        robust = ", ".join(f"{r:.2%} at eps {e:g}"
                           for e, r in zip(evaluation["eps"], evaluation["robust_accuracy"],
                                           strict=True))
        console.print(f"held-out ({evaluation['data']}, n={evaluation['n']}): clean accuracy "
                      f"{evaluation['clean_accuracy']:.2%}; PGD robust accuracy {robust}",
                      highlight=False)
    console.print(f"{record['time_s']:.1f} s", highlight=False)
