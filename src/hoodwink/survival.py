"""Does an adversarial image survive the real world? Measured with the real codecs.

A user who fools a photo and then posts it, mails it or screenshots it sends
it through a JPEG encoder, a resampler, perhaps a crop or a brightness
change. :func:`survival` applies such operations to the 8-bit image, with the
real implementations (Pillow's JPEG encoder and decoder, Pillow's resampling
filters, ``Image.rotate``, ``Image.crop``, ``ImageFilter.GaussianBlur``,
``ImageEnhance``), classifies each result, and counts how often the goal (the
target class, or any class but the original) is kept. The differentiable
approximations of :mod:`hoodwink.transforms` are never used here: they serve
the optimisation only.

Each image is measured on

- fixed rows: the PNG itself (``png``) and real JPEG at qualities 95, 75
  and 50 (``jpeg-95``, ``jpeg-75``, ``jpeg-50``);
- held-out random draws (:func:`heldout_draws`): a family of
  :data:`hoodwink.transforms.FAMILIES` with random parameters, then JPEG at a
  random quality, from :data:`HELDOUT_RANGES`, with a random source the attack
  never uses (numpy's, seeded apart from the attack's ``torch.Generator``).

Rates come with their count and a Wilson 95% interval
(:func:`hoodwink.stats.wilson`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hoodwink._validation import check_int, reject
from hoodwink.errors import ConfigError, InputError
from hoodwink.stats import wilson
from hoodwink.transforms import FAMILIES, TransformRanges, crop_pixels, draw_params

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from hoodwink.models.torch import TorchClassifier

__all__ = [
    "FIXED_QUALITIES",
    "HELDOUT_RANGES",
    "RESAMPLING",
    "RealTransform",
    "SurvivalReport",
    "fixed_transforms",
    "heldout_draws",
    "survival",
]

#: The held-out distribution: JPEG 50–95, resize 0.8–1.2, ±15°, crops keeping 80–100%
#: of each side, blur sigma 0–1.5 px, brightness and contrast 0.8–1.2.
HELDOUT_RANGES = TransformRanges()
#: The qualities of the fixed JPEG rows.
FIXED_QUALITIES: tuple[int, ...] = (95, 75, 50)
#: Pillow filters a held-out resize draws from.
RESAMPLING: tuple[str, ...] = ("bilinear", "bicubic", "lanczos")
#: Default number of held-out draws.
DEFAULT_DRAWS = 50
#: Mixed into every held-out seed, so no attack seed gives the same stream.
_HELDOUT_SALT = 0x5EED_0D0D


@dataclass(frozen=True)
class RealTransform:
    """One real operation on an 8-bit Pillow image, by name and parameters.

    Attributes
    ----------
    name : str
        Readable, e.g. ``"rotate -7.3° + jpeg 68"`` or ``"jpeg-75"``.
    family : str
        The row of the survival table: ``"png"``, ``"jpeg-75"``, ...,
        ``"jpeg"`` (a random quality alone) or ``"rotate+jpeg"``.
    params : dict
        ``quality`` (JPEG, absent for ``png``) and the family's parameters:
        ``scale`` and ``resample``, ``angle`` (degrees, counter-clockwise),
        ``left, top, right, bottom`` (fractions), ``sigma`` (pixels),
        ``factor``.
    """

    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, img: PILImage) -> PILImage:
        """Apply the operation; the result has ``img``'s mode ("RGB" or "L")."""
        from PIL import Image, ImageEnhance, ImageFilter

        p = self.params
        op = self.family.split("+")[0]
        out = img
        if op == "rescale":
            filt = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                    "lanczos": Image.Resampling.LANCZOS}[str(p.get("resample", "bicubic"))]
            w, h = img.size
            s = float(p["scale"])
            out = img.resize((max(1, round(w * s)), max(1, round(h * s))), filt)
        elif op == "rotate":
            out = img.rotate(float(p["angle"]), resample=Image.Resampling.BILINEAR,
                             expand=False, fillcolor=0)
        elif op == "crop":
            box = (float(p["left"]), float(p["top"]), float(p["right"]), float(p["bottom"]))
            out = img.crop(crop_pixels(box, *img.size))
        elif op == "blur":
            out = img.filter(ImageFilter.GaussianBlur(float(p["sigma"])))
        elif op == "brightness":
            out = ImageEnhance.Brightness(img).enhance(float(p["factor"]))
        elif op == "contrast":
            out = ImageEnhance.Contrast(img).enhance(float(p["factor"]))
        if "quality" in p:
            buf = io.BytesIO()
            out.save(buf, format="JPEG", quality=int(p["quality"]))
            buf.seek(0)
            with Image.open(buf) as dec:
                dec.load()
                out = dec.convert(img.mode)
        return out


