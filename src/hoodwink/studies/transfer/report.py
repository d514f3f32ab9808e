"""The transfer study's report: heat map and text, drawn from the record alone."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hoodwink.errors import MissingDependencyError
from hoodwink.stats import SMALL_N, rate_text, wilson
from hoodwink.studies.transfer.records import DEFINITIONS, TransferStudy, _pct, format_eps

if TYPE_CHECKING:
    from hoodwink.reports import Report, ReportPaths

__all__ = ["render_heatmap", "transfer_report", "write_transfer_report"]


def render_heatmap(study: TransferStudy) -> bytes:
    """The transfer matrices as one PNG figure (matplotlib, Agg; no display needed).

    One panel per mode (rows) and budget (columns); in each, rows are the
    attacks and the noise baseline, columns the models (source first, marked
    white-box); each cell shows the rate and its denominator.

    Returns
    -------
    bytes
        PNG data.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The heat map needs matplotlib: pip install 'hoodwink[images]'."
        ) from exc
    n_modes, n_eps = len(study.modes), len(study.eps)
    n_rows, n_cols = len(study.rows), len(study.models)
    w = max(3.0, 1.25 * n_cols + 1.6)
    h = max(2.2, 0.6 * n_rows + 1.5)
    fig = Figure(figsize=(w * n_eps, h * n_modes), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_modes, n_eps, squeeze=False)
    cols = [f"{m}\n(white-box)" if m == study.source else m for m in study.models]
    image = None
    for i, mode in enumerate(study.modes):
        for j, e in enumerate(study.eps):
            ax = axes[i][j]
            mat = study.matrix(mode, e)
            image = ax.imshow(np.ma.masked_invalid(mat), vmin=0.0, vmax=1.0, cmap="magma",
                              aspect="auto")
            ax.set_facecolor("#dddddd")
            for r, row in enumerate(study.rows):
                for cc, model in enumerate(study.models):
                    cell = study.cell(mode, e, row, model)
                    v = mat[r, cc]
                    colour = "black" if v == v and v > 0.6 else "white"
                    if v != v:
                        colour = "black"
                    ax.text(cc, r, _heat_text(cell.n_fooled, cell.n_eligible, cell.rate),
                            ha="center", va="center", fontsize=7, color=colour)
            ax.set_xticks(range(n_cols), cols, fontsize=7)
            ax.set_yticks(range(n_rows), list(study.rows), fontsize=8)
            ax.set_title(f"{mode}, eps = {format_eps(e)}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="rate")
    fig.suptitle(f"Transfer from {study.source} (n = {study.n}); cells: rate, fooled/eligible, "
                 f"and the Wilson 95% interval when eligible < {SMALL_N}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _heat_text(k: int, n: int, rate: float | None) -> str:
    """A heat-map cell: the rate, its count, and its 95% interval when n is small."""
    if n == 0:
        return "–\nn=0"
    text = f"{_pct(rate)}\n{k}/{n}"
    if n < SMALL_N:
        lo, hi = wilson(k, n)
        text += f"\n[{lo:.0%}, {hi:.0%}]"
    return text


def transfer_report(study: TransferStudy, *, figure: str | None = "transfer.png") -> Report:
    """A :class:`~hoodwink.reports.Report` of the study: tables and text from its record.

    Parameters
    ----------
    study : TransferStudy
    figure : str or None, default "transfer.png"
        Name of the heat-map file the report links (written by
        :func:`write_transfer_report`); None for no figure block.
    """
    from hoodwink.reports import Report

    rep = Report(kind="transfer", title=f"Transferability from {study.source}",
                 record=study.to_dict())
    rep.text(
        f"Adversarial examples made on **{study.source}** (white box), evaluated on "
        f"{', '.join(study.models[1:])}. Data: {study.data or f'{study.n} samples'}. "
        f"Seed {study.seed}."
    )
    rep.heading("Definitions")
    for key in ("label", "untargeted", "targeted", "white-box", "noise", "unconditional"):
        rep.text(DEFINITIONS[key])
    rep.text(
        f"Every rate shows its count (fooled / eligible); a rate over fewer than {SMALL_N} "
        "samples also shows its Wilson 95% interval. Where two intervals overlap, the data "
        "do not tell those two rates apart."
    )
    rep.heading("Clean predictions")
    metric = "accuracy" if study.labelled else "agreement_with_source"
    rep.table(["model", metric.replace("_", " "), "correct"],
              [[k, v[metric], v["n_correct"]] for k, v in study.clean.items()])
    if figure is not None:
        rep.figure(figure, "Transfer matrices: rows attacks and the noise baseline, columns "
                           "models (source first: white-box rate).")
    for mode in study.modes:
        for e in study.eps:
            rep.heading(f"{mode}, eps = {format_eps(e)}")
            rows = []
            for r in study.rows:
                row: list[Any] = [r]
                for m in study.models:
                    cell = study.cell(mode, e, r, m)
                    row.append(rate_text(cell.n_fooled, cell.n_eligible))
                rows.append(row)
            rep.table(["attack", *[f"{m} (white-box)" if m == study.source else m
                                   for m in study.models]], rows)
    rep.heading("Attacks")
    rep.table(["name", "configuration"], [[k, v] for k, v in study.attack_reprs.items()])
    return rep


def write_transfer_report(
    study: TransferStudy, folder: str | Path, *, stem: str = "transfer"
) -> ReportPaths:
    """Write ``<stem>.json`` (the record), ``.md``, ``.html`` and ``<stem>.png`` (heat map).

    Parameters
    ----------
    study : TransferStudy
    folder : str or Path
        Created if needed.
    stem : str, default "transfer"

    Returns
    -------
    ReportPaths
        The figure lies beside them as ``<stem>.png``.
    """
    from hoodwink.reports import atomic_write_bytes

    d = Path(folder)
    png = render_heatmap(study)
    rep = transfer_report(study, figure=f"{stem}.png")
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(d / f"{stem}.png", png)
    return rep.write(d, stem=stem)
