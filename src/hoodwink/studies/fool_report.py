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

__all__ = ["amplification", "report", "survival_lines", "triptych", "triptych_captions"]


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
    target = (str(rec["target_name"] or rec["target"]) if rec["target"] is not None
              else None)
    fig = triptych(decode_png(orig_png, mode), decode_png(adv_png, mode), before, after,
                   str(rec["model"]), float(rec["eps"]), int(rec["max_change_255"]),
                   target=target, survival=rec.get("survival"))

    body = {k: v for k, v in rec.items() if k not in ("environment", "schema", "title")}
    w, h = rec["size"]
    want = (f"class {rec['target']} ({rec['target_name'] or rec['target']})"
            if rec["target"] is not None else "any other class")
    how = " (the first of the automatic budgets that worked)" if rec["eps_auto"] else ""
    rep = Report("fool", f"Fooling {rec['model']} on {rec['source_name']}", body)
    how_robust = (f" expected over {rec['eot_samples']} random transformations per step "
                  "(robust mode)" if rec.get("robust") else "")
    rep.text(
        f"{rec['model']} sees {rec['source_name']} ({w}×{h}, {mode}) as {rec['before'][0]['name']}"
        f" ({rec['before'][0]['probability']:.3f}). {rec['steps']} PGD steps{how_robust} (L∞, seed "
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
    rep.figure(rec["figure"], "Original, perturbation (amplified ×"
                              f"{0.5 / float(rec['eps']):.0f}: ±eps spans black to white) and "
                              "the adversarial image re-read from the PNG, with the top class "
                              "of each.")
    surv = rec.get("survival")
    if surv:
        rep.text("Survival, measured on the saved PNG with the real operations (Pillow's JPEG "
                 "encoder and resampling) on held-out random draws the attack never saw:")
        rep.table(["transformation", "kept", "measured"],
                  [[r["family"], r["kept"], r["n"]] for r in surv["table"]])
    rep.table(["phase", "seconds"], [[k.replace("_", " "), v]
                                     for k, v in rec["timings_s"].items()])
    figures = {imgs["adversarial"]["file"]: adv_png, rec["figure"]: fig}
    return Rendered(rep, figures)


def amplification(eps: float) -> float:
    """How much the triptych amplifies the perturbation: always ``0.5 / eps``.

    The middle panel shows ``0.5 + delta · 0.5 / eps``, so -eps is black, +eps
    white and no change mid-grey, whatever the perturbation reached: panels of
    different runs at one budget compare directly.
    """
    return 0.5 / eps


def triptych_captions(
    before: Sequence[_Pred] | None,
    after: Sequence[_Pred] | None,
    eps: float,
    max_change_255: int,
    *,
    target: str | None,
) -> list[str]:
    """The three captions of :func:`triptych`: original, perturbation, adversarial."""
    eps_text = f"{eps * 255:.4g}/255"

    def top(preds: Sequence[_Pred] | None) -> str:
        if not preds:
            return "top-1: -"
        # The first of an ImageNet class's synonyms keeps the caption narrow.
        return f"top-1: {preds[0].name.split(',')[0][:24]} {preds[0].probability:.2f}"

    goal = f"target: {target.split(',')[0][:24]}" if target is not None \
        else "untargeted: any other class"
    # ASCII "x" and "+/-": Pillow's default font has no multiplication sign.
    return [
        f"original\n{top(before)}",
        f"perturbation x{amplification(eps):.0f} amplified\n"
        f"+/-{eps_text} = black..white\n(max change {max_change_255}/255)",
        f"adversarial, re-read from PNG\n{goal}\n{top(after)}",
    ]


def triptych(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    before: Sequence[_Pred],
    after: Sequence[_Pred],
    model_name: str,
    eps: float,
    max_change_255: int,
    *,
    target: str | None = None,
    survival: Mapping[str, Any] | None = None,
) -> bytes:
    """Original | amplified perturbation | adversarial, with captions, as PNG bytes.

    With ``survival`` (:meth:`hoodwink.survival.SurvivalReport.to_dict`), the
    survival table (:func:`survival_lines`) is printed under the panels.

    The title names the model, the mode (targeted at ``target``, or
    untargeted) and the budget; the captions the top-1 class of the original,
    the fixed amplification of the perturbation (:func:`amplification`) and
    the target and top-1 of the adversarial image. The sheet is sized to its
    text: no blank band.

    Composed with Pillow, which the image I/O loads anyway: importing and
    running matplotlib for three pictures and some text took longer than the
    attack itself.
    """
    import io

    from PIL import Image, ImageDraw, ImageFont

    from hoodwink.imaging import _to_uint8

    delta = (x_adv - x).detach().cpu()
    panels = [x, (0.5 + delta * amplification(eps)).clamp(0, 1), x_adv]
    captions = triptych_captions(before, after, eps, max_change_255, target=target)
    mode = f"targeted at {target.split(',')[0]}" if target is not None else "untargeted"
    title = f"{model_name}: {mode}, Linf eps = {eps * 255:.4g}/255"
    h, w = int(x.shape[-2]), int(x.shape[-1])
    # Small images (MNIST) are enlarged so that the captions stay legible.
    scale = max(1, -(-200 // max(h, w)))
    pw, ph = w * scale, h * scale
    font_px = max(12, min(24, pw // 18))
    try:
        font: Any = ImageFont.load_default(size=font_px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        font = ImageFont.load_default()
    pad, spacing = 10, 4
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.multiline_textbbox((0, 0), text, font=font,
                                                              spacing=spacing)
        return int(right), int(bottom)

    title_s, cells = _survival_cells(survival) if survival else ("", [])
    col_ws = [max(size(row[i])[0] for row in cells) + 3 * pad for i in range(4)] if cells \
        else []
    row_h = size("Ag")[1] + spacing
    table_w = max(size(title_s)[0], sum(col_ws)) if cells else 0
    table_h = (1 + len(cells)) * row_h + pad if cells else 0
    cap_sizes = [size(c) for c in captions]
    col_w = max(pw, *(cw for cw, _ in cap_sizes))
    title_w, title_h = size(title)
    caption_h = max(ch for _, ch in cap_sizes)
    width = max(3 * col_w + 4 * pad, title_w + 2 * pad)
    top = pad + title_h + pad
    height = top + ph + pad // 2 + caption_h + pad + table_h
    width = max(width, table_w + 2 * pad)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, pad), title, fill="black", font=font)
    for i, (img, caption) in enumerate(zip(panels, captions, strict=True)):
        arr = _to_uint8(img.detach().cpu().clamp(0, 1))
        tile = Image.fromarray(arr).convert("RGB")
        if scale > 1:
            tile = tile.resize((pw, ph), Image.Resampling.NEAREST)
        left = pad + i * (col_w + pad)
        sheet.paste(tile, (left, top))
        draw.multiline_text((left, top + ph + pad // 2), caption, fill="black", font=font,
                            spacing=spacing)
    if cells:
        y = top + ph + pad // 2 + caption_h + pad
        draw.text((pad, y), title_s, fill="black", font=font)
        for row in cells:
            y += row_h
            x_col = pad
            for i, (cell, cw) in enumerate(zip(row, col_ws, strict=True)):
                # Numbers right-aligned in their column, names left-aligned.
                dx = 0 if i == 0 else cw - 3 * pad - size(cell)[0]
                draw.text((x_col + dx, y), cell, fill="black", font=font)
                x_col += cw
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def _survival_cells(survival: Mapping[str, Any]) -> tuple[str, list[list[str]]]:
    """The survival table's title and cells: family, kept/n, rate, 95% interval."""
    name = survival.get("target_name") or survival.get("target")
    goal = (f"target {str(name).split(',')[0]}" if survival.get("target") is not None
            else "any class but the original")
    title = (f"survival with the real codecs ({goal} kept; held-out seed "
             f"{survival.get('seed', 0)}):")
    cells = [["transformation", "kept", "rate", "95% CI"]]
    for r in survival["table"]:
        lo, hi = r["ci95"]
        cells.append([str(r["family"]), f"{r['kept']}/{r['n']}", f"{r['rate']:.0%}",
                      f"{lo:.0%}-{hi:.0%}"])
    return title, cells


def survival_lines(survival: Mapping[str, Any]) -> list[str]:
    """The survival table as text lines: family, kept/n, rate and its 95% interval.

    ``survival`` is :meth:`hoodwink.survival.SurvivalReport.to_dict`. ASCII
    only (Pillow's default font).
    """
    title, cells = _survival_cells(survival)
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    return [title] + ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                      for row in cells]
