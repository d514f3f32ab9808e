"""Training as a study: ``run`` trains and returns the record, ``report`` draws the page.

The record holds the whole training log (loss per step, metrics per epoch,
sanity flags) and the templates as drawn, so the loss figure and the template
grid come from the record alone. The weights themselves go to a
``.safetensors`` file when ``run`` is given ``model_file``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hoodwink.progress import ProgressCallback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import body, figure, never, plain, png
from hoodwink.studies.linear.datasets import ImageData
from hoodwink.studies.linear.experiments.templates import draw, template_record
from hoodwink.studies.linear.model import LinearModel
from hoodwink.studies.linear.sanity import (
    EXPLODE_FACTOR,
    INITIAL_LOSS_HIGH,
    INITIAL_LOSS_LOW,
    MIN_REG_SHARE,
    LossKind,
)
from hoodwink.studies.linear.train import TrainingLog, train_linear

__all__ = ["record", "report", "run", "summary"]


def run(
    data: ImageData,
    *,
    kind: LossKind = "softmax",
    init_std: float = 1e-3,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    epochs: int = 30,
    batch_size: int = 128,
    momentum: float = 0.9,
    seed: int = 0,
    model_file: str | Path | None = None,
    warn: bool = True,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train with :func:`~hoodwink.studies.linear.train_linear` and return the record.

    Parameters
    ----------
    data : ImageData
        Trained on ``x_train``, validated on ``x_val`` after every epoch.
    kind, init_std, lr, weight_decay, epochs, batch_size, momentum, seed, warn, progress
        As in :func:`~hoodwink.studies.linear.train_linear`.
    model_file : str or Path, optional
        Save the trained model there (safetensors); the record names the file.

    Returns
    -------
    dict
        :func:`record`: data only.
    """
    model, log = train_linear(
        data.x_train, data.y_train, kind=kind, init_std=init_std, lr=lr,
        weight_decay=weight_decay, epochs=epochs, batch_size=batch_size, momentum=momentum,
        seed=seed, num_classes=data.num_classes, class_names=data.class_names,
        x_val=data.x_val, y_val=data.y_val, warn=warn, progress=progress,
    )
    saved = model.save(model_file) if model_file is not None else None
    return record(model, log, data, model_file=saved)


def record(model: LinearModel, log: TrainingLog, data: ImageData, *,
           model_file: str | Path | None = None) -> dict[str, Any]:
    """The record of a finished training: data, log, final metrics, thresholds, templates.

    Parameters
    ----------
    model : LinearModel
    log : TrainingLog
    data : ImageData
    model_file : str or Path, optional
        Where the model was saved; the record keeps its file name.
    """
    last = log.epochs[-1] if log.epochs else {}
    rec = plain({
        "data": data.describe(), "training": log.to_dict(),
        "model_file": Path(model_file).name if model_file is not None else None,
        "model": {"kind": model.kind, "input_shape": list(model.input_shape),
                  "num_classes": model.num_classes},
        "final": {"data_loss": last.get("data_loss"), "reg_loss": last.get("reg_loss"),
                  "train_accuracy": last.get("train_accuracy"),
                  "val_accuracy": last.get("val_accuracy")},
        "thresholds": {"initial_loss_ratio": [INITIAL_LOSS_LOW, INITIAL_LOSS_HIGH],
                       "explode_factor": EXPLODE_FACTOR, "min_reg_share": MIN_REG_SHARE},
        "templates": template_record(model),
    })
    return check_record(rec, "linear train")


def _status(flags: list[dict[str, Any]], check: str) -> str:
    return "FLAGGED" if any(f["check"] == check for f in flags) else "ok"


