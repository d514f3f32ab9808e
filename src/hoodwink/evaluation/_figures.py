"""The figures of an evaluation report, drawn from the record (and its example tensors).

Every figure is drawn on a :class:`matplotlib.figure.Figure` with the Agg
canvas, never through pyplot, so no global state (current figure, backend,
rcParams) changes; each function returns PNG bytes, or None when the record
holds nothing to draw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hoodwink.errors import MissingDependencyError

__all__ = ["DPI", "MAX_EXAMPLES", "curve_png", "examples_png", "is_image_shape", "norms_png"]

#: Resolution of every figure of the report.
DPI = 100
#: Most example rows drawn in the triptych figure (the page stays a few hundred kB).
MAX_EXAMPLES = 12

_NORM_LABELS = {"linf": "L∞", "l2": "L2", "l1": "L1", "l0": "L0"}


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The evaluation report's figures need matplotlib: pip install 'hoodwink[images]'."
        ) from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # No "Software" entry: the same record gives the same bytes whatever the matplotlib build.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def norm_label(norm: str) -> str:
    """``"L∞"`` for ``"linf"``, and so on; unknown names unchanged."""
    return _NORM_LABELS.get(norm, norm)


def curve_png(curve: Sequence[Mapping[str, Any]], grid: Sequence[Mapping[str, Any]],
              norm: str, n: int) -> bytes | None:
    """Robust accuracy against eps: the dense curve, and the grid with 95% intervals.

    Parameters
    ----------
    curve : list of {"eps", "robust_accuracy"}
        The record's dense curve (from the per-sample minimal norms), eps ascending.
    grid : list of {"eps", "robust_accuracy", "ci95"}
        ``summary.robust``: every attack at each grid eps.
    norm : str
    n : int
        Samples, for the title.

    Returns
    -------
    bytes or None
        PNG data; None when both lists are empty.
    """
    if not curve and not grid:
        return None
    fig = _figure(6.4, 3.6)
    ax = fig.subplots()
    if curve:
        xs = [float(p["eps"]) for p in curve]
        ys = [float(p["robust_accuracy"]) for p in curve]
        # The last level holds for every larger eps: draw it a little past the last point.
        right = max(xs + [float(g["eps"]) for g in grid])
        xs.append(right * 1.05 if right > 0 else 1.0)
        ys.append(ys[-1])
        # robust_accuracy(e) counts min_norm > e: the value holds from each point to the next.
        ax.step(xs, ys, where="post", color="C0", linewidth=1.4,
                label="from the minimal norms (dense)")
        at = {float(p["eps"]): float(p["robust_accuracy"]) for p in curve}
        marked = [(float(g["eps"]), at[float(g["eps"])]) for g in grid if float(g["eps"]) in at]
        if marked:
            # Hollow rings around the grid squares: both stay visible where they agree.
            ax.plot([m[0] for m in marked], [m[1] for m in marked], linestyle="none",
                    marker="o", markersize=9, markerfacecolor="none", markeredgewidth=1.4,
                    color="C0", label="dense curve at the grid eps", zorder=4)
    if grid:
        gx = [float(g["eps"]) for g in grid]
        gy = [float(g["robust_accuracy"]) for g in grid]
        lo = [max(0.0, y - float(g["ci95"][0])) for y, g in zip(gy, grid, strict=True)]
        hi = [max(0.0, float(g["ci95"][1]) - y) for y, g in zip(gy, grid, strict=True)]
        ax.errorbar(gx, gy, yerr=[lo, hi], fmt="s", color="C3", markersize=4, capsize=3,
                    linewidth=1, label="every attack at the grid eps (95% CI)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"eps ({norm_label(norm)})")
    ax.set_ylabel("robust accuracy")
    ax.set_title(f"Robust accuracy against eps, n = {n}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def norms_png(norms: Sequence[float], grid: Sequence[float], norm: str) -> bytes | None:
    """Histogram of the per-sample minimal adversarial norms, grid eps as dashed lines.

    Parameters
    ----------
    norms : list of float
        The finite minimal norms of the clean-correct samples.
    grid : list of float
        The grid eps.
    norm : str

    Returns
    -------
    bytes or None
        PNG data; None when ``norms`` is empty.
    """
    if not norms:
        return None
    values = np.asarray(norms, dtype=np.float64)
    fig = _figure(6.4, 3.2)
    ax = fig.subplots()
    bins = int(min(40, max(5, math.ceil(math.sqrt(values.size)) * 2)))
    ax.hist(values, bins=bins, color="C0", alpha=0.8, edgecolor="white", linewidth=0.5)
    for i, e in enumerate(grid):
        ax.axvline(float(e), color="C3", linestyle="--", linewidth=1,
                   label="grid eps" if i == 0 else None)
    ax.set_xlabel(f"minimal adversarial norm ({norm_label(norm)})")
    ax.set_ylabel("samples")
    ax.set_title(f"Minimal norms of {values.size} clean-correct samples with an adversarial",
                 fontsize=10)
    if grid:
        ax.legend(fontsize=8)
    return _png(fig)


def is_image_shape(shape: Sequence[int]) -> bool:
    """Whether one input of this shape is an image: (C, H, W) with C in {1, 3}."""
    return len(shape) == 3 and int(shape[0]) in (1, 3) and int(shape[1]) > 1 \
        and int(shape[2]) > 1


def _scaled(a: npt.NDArray[np.float64], lo: float, hi: float) -> npt.NDArray[np.float64]:
    span = hi - lo
    return np.clip((a - lo) / span if span > 0 else a - lo, 0.0, 1.0)


def _panel(chw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return chw[0] if chw.shape[0] == 1 else np.transpose(chw, (1, 2, 0))


def examples_png(x: npt.NDArray[np.float64], x_adv: npt.NDArray[np.float64],
                 titles: Sequence[str], bounds: tuple[float, float] | None) -> bytes:
    """Triptychs (original | adversarial | perturbation amplified), one row per example.

    Parameters
    ----------
    x, x_adv : ndarray, shape (k, C, H, W), C in {1, 3}
        The examples and their best adversarial (x itself where none was found).
    titles : list of str, length k
        One line per row (index, label, predictions).
    bounds : (float, float) or None
        The model's input range, mapped to black..white; None: each pair's own
        range.

    Returns
    -------
    bytes
        PNG data. At most :data:`MAX_EXAMPLES` rows are drawn.
    """
    k = min(len(x), MAX_EXAMPLES)
    # Titles hold users' class names: a "$" must not start matplotlib's mathtext.
    titles = [t.replace("$", r"\$") for t in titles]
    fig = _figure(7.2, 2.6 * k)
    rows = fig.subfigures(k, 1, squeeze=False)[:, 0]
    cmap = "gray" if x.shape[1] == 1 else None
    for i in range(k):
        rows[i].suptitle(titles[i], fontsize=9)
        axes = rows[i].subplots(1, 3)
        a, b = x[i], x_adv[i]
        lo, hi = bounds if bounds is not None else (float(min(a.min(), b.min())),
                                                    float(max(a.max(), b.max())))
        span = hi - lo if hi > lo else 1.0
        delta = (b - a) / span
        peak = float(np.abs(delta).max())
        # Mid-grey is no change; the largest change of this example spans black or white.
        amp = 0.5 / peak if peak > 0 else 1.0
        pert = np.clip(0.5 + delta * amp, 0.0, 1.0)
        panels = [_scaled(a, lo, hi), _scaled(b, lo, hi), pert]
        names = ["original", "adversarial",
                 f"perturbation ×{amp:.3g}" if peak > 0 else "perturbation (none)"]
        for j in range(3):
            ax = axes[j]
            ax.imshow(_panel(panels[j]), cmap=cmap if j < 2 else "gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(names[j], fontsize=8)
    return _png(fig)
