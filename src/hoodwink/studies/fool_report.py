"""The fool study's triptych and page, from the record alone.

:func:`report` draws the page and the triptych (original | amplified
perturbation | adversarial) of a record made by
:func:`hoodwink.studies.fool.run`, from the record alone: the original and the
adversarial image travel in it as PNG files (base64 text), the very bytes the
predictions were measured on. :func:`triptych` is the figure
:func:`~hoodwink.studies.fool.fool_image` writes beside the adversarial PNG; it
is composed with Pillow (no matplotlib), so that ``hoodwink fool`` stays fast.
Import :func:`report` from :mod:`hoodwink.studies.fool`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, from_b64

if TYPE_CHECKING:
    import torch

__all__ = ["report", "triptych"]


class _Pred(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def probability(self) -> float: ...


def report(rec: Mapping[str, Any]) -> Rendered:
    """The triptych, the adversarial PNG and the page of a fool record.

    Parameters
    ----------
    rec : dict
        From :func:`hoodwink.studies.fool.run`, or its JSON read back.

    Returns
    -------
    Rendered
        Figures: the adversarial PNG under ``images["adversarial"]["file"]``
        (the measured bytes) and the triptych under ``figure``.
    """
    from hoodwink.imaging import decode_png
    from hoodwink.studies.fool import Prediction

    mode: Literal["RGB", "L"] = "L" if rec["mode"] == "L" else "RGB"
    imgs = rec["images"]
    orig_png = from_b64(imgs["original"]["png"])
    adv_png = from_b64(imgs["adversarial"]["png"])
    before = [Prediction(int(p["index"]), str(p["name"]), float(p["probability"]))
              for p in rec["before"]]
    after = [Prediction(int(p["index"]), str(p["name"]), float(p["probability"]))
             for p in rec["after"]]
    fig = triptych(decode_png(orig_png, mode), decode_png(adv_png, mode), before, after,
                   str(rec["model"]), float(rec["eps"]), int(rec["max_change_255"]))

    body = {k: v for k, v in rec.items() if k not in ("environment", "schema", "title")}
    w, h = rec["size"]
    want = (f"class {rec['target']} ({rec['target_name'] or rec['target']})"
            if rec["target"] is not None else "any other class")
    how = " (the first of the automatic budgets that worked)" if rec["eps_auto"] else ""
    rep = Report("fool", f"Fooling {rec['model']} on {rec['source_name']}", body)
    rep.text(
        f"{rec['model']} sees {rec['source_name']} ({w}×{h}, {mode}) as {rec['before'][0]['name']}"
        f" ({rec['before'][0]['probability']:.3f}). {rec['steps']} PGD steps (L∞, seed "
        f"{rec['seed']}) aimed at {want} within eps = {rec['eps_255']:g}/255{how}; the "
        f"result, saved as an 8-bit PNG and read back, is classified as "
        f"{rec['after'][0]['name']} ({rec['after'][0]['probability']:.3f}). Largest change per "
        f"pixel on disk: {rec['max_change_255']}/255. "
        + ("Success." if rec["success"] else "Not fooled.")
    )
    rep.table(
        ["rank", "before", "p before", "after (re-read from the PNG)", "p after"],
        [[i + 1, b["name"], b["probability"], a["name"], a["probability"]]
         for i, (b, a) in enumerate(zip(rec["before"], rec["after"], strict=True))],
    )
    rep.figure(rec["figure"], "Original, amplified perturbation and the adversarial image "
                              "re-read from the PNG, with the top classes of each.")
    rep.table(["phase", "seconds"], [[k.replace("_", " "), v]
                                     for k, v in rec["timings_s"].items()])
    figures = {imgs["adversarial"]["file"]: adv_png, rec["figure"]: fig}
    return Rendered(rep, figures)


def _label(preds: Sequence[_Pred]) -> str:
    return "\n".join(f"{p.name[:24]}: {p.probability:.3f}" for p in preds)


def triptych(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    before: Sequence[_Pred],
    after: Sequence[_Pred],
    model_name: str,
    eps: float,
    max_change_255: int,
) -> bytes:
    """Original | amplified perturbation | adversarial, with captions, as PNG bytes.

    Composed with Pillow, which the image I/O loads anyway: importing and
    running matplotlib for three pictures and some text took longer than the
    attack itself.
    """
    import io

    from PIL import Image, ImageDraw, ImageFont

    from hoodwink.imaging import _to_uint8

    delta = x_adv - x
    amp = delta.abs().max().clamp_min(1e-12)
    panels = [x, 0.5 + delta / (2 * amp), x_adv]
    captions = [
        f"original\n{_label(before)}",
        f"perturbation x{0.5 / float(amp):.0f}\n(max {max_change_255}/255 per pixel)",
        f"adversarial (re-read from PNG)\n{_label(after)}",
    ]
    h, w = int(x.shape[-2]), int(x.shape[-1])
    # Small images (MNIST) are enlarged so that the captions stay legible.
    scale = max(1, -(-200 // max(h, w)))
    pw, ph = w * scale, h * scale
    font_px = max(12, min(24, pw // 18))
    try:
        font: Any = ImageFont.load_default(size=font_px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        font = ImageFont.load_default()
    pad, line = 10, font_px + 4
    title_h = line + pad
    caption_h = 4 * line + pad
    sheet = Image.new("RGB", (3 * pw + 4 * pad, title_h + ph + caption_h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, pad // 2), f"{model_name}: eps = {eps * 255:g}/255", fill="black",
              font=font)
    for i, (img, caption) in enumerate(zip(panels, captions, strict=True)):
        arr = _to_uint8(img.detach().cpu().clamp(0, 1))
        tile = Image.fromarray(arr).convert("RGB")
        if scale > 1:
            tile = tile.resize((pw, ph), Image.Resampling.NEAREST)
        left = pad + i * (pw + pad)
        sheet.paste(tile, (left, title_h))
        draw.multiline_text((left, title_h + ph + pad // 2), caption, fill="black", font=font,
                            spacing=4)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
