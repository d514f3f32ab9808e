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
from hoodwink.stats import SMALL_N, rate_text, wilson
from hoodwink.studies._record import Rendered

if TYPE_CHECKING:
    from hoodwink.studies.background import BackgroundStudy

__all__ = ["page", "report", "write_background_report"]

#: Noise images of each round's noise_as_background, for records made before the
#: config stored it.
_NOISE_SIZE = 200


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
    n_test = int(c["test_size"])
    prev_n = [0] + [r.fooling_n for r in study.rounds[:-1]]
    rep.text(
        f"Rates show their count; over fewer than {SMALL_N} images also their Wilson 95% "
        "interval."
    )
    rep.table(
        ["round", "background imgs", "clean acc", "prev. fooling rejected",
         "mean conf", f"≥ {c['confidence']:g}", "≥ 0.99", "steps mean", "steps median"],
        [[r.round, r.background_size, _rate(r.clean_accuracy, n_test),
          _rate(r.previous_rejected, pn), r.confidence_mean,
          _rate(r.reached_threshold, r.fooling_n), _rate(r.reached_099, r.fooling_n),
          r.steps_mean, r.steps_median] for r, pn in zip(study.rounds, prev_n, strict=True)],
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


def _rate(rate: float | None, n: int) -> str:
    """A per-round fraction of ``n`` images as a count (and interval when n is small)."""
    if rate is None or n < 1:
        return "–"
    return rate_text(round(rate * n), n)


def _counted(rate: float | None, n: int) -> tuple[float, float, float] | None:
    """(percent, lower error, upper error) of a fraction of ``n``, Wilson 95%."""
    if rate is None or n < 1 or rate != rate:
        return None
    k = round(rate * n)
    lo, hi = wilson(k, n)
    pct = 100 * k / n
    return pct, pct - 100 * lo, 100 * hi - pct


def _rate_series(
    ax: Any, xs: list[float], rates: list[float | None], ns: list[int], *, dx: float,
    fmt: str, label: str, filled: bool = True,
) -> None:
    pts = [(x + dx, c) for x, r, n in zip(xs, rates, ns, strict=True)
           if (c := _counted(r, n)) is not None]
    if not pts:
        return
    ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts],
                yerr=[[p[1][1] for p in pts], [p[1][2] for p in pts]], fmt=fmt, capsize=3,
                ms=6, label=label, mfc=None if filled else "white")


def _figure(study: BackgroundStudy) -> bytes:
    """Five panels, each with its own labelled axis; legends sit below the data.

    Series that coincide (e.g. 100% of noise and 100% of the previous fooling
    images called background) are drawn side by side, offset along x, with
    distinct markers; every rate carries its Wilson 95% interval.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = study.rounds
    c = study.config
    xs = [float(r.round) for r in rs]
    thr = c["confidence"]
    n_test = int(c["test_size"])
    n_noise = int(c.get("noise_size", _NOISE_SIZE))
    n_fool = [r.fooling_n for r in rs]
    n_prev = [0] + n_fool[:-1]
    fig = plt.figure(figsize=(14, 8.6), layout="constrained")
    axes = fig.subplots(2, 3)
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "fontsize": 8,
             "frameon": False, "ncol": 1}

    ax = axes[0][0]
    _rate_series(ax, xs, [r.clean_accuracy for r in rs], [n_test] * len(rs), dx=-0.08,
                 fmt="o-", label="classified correctly")
    _rate_series(ax, xs, [r.clean_as_background for r in rs], [n_test] * len(rs), dx=0.08,
                 fmt="s--", label="classified as background", filled=False)
    ax.set_ylim(-3, 103)
    ax.set_ylabel(f"% of {n_test} clean test digits")
    ax.set_title("(a) clean digits")

    ax = axes[0][1]
    _rate_series(ax, xs, [r.noise_as_background for r in rs], [n_noise] * len(rs), dx=-0.1,
                 fmt="s-", label=f"uniform noise ({n_noise} images)")
    _rate_series(ax, xs, [r.previous_rejected for r in rs], n_prev, dx=0.1, fmt="D--",
                 label="previous round's fooling images", filled=False)
    ax.set_ylim(-3, 103)
    ax.set_ylabel("% classified as background")
    ax.set_title("(b) what the network calls background")

    ax = axes[0][2]
    _rate_series(ax, xs, [r.reached_threshold for r in rs], n_fool, dx=-0.1, fmt="o-",
                 label=f"reach ≥ {thr:g}")
    _rate_series(ax, xs, [r.reached_099 for r in rs], n_fool, dx=0.1, fmt="^--",
                 label="reach ≥ 0.99", filled=False)
    ax.set_ylim(-3, 103)
    ax.set_ylabel(f"% of the {n_fool[0]} new fooling images")
    ax.set_title(f"(c) new fooling images (one try, ≤ {c['steps']} steps)")

    ax = axes[1][0]
    ax.plot(xs, [r.start_confidence_mean for r in rs], "d:", label="at the noise start")
    ax.plot(xs, [r.confidence_mean for r in rs], "o-", label="reached (mean)")
    ax.axhline(thr, color="grey", lw=0.8, ls="--", label=f"threshold {thr:g}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("target-class probability (mean)")
    ax.set_title("(d) confidence of the fooling images")

    ax = axes[1][1]
    ax.plot(xs, [r.steps_median for r in rs], "o-", label="median")
    ax.plot(xs, [r.steps_mean for r in rs], "^--", label="mean")
    ax.axhline(c["steps"], color="grey", lw=0.8, ls="--", label=f"budget ({c['steps']})")
    ax.set_yscale("log")
    ax.set_ylabel(f"gradient steps to {thr:g} (log scale)")
    ax.set_title("(e) cost of a fooling image\n(a failure counts as the budget)")

    for row in axes:
        for ax in row:
            if not ax.has_data():
                continue
            ax.set_xlabel("round (background images at training)")
            ax.set_xticks(xs, [f"{r.round}\n({r.background_size})" for r in rs])
            ax.set_xlim(min(xs) - 0.4, max(xs) + 0.4)
            ax.grid(alpha=0.3)
            ax.legend(**below)
    text = axes[1][2]
    text.axis("off")
    text.text(0, 1, _figure_caption(study), va="top", ha="left", fontsize=8, wrap=True,
              transform=text.transAxes)
    fig.suptitle(f"Background-class defence on MnistCNN (11 classes), seed {study.seed}; "
                 "error bars: Wilson 95% intervals", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _figure_caption(study: BackgroundStudy) -> str:
    import textwrap

    c = study.config
    lines = [
        f"Round 0: MnistCNN trained {c['epochs']} epochs on {c['train_size']} digits.",
        f"Each round: {c['fooling_per_round']} fooling images from noise (dream, "
        f"stepsize {c['stepsize'] * 255:.3g}/255, stop at {c['confidence']:g}), added to "
        f"the background class, then "
        + (f"fine-tuned {c['epochs_per_round']} epochs." if c["retrain"] == "finetune"
           else f"retrained from scratch {c['epochs']} epochs."),
        "",
        "Verdict: " + ("effective" if study.effective else "not an effective defence")
        + " (effective = the last round's share reaching the threshold is at most half "
          "round 0's).",
    ]
    return "\n".join(textwrap.fill(line, 60) if line else "" for line in lines)
