"""The background-class study's page and figure, from the record alone.

:func:`report` rebuilds the :class:`~hoodwink.studies.background.BackgroundStudy`
from its record and draws :func:`page` (the setup, the per-round table and the
verdict) and the three-panel figure of clean accuracy, fooling success and steps
per round; :func:`write_background_report` writes both. Import them from
:mod:`hoodwink.studies.background`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoodwink.reports import Report, ReportPaths
from hoodwink.studies._record import Rendered

if TYPE_CHECKING:
    from hoodwink.studies.background import BackgroundStudy

__all__ = ["page", "report", "write_background_report"]


def page(study: BackgroundStudy, figure: str | None = None) -> Report:
    """A :class:`~hoodwink.reports.Report` of the study (figure path relative to it)."""
    rep = Report("defence.background", "Background-class defence against fooling images",
                 study.to_dict())
    c = study.config
    rep.text(
        f"MnistCNN with 11 outputs (10 digits + background), trained on "
        f"{c['train_size']} MNIST digits for {c['epochs']} epochs; then {c['rounds']} "
        f"rounds of: grow {c['fooling_per_round']} fooling images from noise "
        f"(dream: ≤ {c['steps']} steps of {c['stepsize'] * 255:.3g}/255, stop at "
        f"{c['confidence']:.1%}), add them to the background class, "
        + ("fine-tune for " if c["retrain"] == "finetune" else "retrain from scratch for ")
        + f"{c['epochs_per_round'] if c['retrain'] == 'finetune' else c['epochs']} epochs. "
        f"Clean accuracy on {c['test_size']} held-out digits. Seed {study.seed}; "
        f"{study.time_s:.0f} s."
    )
    rep.heading("Per round")
    rep.table(
        ["round", "background imgs", "clean acc", "prev. fooling rejected",
         "mean conf", f"≥ {c['confidence']:g}", "≥ 0.99", "steps mean", "steps median"],
        [[r.round, r.background_size, r.clean_accuracy,
          "–" if r.previous_rejected is None else r.previous_rejected,
          r.confidence_mean, r.reached_threshold, r.reached_099, r.steps_mean,
          r.steps_median] for r in study.rounds],
    )
    if figure is not None:
        rep.figure(figure, "Clean accuracy, fooling success and steps needed, per round.")
    rep.heading("What it shows")
    rep.text(study.verdict)
    return rep


def report(record: Mapping[str, Any], *, stem: str = "background") -> Rendered:
    """The figure and the page of a background-class record, from the record alone.

    Parameters
    ----------
    record : dict
        From :func:`~hoodwink.studies.background.run`,
        :meth:`~hoodwink.studies.background.BackgroundStudy.to_dict` or the JSON read back.
    stem : str
        Name of the figure, ``<stem>.png``.
    """
    from hoodwink.studies.background import BackgroundStudy

    study = BackgroundStudy.from_dict(record)
    fig_name = f"{stem}.png"
    return Rendered(page(study, fig_name), {fig_name: _figure(study)})


def write_background_report(
    study: BackgroundStudy, folder: str | Path, *, stem: str = "background"
) -> ReportPaths:
    """Write the figure ``<stem>.png`` and the report ``<stem>.json/.md/.html``.

    Parameters
    ----------
    study : BackgroundStudy
    folder : path
        Created if missing.
    stem : str

    Returns
    -------
    ReportPaths
    """
    return report(study.to_dict(), stem=stem).write(folder, stem=stem)


def _figure(study: BackgroundStudy) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = study.rounds
    xs = [r.round for r in rs]
    thr = study.config["confidence"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    ax.plot(xs, [r.clean_accuracy for r in rs], "o-", label="clean test accuracy")
    ax.plot(xs, [r.noise_as_background for r in rs], "s--", label="noise → background")
    ax.set_ylim(0, 1.02)
    ax.set_title("clean digits and noise")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    ax.plot(xs, [r.reached_threshold for r in rs], "o-", label=f"reach ≥ {thr:g}")
    ax.plot(xs, [r.reached_099 for r in rs], "^-", label="reach ≥ 0.99")
    ax.plot(xs, [r.confidence_mean for r in rs], "x:", label="mean confidence")
    ax.plot(xs, [r.start_confidence_mean for r in rs], "d:", label="noise start's confidence")
    prev = [(r.round, r.previous_rejected) for r in rs if r.previous_rejected is not None]
    if prev:
        ax.plot([p[0] for p in prev], [p[1] for p in prev], "s--",
                label="prev. round's fooling → background")
    ax.set_ylim(0, 1.02)
    ax.set_title("new fooling images")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[2]
    ax.plot(xs, [r.steps_mean for r in rs], "o-", label=f"mean steps to {thr:g}")
    ax.plot(xs, [r.steps_median for r in rs], "^-", label=f"median steps to {thr:g}")
    ax.axhline(study.config["steps"], color="grey", lw=0.8, ls="--", label="step budget")
    ax.set_ylim(bottom=0)
    ax.set_title("gradient steps needed")
    ax.legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("round (background images added before it)")
        ax.set_xticks(xs)
    fig.suptitle("Background-class defence on MnistCNN (11 classes)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