def fixed_transforms(qualities: Sequence[int] = FIXED_QUALITIES) -> list[RealTransform]:
    """The PNG as it is, then real JPEG at each of ``qualities``."""
    rows = [RealTransform("png (as saved)", "png", {})]
    for q in qualities:
        q = check_int("fixed_transforms", "qualities", q, low=1, high=100)
        rows.append(RealTransform(f"jpeg-{q}", f"jpeg-{q}", {"quality": q}))
    return rows


def _describe(family: str, p: dict[str, Any]) -> str:
    q = f"jpeg {int(p['quality'])}"
    if family == "jpeg":
        return q
    if family == "rescale":
        what = f"rescale ×{p['scale']:.3f} ({p['resample']})"
    elif family == "rotate":
        what = f"rotate {p['angle']:+.1f}°"
    elif family == "crop":
        what = (f"crop {p['right'] - p['left']:.0%}×{p['bottom'] - p['top']:.0%} "
                f"at ({p['left']:.2f}, {p['top']:.2f})")
    elif family == "blur":
        what = f"blur σ={p['sigma']:.2f}"
    else:
        what = f"{family} ×{p['factor']:.3f}"
    return f"{what} + {q}"


def heldout_draws(n: int, seed: int = 0, *,
                  ranges: TransformRanges = HELDOUT_RANGES) -> list[RealTransform]:
    """``n`` random real operations: a family (uniform over FAMILIES), its parameters, JPEG.

    Parameters
    ----------
    n : int >= 0
    seed : int >= 0
        Seeds numpy's generator (salted), never the attack's torch generator:
        the attack cannot have optimised against these very draws.
    ranges : TransformRanges, default :data:`HELDOUT_RANGES`

    Returns
    -------
    list of RealTransform
        The same list for the same ``(n, seed)``; a longer list extends a shorter one.

    Examples
    --------
    >>> [d.family for d in heldout_draws(3, seed=1)] == [d.family for d in heldout_draws(3, 1)]
    True
    """
    n = check_int("heldout_draws", "n", n, low=0, high=1_000_000)
    seed = check_int("heldout_draws", "seed", seed, low=0, high=2**63 - 1)
    if not isinstance(ranges, TransformRanges):
        reject("heldout_draws", "ranges", ranges, "a TransformRanges")
    rng = np.random.default_rng([seed, _HELDOUT_SALT])
    out = []
    for _ in range(n):
        u = rng.random(7)
        family = FAMILIES[min(len(FAMILIES) - 1, int(u[0] * len(FAMILIES)))]
        params: dict[str, Any] = draw_params(family, list(u[1:6]), ranges)
        params["quality"] = int(params["quality"])
        if family == "rescale":
            params["resample"] = RESAMPLING[min(len(RESAMPLING) - 1, int(u[6] * len(RESAMPLING)))]
        params = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in params.items()}
        name = family if family == "jpeg" else f"{family}+jpeg"
        out.append(RealTransform(_describe(family, params), name, params))
    return out


@dataclass(frozen=True)
class SurvivalReport:
    """What survived: one row per real operation and a table per family.

    Attributes
    ----------
    target : int or None
        The goal class; None: untargeted (kept = any class but ``original_label``).
    original_label : int or None
    seed : int
        Of the held-out draws.
    rows : list of dict
        ``transform`` (readable), ``family``, ``params``, ``kept``, ``pred``
        (class index), ``pred_name``, ``prob`` (probability of ``pred``) and,
        for a target, ``p_target``.
    table : list of dict
        Per family (the fixed rows, then the draws' families in
        :data:`~hoodwink.transforms.FAMILIES` order), then ``"all draws"`` (the held-out draws
        together) when there are draws: ``family``, ``kept``, ``n``, ``rate``
        (``kept / n``) and ``ci95`` (Wilson 95% interval, ``[lo, hi]``).
    """

    target: int | None
    original_label: int | None
    seed: int
    rows: list[dict[str, Any]]
    table: list[dict[str, Any]]
    #: The target's class name, when the model has names.
    target_name: str | None = None

    def rate(self, family: str) -> float:
        """The kept rate of ``family`` (e.g. ``"jpeg-75"`` or ``"all draws"``).

        Raises
        ------
        ConfigError
            No such family in the table.
        """
        for r in self.table:
            if r["family"] == family:
                return float(r["rate"])
        raise ConfigError(
            f"No family {family!r} in this survival table; it has "
            f"{', '.join(repr(r['family']) for r in self.table)}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {"schema": "hoodwink.survival/1", "target": self.target,
                "target_name": self.target_name, "original_label": self.original_label,
                "seed": self.seed,
                "rows": [dict(r) for r in self.rows], "table": [dict(r) for r in self.table]}


