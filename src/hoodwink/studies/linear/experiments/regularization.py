"""The regularisation study: ``run`` gives the record, ``report`` the plots and verdicts.

One model per weight decay (:func:`~hoodwink.studies.linear.regularization_study`);
the record keeps every row, the essay's findings and each model's templates as
drawn (rounded, at most 10 classes), so the measures plot and the template
rows come from the record alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hoodwink.progress import ProgressCallback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import as_array, body, figure, plain, png, rounded
from hoodwink.studies.linear.datasets import ImageData
from hoodwink.studies.linear.sanity import LossKind
from hoodwink.studies.linear.study import RegularizationStudy, regularization_study
from hoodwink.studies.linear.templates import template_images

__all__ = ["record", "report", "run"]

#: Classes per model in the template rows of the record and the figure.
ROW_CLASSES = 10


def run(
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
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Run :func:`~hoodwink.studies.linear.regularization_study` and return its record.

    Parameters are those of :func:`~hoodwink.studies.linear.regularization_study`.

    Returns
    -------
    dict
        :func:`record`: data only.
    """
    study = regularization_study(data, weight_decays, kind=kind, init_std=init_std, lr=lr,
                                 epochs=epochs, batch_size=batch_size, seed=seed, eps=eps,
                                 progress=progress)
    return record(study)


def record(study: RegularizationStudy) -> dict[str, Any]:
    """The record of a finished study: config, rows, findings, time and template rows.

    ``templates`` holds, per model, the first :data:`ROW_CLASSES` templates
    as drawn and the class names. A Spearman ρ that is undefined (a constant
    measure) is ``None``.
    """
    rec = study.to_dict()
    k = min(ROW_CLASSES, study.models[0].num_classes) if study.models else 0
    rec["templates"] = {
        "names": [study.models[0].name(j) for j in range(k)] if study.models else [],
        "images": [rounded(template_images(m)[:k]) for m in study.models],
    }
    return check_record(plain(rec), "linear regularization")


def report(record: Mapping[str, Any]) -> Rendered:
    """The page, ``measures.png`` and ``templates_by_weight_decay.png``, from the record."""
    r = body(record)
    rows = r["rows"]
    cfg = r["config"]
    rep = Report("linear.regularization", "Regularisation study: smoothness against "
                 "foolability", r)
    wd = [row["weight_decay"] for row in rows]
    held = sum(1 for f in r["findings"] if f["holds"])
    rep.text(
        f"{len(rows)} {cfg['kind']} models on {cfg['data']['source']} "
        f"({cfg['epochs']} epochs each), weight decay from {wd[0]:g} to {wd[-1]:g}; "
        f"{r['time_s']:.1f} s in all. Roughness is the sum of squared differences of "
        "neighbouring template pixels over the template's sum of squares (0 for a flat "
        "template, about 4 for white noise), averaged over classes. Minimal distances are "
        "exact (closed form for a linear model, box bounds ignored) and averaged over all "
        "validation images; the wrong-class confidence is the best probability of a wrong "
        f"class after the L∞ perturbation eps·sign(w_t − w_k) with eps = {cfg['eps']:g}, "
        "clipped to [0, 1]."
    )
    rep.table(
        ["weight decay", "lr used", "val acc", "roughness", "‖W‖", "mean L2 dist",
         "mean L∞ dist", "wrong-class conf.", "fooled at eps", "reg share", "flags"],
        [[row["weight_decay"], row["lr"], row["val_accuracy"], row["roughness"],
          row["weight_norm"], row["mean_l2_distance"], row["mean_linf_distance"],
          row["fooling_confidence"], row["fooled_rate"], row["reg_share"],
          ", ".join(row["flags"]) or "–"] for row in rows],
    )
    rep.heading(f"Do the essay's findings hold? {held} of {len(r['findings'])} do")
    rep.table(
        ["claim", "least regularised", "most regularised", "holds", "Spearman ρ vs log wd",
         "monotone"],
        [[f["claim"], f["low"], f["high"], "yes" if f["holds"] else "NO",
          "–" if f["spearman"] is None else f["spearman"],
          "yes" if f["monotone"] else "no"] for f in r["findings"]],
    )
    rep.text("A claim holds when the least and the most regularised models differ in the "
             "stated direction; ρ and 'monotone' say whether the whole sweep agrees.")
    rep.figure("measures.png", "Measures against weight decay")
    rep.figure("templates_by_weight_decay.png",
               "Templates of every model, one row per weight decay (top: least regularised)")
    return Rendered(rep, {"measures.png": _measures(rows, cfg["eps"]),
                          "templates_by_weight_decay.png": _template_rows(r)})


def _measures(rows: list[dict[str, Any]], eps: float) -> bytes:
    wd = [row["weight_decay"] for row in rows]
    panels = [("val_accuracy", "validation accuracy"),
              ("roughness", "template roughness (0 flat, ~4 noise)"),
              ("mean_l2_distance", "mean minimal L2 distance"),
              ("mean_linf_distance", "mean minimal L∞ distance"),
              ("fooling_confidence", f"wrong-class confidence at eps={eps:g}")]
    fig = figure(3.2 * len(panels), 3.2)
    axes = fig.subplots(1, len(panels))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(wd, [row[key] for row in rows], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("weight decay")
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    return png(fig)


def _template_rows(r: Mapping[str, Any]) -> bytes:
    names = r["templates"]["names"]
    per_model = r["templates"]["images"]
    k, n = max(1, len(names)), max(1, len(per_model))
    fig = figure(1.2 * k, 1.25 * n + 0.3)
    axes = fig.subplots(n, k, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for i, (images, row) in enumerate(zip(per_model, r["rows"], strict=True)):
        imgs = as_array(images)
        for j in range(len(names)):
            ax = axes[i, j]
            if imgs[j].ndim == 3:
                ax.imshow(imgs[j])
            else:
                ax.imshow(imgs[j], cmap="RdBu_r", vmin=-1, vmax=1)
            if j == 0:
                ax.set_ylabel(f"{row['weight_decay']:.0e}", fontsize=7)
            if i == 0:
                ax.set_title(names[j], fontsize=7)
    fig.tight_layout()
    return png(fig, dpi=100)
