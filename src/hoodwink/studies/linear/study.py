"""The essay's two studies: regularisation strength, and input dimension.

:func:`regularization_study` trains one linear classifier per weight decay and
measures what the essay reports by eye: validation accuracy, how rough the
templates are (:func:`~hoodwink.studies.linear.templates.roughness`), how far each
validation image is from changing its label (exact, closed form:
:func:`~hoodwink.studies.linear.fool.minimal_distance`), and how confident a wrong
answer an L∞ perturbation of fixed size reaches
(:func:`~hoodwink.studies.linear.fool.fooling_confidence`). :func:`essay_findings`
then states, from those numbers, whether the essay's conclusions hold.

:func:`dimension_study` trains models on the same images at growing
resolution and measures the activation change ``eps * ||w||_1`` that an L∞
perturbation of fixed size produces: the ε·n·m argument on real models.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hoodwink._validation import check_real, is_int, is_real, reject
from hoodwink.progress import ProgressCallback
from hoodwink.studies.linear.datasets import ImageData, resize
from hoodwink.studies.linear.fool import fooling_confidence, minimal_distance
from hoodwink.studies.linear.model import LinearModel
from hoodwink.studies.linear.sanity import LossKind
from hoodwink.studies.linear.templates import roughness
from hoodwink.studies.linear.train import TrainingLog, train_linear

__all__ = [
    "DimensionStudy",
    "RegularizationStudy",
    "StudyProgress",
    "dimension_study",
    "essay_findings",
    "regularization_study",
    "spearman",
]

_log = logging.getLogger(__name__)

#: ``progress(done, total, label)`` after each trained model (the library's
#: :data:`~hoodwink.progress.ProgressCallback`, under its former name).
StudyProgress = ProgressCallback


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences (ties get mean ranks).

    Returns ``nan`` when either sequence is constant or shorter than 2.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2 or x.size != y.size:
        return math.nan

    def ranks(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size, dtype=np.float64)
        r[order] = np.arange(v.size, dtype=np.float64)
        for val in np.unique(v):
            same = v == val
            r[same] = r[same].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _check_decays(weight_decays: Sequence[float]) -> list[float]:
    ok = (isinstance(weight_decays, Sequence) and len(weight_decays) >= 2
          and all(is_real(v) and math.isfinite(float(v)) and v > 0 for v in weight_decays))
    if not ok:
        reject("regularization_study", "weight_decays", weight_decays,
               "a list of at least 2 positive floats", hint="E.g. 1e-6, 1e-4, 1e-2, 1.")
    return sorted(float(v) for v in weight_decays)


def model_measures(
    model: LinearModel, x_val: torch.Tensor, y_val: torch.Tensor, *, eps: float
) -> dict[str, float]:
    """The per-model figures of the regularisation study.

    Returns
    -------
    dict
        ``val_accuracy``; ``roughness`` (mean over classes); ``weight_norm``
        (Frobenius); ``mean_l2_distance`` and ``mean_linf_distance`` (exact
        minimal perturbation that changes the prediction, averaged over all
        validation images, box ignored); ``fooling_confidence`` (mean over
        images of the best wrong-class probability an L∞ perturbation of
        size ``eps`` reaches, clipped to [0, 1]); ``fooled_rate`` (share of
        images whose prediction such a perturbation changes).
    """
    acc = float((model.predict(x_val) == y_val).to(torch.float64).mean())
    d2, _ = minimal_distance(model, x_val, norm="l2")
    dinf, _ = minimal_distance(model, x_val, norm="linf")
    conf, fooled = fooling_confidence(model, x_val, eps=eps)
    return {
        "val_accuracy": acc,
        "roughness": float(roughness(model.templates()).mean()),
        "weight_norm": float(model.weight.to(torch.float64).norm()),
        "mean_l2_distance": float(d2[torch.isfinite(d2)].mean()),
        "mean_linf_distance": float(dinf[torch.isfinite(dinf)].mean()),
        "fooling_confidence": float(conf.mean()),
        "fooled_rate": float(fooled.to(torch.float64).mean()),
    }


@dataclass
class RegularizationStudy:
    """Results of :func:`regularization_study`, one row per weight decay (ascending).

    Attributes
    ----------
    rows : list of dict
        ``weight_decay``, ``lr`` (as used), the figures of :func:`model_measures`,
        ``train_accuracy``, ``reg_share``, ``flags`` (names of sanity checks
        that fired) and ``time_s``.
    models : list of LinearModel
    logs : list of TrainingLog
    config : dict
    time_s : float
    """

    rows: list[dict[str, Any]]
    models: list[LinearModel]
    logs: list[TrainingLog]
    config: dict[str, Any]
    time_s: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (without the weights)."""
        return {"config": self.config, "rows": self.rows, "findings": self.findings,
                "time_s": self.time_s}


