"""The dream study's record and report: PNGs, gallery and text, from the record alone.

:func:`record` turns a :class:`~hoodwink.studies.dream.DreamResult` into the
JSON record: per image its class, confidences, steps and the PNG file itself
(base64 text under ``png``), re-read and classified so the numbers describe
the file, not the tensor. :func:`report` draws the gallery and the page from
that record alone, and returns every PNG as a figure of the
:class:`~hoodwink.studies._record.Rendered` result, so writing a report from a
``dream.json`` read back reproduces the images bit for bit.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from hoodwink.errors import ShapeError
from hoodwink.reports import Report, ReportPaths
from hoodwink.studies._record import Rendered, check_record, from_b64, to_b64

if TYPE_CHECKING:
    from hoodwink.models.torch import TorchClassifier
    from hoodwink.studies._dream_core import DreamResult

__all__ = ["DreamOutputs", "record", "report", "write_dream"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "class"


def record(model: TorchClassifier, result: DreamResult, *, model_name: str = "model",
           stem: str = "dream") -> dict[str, Any]:
    """The JSON record of a dream run, judged on the PNG files.

    Every image is encoded as PNG, decoded again and classified; the
    ``confidence_png``, ``predicted_png`` and ``success_png`` of each entry
    describe that file. The file's bytes are kept (base64) under ``png`` and
    its name under ``file``.

    Parameters
    ----------
    model : TorchClassifier
        The model the images were grown for.
    result : DreamResult
    model_name : str
    stem : str
        Prefix of the image file names.

    Returns
    -------
    dict
        Data only; survives a JSON round trip exactly.
    """
    from hoodwink.imaging import decode_png, encode_png

    channels = int(result.x.shape[1])
    if channels not in (1, 3):
        raise ShapeError(f"Only 1- or 3-channel images can be saved; got {channels} channels.")
    mode: Literal["RGB", "L"] = "L" if channels == 1 else "RGB"
    pngs = [encode_png(result.x[i : i + 1].cpu()) for i in range(len(result))]
    x_back = torch.cat([decode_png(p, mode) for p in pngs])
    probs = model.probabilities(x_back.to(model.device)).cpu()
    tgt = result.target.cpu()
    conf_png = [float(v) for v in probs.gather(1, tgt[:, None])[:, 0].tolist()]
    pred_png = [int(v) for v in probs.argmax(dim=1).tolist()]
    rec = result.to_dict()
    rec["model"] = model_name
    for i, (entry, png, cp, pp) in enumerate(zip(rec["images"], pngs, conf_png, pred_png,
                                                 strict=True)):
        entry["file"] = f"{stem}-{i:02d}-{_slug(entry['name'])}.png"
        entry["confidence_png"] = cp
        entry["predicted_png"] = pp
        entry["success_png"] = bool(cp >= result.threshold and pp == entry["target"])
        entry["png"] = to_b64(png)
    n = len(pngs)
    rec["summary"]["success_rate_png"] = (
        sum(e["success_png"] for e in rec["images"]) / n if n else None
    )
    rec["gallery"] = f"{stem}-gallery.png"
    return check_record(rec, "dream")


def report(rec: Mapping[str, Any]) -> Rendered:
    """The gallery, every PNG and the page of a dream record, from the record alone.

    Parameters
    ----------
    rec : dict
        From :func:`record` or :func:`hoodwink.studies.dream.run`, or a
        ``dream.json`` read back.

    Returns
    -------
    Rendered
        Figures: each image under its ``file`` name, and the gallery.
    """
    from hoodwink.imaging import decode_png

    images = rec["images"]
    s = rec["summary"]
    cfg = rec["config"]
    body = {k: v for k, v in rec.items() if k not in ("environment", "schema", "title")}
    rep = Report("dream", f"Fooling images for {rec['model']}", body)
    hits = sum(e["success_png"] for e in images)
    rep.text(
        f"{s['n']} images grown from {cfg['start']} towards their classes by "
        f"{cfg['norm']} gradient ascent on the log-probability "
        f"(stepsize {cfg['stepsize']:.4g}, smoothness {cfg['smoothness']:g}, blur "
        f"{cfg['blur']:g}). {hits} of {s['n']} reached {s['threshold']:.1%} confidence as "
        f"saved PNGs, in {s['time_s']:.1f} s."
    )
    rep.table(
        ["class", "confidence (PNG)", "success", "steps", "file"],
        [[e["name"], e["confidence_png"], e["success_png"], e["steps_used"], e["file"]]
         for e in images],
    )
    rep.figure(rec["gallery"], "Each image with the confidence the model gives its class, "
                               "measured on the PNG read back.")
    figures = {e["file"]: from_b64(e["png"]) for e in images}
    mode: Literal["RGB", "L"] = "L" if cfg["shape"][0] == 1 else "RGB"
    x = [decode_png(figures[e["file"]], mode) for e in images]
    figures[rec["gallery"]] = _gallery(x, images, str(rec["model"]))
    return Rendered(rep, figures)


@dataclass(frozen=True)
class DreamOutputs:
    """Files written by :func:`write_dream` and the confidences re-read from them."""

    report: ReportPaths
    gallery: Path
    images: list[Path]
    confidence_png: list[float]
    record: dict[str, Any]


def write_dream(
    model: TorchClassifier,
    result: DreamResult,
    folder: str | Path,
    *,
    model_name: str = "model",
    stem: str = "dream",
) -> DreamOutputs:
    """Save each image as PNG, a gallery, and the JSON/Markdown/HTML report.

    :func:`record` then :func:`report`, written into ``folder`` (created if
    missing): ``<stem>-<i>-<class>.png``, ``<stem>-gallery.png`` and
    ``<stem>.json/.md/.html``.

    Returns
    -------
    DreamOutputs
    """
    rec = record(model, result, model_name=model_name, stem=stem)
    rendered = report(rec)
    paths = rendered.write(folder, stem=stem)
    out = Path(folder)
    return DreamOutputs(report=paths, gallery=out / rec["gallery"],
                        images=[out / e["file"] for e in rec["images"]],
                        confidence_png=[e["confidence_png"] for e in rec["images"]],
                        record=rendered.report.full_record())


def _gallery(x: list[torch.Tensor], images: list[dict[str, Any]], model_name: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(x)
    cols = max(1, min(n, 5))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(2.6 * cols, 2.9 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (xi, e) in enumerate(zip(x, images, strict=True)):
        ax = axes.flat[i]
        arr = xi[0].permute(1, 2, 0).numpy()
        if arr.shape[2] == 1:
            ax.imshow(arr[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(arr, interpolation="nearest")
        ax.set_title(f"{e['name'][:22]}\n{e['confidence_png']:.2%} ({e['steps_used']} steps)",
                     fontsize=9)
    fig.suptitle(f"{model_name}: fooling images (confidence read back from PNG)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
