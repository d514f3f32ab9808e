"""The toy logistic regression as a study: ``run`` gives the record, ``report`` the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import body, figure, plain, png
from hoodwink.studies.linear.toy import TOY_W, TOY_X, toy_example

__all__ = ["report", "run"]


def run(
    alpha: float = 0.5,
    x: tuple[float, ...] = TOY_X,
    w: tuple[float, ...] = TOY_W,
    b: float = 0.0,
    *,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Compute :func:`~hoodwink.studies.linear.toy_example` and return its record.

    Parameters
    ----------
    alpha, x, w, b
        As in :func:`~hoodwink.studies.linear.toy_example` (defaults: the essay).
    progress : callable, optional
        ``progress(1, 1, message)`` once the numbers are computed.

    Returns
    -------
    dict
        ``x``, ``w``, ``b``, ``alpha``, ``x_adv``, ``score``, ``probability``,
        ``score_adv``, ``probability_adv`` and ``gain``; data only.

    Examples
    --------
    >>> rec = run()
    >>> rec["score"], rec["score_adv"], round(rec["probability_adv"], 4)
    (-3.0, 2.0, 0.8808)
    """
    tick = as_callback(progress)
    rec = plain(toy_example(alpha, x, w, b).to_dict())
    tick(1, 1, f"score {rec['score']:g} -> {rec['score_adv']:g}")
    return check_record(rec, "linear toy")


def report(record: Mapping[str, Any]) -> Rendered:
    """The page and the bar figure ``toy.png``, from the record alone."""
    r = body(record)
    rep = Report("linear.toy", "Toy example: fooling a 10-dimensional logistic regression", r)
    rep.table(["", "x", f"x + {r['alpha']:g}·w"], [
        ["input", str(r["x"]), str(r["x_adv"])],
        ["score w·x + b", r["score"], r["score_adv"]],
        ["P(class 1)", f"{r['probability']:.4f}", f"{r['probability_adv']:.4f}"],
    ])
    rep.text(f"Every coordinate moved by {r['alpha']:g} in the direction of its weight, so the "
             f"score gained {r['alpha']:g} × ‖w‖₁ = {r['gain']:g}: tiny per-coordinate "
             "changes add up across dimensions.")
    rep.figure("toy.png", "Input before and after the nudge")
    return Rendered(rep, {"toy.png": _bars(r)})


def _bars(r: Mapping[str, Any]) -> bytes:
    fig = figure(7, 3)
    ax = fig.subplots()
    idx = np.arange(len(r["x"]))
    ax.bar(idx - 0.2, r["x"], width=0.4, label=f"x (score {r['score']:g})")
    ax.bar(idx + 0.2, r["x_adv"], width=0.4,
           label=f"x + {r['alpha']:g}·w (score {r['score_adv']:g})")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(idx, [f"w={v:+g}" for v in r["w"]], fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)