def regularization_study(
    data: ImageData,
    weight_decays: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    *,
    kind: LossKind = "softmax",
    init_std: float = 1e-3,
    lr: float = 0.05,
    epochs: int = 30,
    batch_size: int = 128,
    seed: int = 0,
    eps: float = 0.05,
    progress: StudyProgress | None = None,
) -> RegularizationStudy:
    """Train one model per weight decay and measure accuracy, smoothness and foolability.

    Parameters
    ----------
    data : ImageData
    weight_decays : sequence of float > 0
        At least two; the essay's claims need a span of several orders of
        magnitude (the CLI default spans six).
    kind, init_std, lr, epochs, batch_size, seed
        Passed to :func:`~hoodwink.studies.linear.train_linear`. The learning rate is
        capped at ``0.1 / weight_decay`` per model: above about 2 the decay
        step of SGD diverges, and well below 1 is needed for the minibatch
        noise not to dominate the small weights that a strong decay leaves.
        The row records the lr used.
    eps : float, default 0.05
        L∞ budget of the fooling-confidence measure (in [0, 1] pixel units).
    progress : callable, optional
        ``progress(done, total, label)`` after each model.

    Returns
    -------
    RegularizationStudy
        With :attr:`~RegularizationStudy.findings` filled by :func:`essay_findings`.
    """
    decays = _check_decays(weight_decays)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    models: list[LinearModel] = []
    logs: list[TrainingLog] = []
    for i, wd in enumerate(decays):
        lr_used = min(lr, 0.1 / wd)
        model, log = train_linear(
            data.x_train, data.y_train, kind=kind, init_std=init_std, lr=lr_used,
            weight_decay=wd, epochs=epochs, batch_size=batch_size, seed=seed,
            num_classes=data.num_classes, class_names=data.class_names, warn=False,
        )
        row: dict[str, Any] = {"weight_decay": wd, "lr": lr_used}
        row.update(model_measures(model, data.x_val, data.y_val, eps=eps))
        row["train_accuracy"] = log.epochs[-1]["train_accuracy"] if log.epochs else None
        row["reg_share"] = log.reg_share
        row["flags"] = [f.check for f in log.flags]
        row["time_s"] = log.time_s
        rows.append(row)
        models.append(model)
        logs.append(log)
        _log.info("weight decay %g: val acc %.4f, roughness %.3f, L2 dist %.4g", wd,
                  row["val_accuracy"], row["roughness"], row["mean_l2_distance"])
        if progress is not None:
            progress(i + 1, len(decays), f"weight_decay={wd:g}")
    config = {"weight_decays": decays, "kind": kind, "init_std": init_std, "lr": lr,
              "epochs": epochs, "batch_size": batch_size, "seed": seed, "eps": eps,
              "data": data.describe()}
    study = RegularizationStudy(rows, models, logs, config, time.perf_counter() - t0)
    study.findings = essay_findings(rows)
    return study