def _table(rows: Sequence[dict[str, Any]], n_fixed: int) -> list[dict[str, Any]]:
    order: list[str] = []
    kept: dict[str, list[bool]] = {}
    for r in rows:
        if r["family"] not in kept:
            order.append(r["family"])
            kept[r["family"]] = []
        kept[r["family"]].append(bool(r["kept"]))
    draws = [bool(r["kept"]) for r in rows[n_fixed:]]
    # Fixed rows first as given, then the draws' families in FAMILIES order.
    rank = {f if f == "jpeg" else f"{f}+jpeg": i for i, f in enumerate(FAMILIES)}
    order = order[:len({r["family"] for r in rows[:n_fixed]})] + sorted(
        order[len({r["family"] for r in rows[:n_fixed]}):], key=lambda f: rank.get(f, len(rank)))
    groups = [(f, kept[f]) for f in order] + ([("all draws", draws)] if draws else [])
    table = []
    for fam, ks in groups:
        k, n = sum(ks), len(ks)
        lo, hi = wilson(k, n)
        table.append({"family": fam, "kept": k, "n": n, "rate": k / n,
                      "ci95": [round(lo, 4), round(hi, 4)]})
    return table


def _as_pil(adv: object) -> PILImage:
    from PIL import Image

    from hoodwink.imaging import _to_uint8, load_image, to_8bit

    if isinstance(adv, str | Path):
        return Image.fromarray(_to_uint8(load_image(adv, mode=None)))
    if isinstance(adv, Image.Image):
        return to_8bit(adv, None)  # type: ignore[no-any-return]
    raise InputError(
        f"The image must be a PIL.Image or the path of an image file; got {type(adv).__name__}. "
        "For a tensor x in [0, 1], pass PIL.Image.fromarray of its 8-bit pixels, or save it as "
        "a PNG first."
    )


def _tensor(img: PILImage) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0


def survival(
    model: TorchClassifier,
    adv: PILImage | str | Path,
    *,
    target: int | None,
    original_label: int | None,
    draws: int | Sequence[RealTransform] = DEFAULT_DRAWS,
    include_fixed: bool = True,
    seed: int = 0,
) -> SurvivalReport:
    """Apply real image operations to ``adv`` and count how often the goal is kept.

    Parameters
    ----------
    model : TorchClassifier
        Takes the image at any size, in ``adv``'s mode (a zoo ImageNet model
        resizes inside its preprocessing).
    adv : PIL.Image or path
        The adversarial image as saved (8-bit; a path is read as
        :func:`hoodwink.imaging.load_image` reads it, in the file's own mode).
    target : int or None
        Kept means: classified as ``target``.
    original_label : int or None
        With ``target`` None, kept means: classified as anything else. One of
        the two must be given.
    draws : int >= 0 or list of RealTransform, default 50
        How many held-out random draws (:func:`heldout_draws`), or the
        operations themselves.
    include_fixed : bool, default True
        Add the fixed rows: the PNG itself and real JPEG at 95, 75 and 50.
    seed : int >= 0
        Of the held-out draws.

    Returns
    -------
    SurvivalReport

    Raises
    ------
    ConfigError
        Neither ``target`` nor ``original_label``, a class index out of range,
        or a bad ``draws`` / ``seed``.
    InputError
        ``adv`` is not an image.
    """
    owner = "survival"
    n_cls = getattr(model, "num_classes", None)
    high = int(n_cls) - 1 if isinstance(n_cls, int) else None
    target = check_int(owner, "target", target, low=0, high=high, allow_none=True)
    original_label = check_int(owner, "original_label", original_label, low=0, high=high,
                               allow_none=True)
    if target is None and original_label is None:
        raise ConfigError(
            "survival needs the goal: give target= (the class to keep) or original_label= "
            "(untargeted: any other class counts as kept)."
        )
    seed = check_int(owner, "seed", seed, low=0, high=2**63 - 1)
    if not isinstance(include_fixed, bool):
        reject(owner, "include_fixed", include_fixed, "a bool")
    if isinstance(draws, int) and not isinstance(draws, bool):
        ops = heldout_draws(draws, seed)
    elif isinstance(draws, Sequence) and all(isinstance(d, RealTransform) for d in draws):
        ops = list(draws)
    else:
        reject(owner, "draws", draws, "an int >= 0 or a list of RealTransform")
    fixed = fixed_transforms() if include_fixed else []
    img = _as_pil(adv)
    names = getattr(model, "class_names", None)
    rows: list[dict[str, Any]] = []
    for t in [*fixed, *ops]:
        probs = model.probabilities(_tensor(t(img)))[0]
        pred = int(probs.argmax())
        kept = pred == target if target is not None else pred != original_label
        row: dict[str, Any] = {
            "transform": t.name, "family": t.family, "params": dict(t.params), "kept": kept,
            "pred": pred, "pred_name": names[pred] if names else str(pred),
            "prob": round(float(probs[pred]), 4),
        }
        if target is not None:
            row["p_target"] = round(float(probs[target]), 4)
        rows.append(row)
    if not rows:
        raise ConfigError("survival has nothing to measure: give draws > 0 or "
                          "include_fixed=True.")
    return SurvivalReport(target, original_label, seed, rows, _table(rows, len(fixed)),
                          target_name=names[target] if names and target is not None else None)