def report(record: Mapping[str, Any]) -> Rendered:
    """The page, ``loss.png`` and ``templates.png``, from the record alone."""
    r = body(record)
    tr = r["training"]
    th = r["thresholds"]
    low, high = th["initial_loss_ratio"]
    rep = Report("linear.train", f"Linear {r['model']['kind']} classifier on "
                 f"{r['data']['source']}", r)
    rep.heading("Setup")
    rep.table(["parameter", "value"], [[k, str(v)] for k, v in tr["config"].items()])
    rep.heading("Sanity checks")
    rep.table(
        ["check", "measured", "healthy", "status"],
        [
            ["initial loss", never(tr["initial_loss"]),
             f"{low:g}–{high:g} × {tr['expected_initial_loss']:.3g}",
             _status(tr["flags"], "initial_loss")],
            ["loss explosion", "diverged" if tr["diverged"] else "no",
             f"below {th['explode_factor']:g} × initial loss",
             _status(tr["flags"], "exploding_loss")],
            ["regularisation share of final loss", f"{100 * tr['reg_share']:.3g}%",
             f">= {100 * th['min_reg_share']:g}%", _status(tr["flags"], "weak_regularization")],
        ],
    )
    for f in tr["flags"]:
        rep.text(f"**{f['warning']}**: {f['message']}")
    rep.heading("Result")
    rep.text(summary(r))
    rep.figure("loss.png", "Minibatch loss per step and accuracy per epoch")
    rep.figure("templates.png", "Class templates (weights reshaped to images)")
    return Rendered(rep, {"loss.png": _loss_figure(tr), "templates.png": draw(r["templates"])})


def summary(record: Mapping[str, Any]) -> str:
    """One paragraph on how training ended, from the record: the page's and the CLI's text.

    A diverged run says so, with the step and how many epochs completed, instead
    of a final loss and plateau it does not have.
    """
    tr = record["training"]
    fin = record["final"]
    done = len(tr["epochs"])
    epochs = f"{done} epoch{'' if done == 1 else 's'}"
    if tr["diverged"]:
        steps = len(tr["step_losses"])
        kept = (f"the model keeps the weights of epoch {done}" if done
                else "no epoch completed, so the model keeps its initial random weights")
        text = (f"Training diverged (the loss exploded) at step {steps}, after {epochs} "
                f"({tr['time_s']:.2f} s); {kept}.")
        if not done:
            return text
        return (f"{text} At epoch {done}: training loss {_num(fin['data_loss'])} + "
                f"regularisation {_num(fin['reg_loss'])}, train accuracy "
                f"{_num(fin['train_accuracy'])}, validation accuracy "
                f"{_num(fin['val_accuracy'])}.")
    plateau = tr["plateau_epoch"]
    plateau_s = "" if tr["plateau_time_s"] is None else f", {tr['plateau_time_s']:.3g} s"
    where = ("" if plateau is None else
             f"; the loss reached within 1% of its final value at epoch {plateau}{plateau_s}")
    return (
        f"After {epochs} ({tr['time_s']:.2f} s{where}): "
        f"training loss {_num(fin['data_loss'])} + regularisation {_num(fin['reg_loss'])}, "
        f"train accuracy {_num(fin['train_accuracy'])}, validation accuracy "
        f"{_num(fin['val_accuracy'])}."
    )


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4g}"


def _loss_figure(tr: Mapping[str, Any]) -> bytes:
    fig = figure(10, 3.6)
    ax = fig.subplots(1, 2)
    steps = np.asarray([np.nan if v is None else v for v in tr["step_losses"]],
                       dtype=np.float64)
    expected = tr["expected_initial_loss"]
    ax[0].plot(np.arange(1, steps.size + 1), steps, lw=0.6, label="minibatch data loss")
    ax[0].axhline(expected, color="grey", ls="--", label=f"expected at init ({expected:.3g})")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("loss")
    ax[0].set_yscale("log")
    ax[0].legend(fontsize=7)
    epochs = tr["epochs"]
    if epochs:
        ep = [e["epoch"] for e in epochs]
        ax[1].plot(ep, [e["train_accuracy"] for e in epochs], label="train")
        if epochs[0]["val_accuracy"] is not None:
            ax[1].plot(ep, [e["val_accuracy"] for e in epochs], label="validation")
        ax[1].set_xlabel("epoch")
        ax[1].set_ylabel("accuracy")
        ax[1].legend(fontsize=7)
    fig.tight_layout()
    return png(fig)