def essay_findings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Judge the essay's regularisation claims from a study's rows.

    Each claim compares the least and the most regularised model (its
    *endpoint* test, which decides ``holds``) and also reports the Spearman
    correlation of the measure with log weight decay over all models and
    whether the trend is monotone across them.

    Claims (from "Breaking Linear Classifiers on ImageNet"):

    1. low regularisation gives noisier templates (roughness falls as weight decay grows);
    2. low regularisation works better (validation accuracy of the least
       regularised model exceeds that of the most regularised one);
    3. low regularisation is easier to fool: smaller minimal L2 distance,
    4. ... smaller minimal L∞ distance,
    5. ... and more confident wrong answers at a fixed eps.

    Returns
    -------
    list of dict
        ``claim``, ``measure``, ``expected`` ("decreasing" or "increasing"
        with weight decay), ``low`` and ``high`` (values at the ends),
        ``holds`` (bool), ``spearman`` and ``monotone`` (bool).
    """
    ordered = sorted(rows, key=lambda r: float(r["weight_decay"]))
    logs = [math.log10(float(r["weight_decay"])) for r in ordered]
    claims = [
        ("Low regularisation gives noisier templates", "roughness", "decreasing"),
        ("Low regularisation gives better validation accuracy", "val_accuracy", "decreasing"),
        ("Low regularisation is easier to fool (minimal L2 distance)", "mean_l2_distance",
         "increasing"),
        ("Low regularisation is easier to fool (minimal L∞ distance)", "mean_linf_distance",
         "increasing"),
        ("Low regularisation gives more confident fooling at fixed eps", "fooling_confidence",
         "decreasing"),
    ]
    out = []
    for claim, measure, expected in claims:
        vals = [float(r[measure]) for r in ordered]
        low, high = vals[0], vals[-1]
        holds = high > low if expected == "increasing" else high < low
        diffs = np.diff(np.asarray(vals))
        monotone = bool(np.all(diffs >= 0) if expected == "increasing" else np.all(diffs <= 0))
        out.append({"claim": claim, "measure": measure, "expected": expected, "low": low,
                    "high": high, "holds": bool(holds), "spearman": spearman(logs, vals),
                    "monotone": monotone})
    return out


@dataclass
class DimensionStudy:
    """Results of :func:`dimension_study`, one row per input size (ascending dimension).

    Attributes
    ----------
    rows : list of dict
        ``size`` [H, W], ``n`` (input dimension), ``val_accuracy``,
        ``mean_abs_weight`` (m), ``l1_norm`` (mean over classes of ``||w_c||_1``),
        ``activation_change`` (``eps * l1_norm``: the change of a class score
        under ``x + eps * sign(w_c)``, measured on validation images without
        clipping), ``activation_change_clipped`` (the same, clipped to [0, 1]),
        ``formula`` (``eps * n * m``), ``fixed_m_prediction`` (``eps * n * m0``
        with m0 from the smallest model: the essay's argument for a fixed
        weight size), ``mean_linf_distance`` and ``time_s``.
    config : dict
    time_s : float
    """

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    time_s: float = 0.0
    models: list[LinearModel] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {"config": self.config, "rows": self.rows, "time_s": self.time_s}


def dimension_study(
    data: ImageData,
    sizes: Sequence[tuple[int, int]] = ((7, 7), (14, 14), (28, 28), (56, 56)),
    *,
    eps: float = 0.01,
    weight_decay: float = 1e-3,
    kind: LossKind = "softmax",
    init_std: float = 1e-3,
    lr: float = 0.05,
    epochs: int = 30,
    batch_size: int = 128,
    seed: int = 0,
    scale_lr: bool = False,
    progress: StudyProgress | None = None,
) -> DimensionStudy:
    """Train on the same images at growing resolution; measure ``eps * ||w||_1``.

    Parameters
    ----------
    data : ImageData
        Resized (bilinear, antialiased) to each of ``sizes``.
    sizes : sequence of (H, W)
    eps : float, default 0.01
        L∞ perturbation size, fixed across models.
    weight_decay, kind, init_std, lr, epochs, batch_size, seed
        Training hyperparameters, the same for every size.
    scale_lr : bool, default False
        By default every size gets the same training recipe. With True,
        ``lr`` is divided by ``n / n0`` (the growth of the input dimension
        over the smallest size), the essay's lesson that high-dimensional
        input needs a lower learning rate. For *upsampled* images that makes
        the models exactly equivalent (each weight of the larger model is the
        smaller model's weight spread over the pixels it became), so
        ``||w||_1`` stays flat: a control showing that the growth comes from
        what the larger model learns, not from n alone.
    progress : callable, optional

    Returns
    -------
    DimensionStudy
    """
    if len(sizes) < 2 or any(len(s) != 2 or not all(is_int(v) and v >= 1 for v in s)
                             for s in sizes):
        reject("dimension_study", "sizes", sizes, "a list of at least 2 (height, width) "
               "pairs of ints >= 1", hint="E.g. [(7, 7), (14, 14), (28, 28)].")
    eps = check_real("dimension_study", "eps", eps, low=0, closed="neither")
    ordered = sorted(((int(h), int(w)) for h, w in sizes), key=lambda s: s[0] * s[1])
    channels = data.input_shape[0]
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    models = []
    n0 = ordered[0][0] * ordered[0][1] * channels
    m0: float | None = None
    for i, size in enumerate(ordered):
        xt = resize(data.x_train, size, None)
        xv = resize(data.x_val, size, None)
        n = size[0] * size[1] * channels
        lr_n = lr * n0 / n if scale_lr else lr
        model, log = train_linear(
            xt, data.y_train, kind=kind, init_std=init_std, lr=lr_n,
            weight_decay=weight_decay, epochs=epochs, batch_size=batch_size, seed=seed,
            num_classes=data.num_classes, class_names=data.class_names, warn=False,
        )
        w = model.weight.to(torch.float64)
        m = float(w.abs().mean())
        m0 = m if m0 is None else m0
        flat = xv.reshape(xv.shape[0], -1).to(torch.float64)
        changes, clipped = [], []
        for c in range(model.num_classes):
            delta = eps * torch.sign(w[c])
            changes.append(float(((flat + delta) @ w[c] - flat @ w[c]).mean()))
            clipped.append(float(((flat + delta).clamp(0, 1) @ w[c] - flat @ w[c]).mean()))
        dinf, _ = minimal_distance(model, xv, norm="linf")
        rows.append({
            "size": list(size), "n": n,
            "val_accuracy": float((model.predict(xv) == data.y_val).to(torch.float64).mean()),
            "mean_abs_weight": m,
            "l1_norm": float(w.abs().sum(dim=1).mean()),
            "activation_change": float(np.mean(changes)),
            "activation_change_clipped": float(np.mean(clipped)),
            "formula": eps * n * m,
            "fixed_m_prediction": eps * n * m0,
            "mean_linf_distance": float(dinf[torch.isfinite(dinf)].mean()),
            "lr": lr_n,
            "flags": [f.check for f in log.flags],
            "time_s": log.time_s,
        })
        models.append(model)
        if progress is not None:
            progress(i + 1, len(ordered), f"{size[0]}x{size[1]}")
    config = {"sizes": [list(s) for s in ordered], "eps": eps, "weight_decay": weight_decay,
              "kind": kind, "init_std": init_std, "lr": lr, "epochs": epochs,
              "batch_size": batch_size, "seed": seed, "scale_lr": scale_lr,
              "data": data.describe()}
    return DimensionStudy(rows, config, time.perf_counter() - t0, models)
