"""The dimension study: ``run`` gives the record, ``report`` the plot and table.

Models trained at growing input size
(:func:`~hoodwink.studies.linear.dimension_study`); the score change
``eps * ||w||_1`` that an L∞ perturbation of fixed size causes, against n.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hoodwink.progress import ProgressCallback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import body, figure, plain, png
from hoodwink.studies.linear.datasets import ImageData
from hoodwink.studies.linear.sanity import LossKind
from hoodwink.studies.linear.study import DimensionStudy, dimension_study

__all__ = ["record", "report", "run"]


def run(
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
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Run :func:`~hoodwink.studies.linear.dimension_study` and return its record.

    Parameters are those of :func:`~hoodwink.studies.linear.dimension_study`.

    Returns
    -------
    dict
        :func:`record`: ``config``, ``rows`` (one per size), ``time_s``; data only.
    """
    study = dimension_study(data, sizes, eps=eps, weight_decay=weight_decay, kind=kind,
                            init_std=init_std, lr=lr, epochs=epochs, batch_size=batch_size,
                            seed=seed, scale_lr=scale_lr, progress=progress)
    return record(study)


def record(study: DimensionStudy) -> dict[str, Any]:
    """The record of a finished :class:`~hoodwink.studies.linear.DimensionStudy`."""
    return check_record(plain(study.to_dict()), "linear dimension")


def report(record: Mapping[str, Any]) -> Rendered:
    """The page and ``dimension.png``, from the record alone."""
    r = body(record)
    rows = r["rows"]
    cfg = r["config"]
    eps = cfg["eps"]
    rep = Report("linear.dimension", "Why dimension matters: eps·‖w‖₁ against n", r)
    first, last = rows[0], rows[-1]
    growth_n = last["n"] / first["n"]
    growth_change = last["activation_change"] / max(first["activation_change"], 1e-300)
    rep.text(
        f"The same images resized to {', '.join('x'.join(map(str, row['size'])) for row in rows)}"
        f"; one {cfg['kind']} model per size (weight decay {cfg['weight_decay']:g}). A "
        f"perturbation eps·sign(w_c) with eps = {eps:g} changes class c's score by exactly "
        "eps·‖w_c‖₁ = eps·n·m (m the mean |weight|), the essay's ε·n·m. From the smallest to "
        f"the largest input the dimension grew {growth_n:.3g}x and the measured score change "
        f"{growth_change:.3g}x; with m held at the smallest model's value it would have grown "
        f"{growth_n:.3g}x."
    )
    rep.table(
        ["size", "n", "val acc", "m = mean |w|", "ε‖w‖₁ (measured)", "ε‖w‖₁ clipped",
         "ε·n·m (fixed m)", "mean min L∞ dist"],
        [["x".join(map(str, row["size"])), row["n"], row["val_accuracy"],
          row["mean_abs_weight"], row["activation_change"], row["activation_change_clipped"],
          row["fixed_m_prediction"], row["mean_linf_distance"]] for row in rows],
    )
    rep.figure("dimension.png", "Score change against input dimension; minimal L∞ distance")
    return Rendered(rep, {"dimension.png": _plot(rows, eps)})


def _plot(rows: list[dict[str, Any]], eps: float) -> bytes:
    fig = figure(10, 3.6)
    axes = fig.subplots(1, 2)
    n = [row["n"] for row in rows]
    axes[0].plot(n, [row["activation_change"] for row in rows], marker="o",
                 label="trained models: ε‖w‖₁ (measured, unclipped)")
    axes[0].plot(n, [row["activation_change_clipped"] for row in rows], marker="s",
                 label="trained models, clipped to [0, 1]")
    axes[0].plot(n, [row["fixed_m_prediction"] for row in rows], ls="--", color="grey",
                 label="ε·n·m with m fixed at the smallest model")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("input dimension n")
    axes[0].set_ylabel(f"score change at ε = {eps:g}")
    axes[0].legend(fontsize=7)
    axes[1].plot(n, [row["mean_linf_distance"] for row in rows], marker="o")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("input dimension n")
    axes[1].set_ylabel("mean minimal L∞ distance to flip")
    fig.tight_layout()
    return png(fig)
