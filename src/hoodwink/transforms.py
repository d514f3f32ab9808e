"""Differentiable image transformations, for optimising through them (EOT).

A perturbation that fools a classifier on the PNG may not survive the photo
being posted, mailed or edited: JPEG re-encoding, resizing, a small rotation,
a crop, a blur or a brightness change. Expectation over transformation
(Athalye, Engstrom, Ilyas and Kwok, "Synthesizing Robust Adversarial
Examples", ICML 2018) optimises the attack's loss averaged over random draws
of such transformations; that needs each of them as a differentiable map of
the image tensor, which this module provides.

These are *approximations*, used only inside the optimisation. What survives
is measured with the real operations (Pillow's JPEG codec and resampling) in
:mod:`hoodwink.survival`, never with these.

Every transformation maps a float tensor of shape (N, C, H, W), C = 1 or 3,
values in [0, 1], to a float tensor of shape (N, C, H', W') in [0, 1]; the
geometric ones may change the size, as the real ones do (the classifier's own
preprocessing resizes).

:class:`DiffJPEG` follows baseline JPEG as libjpeg (and so Pillow) does it:
JFIF YCbCr, 4:2:0 chroma subsampling by 2×2 averaging, the 8×8 DCT, the
Annex K quantisation tables scaled by quality with libjpeg's rule, rounding,
and bilinear ("fancy") chroma upsampling on decoding. The rounding of the
coefficients is exact in the forward pass and passes gradients straight
through (``rounding="ste"``), or is Shin and Song's cubic approximation
``r + (v - r)**3`` with ``r = round(v)`` ("JPEG-resistant adversarial
images", NeurIPS 2017 workshop; ``rounding="cubic"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from hoodwink._validation import check_choice, check_int, check_real, reject
from hoodwink.errors import ShapeError

__all__ = [
    "FAMILIES",
    "TRAIN_RANGES",
    "Blur",
    "Brightness",
    "Compose",
    "Contrast",
    "Crop",
    "DiffJPEG",
    "Rescale",
    "Rotate",
    "Transform",
    "TransformRanges",
    "crop_pixels",
    "draw_params",
    "jpeg_quant_tables",
    "sample_transform",
    "transform_of",
]

#: A differentiable map of an image batch (N, C, H, W) in [0, 1] to one in [0, 1].
Transform = Callable[[torch.Tensor], torch.Tensor]

#: The families of a random draw: one of these, then JPEG ("jpeg": JPEG alone).
FAMILIES: tuple[str, ...] = (
    "jpeg", "rescale", "rotate", "crop", "blur", "brightness", "contrast",
)

_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32


def _check_image(x: object, owner: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3) \
            or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(
            f"{owner} takes a float image batch of shape (N, C, H, W) with C = 1 or 3, values "
            f"in [0, 1]; got {shape}. For one image use x[None]; for 8-bit pixels divide by 255."
        )
    return x


def jpeg_quant_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The luma and chroma quantisation tables libjpeg uses at ``quality``.

    libjpeg's ``jpeg_quality_scaling``: a scale of ``5000 / q`` below 50 and
    ``200 - 2 q`` from 50, applied to the tables of the JPEG standard (Annex K)
    as ``(t · scale + 50) // 100``, clamped to [1, 255] (baseline).

    Parameters
    ----------
    quality : int in [1, 100]

    Returns
    -------
    (luma, chroma) : two float32 tensors of shape (8, 8)

    Examples
    --------
    >>> luma, chroma = jpeg_quant_tables(50)
    >>> int(luma[0, 0]), int(chroma[7, 7])
    (16, 99)
    >>> int(jpeg_quant_tables(100)[0].max())
    1
    """
    q = check_int("jpeg_quant_tables", "quality", quality, low=1, high=100)
    scale = 5000 // q if q < 50 else 200 - 2 * q

    def table(base: Sequence[int]) -> torch.Tensor:
        vals = [min(255, max(1, (b * scale + 50) // 100)) for b in base]
        return torch.tensor(vals, dtype=torch.float32).reshape(8, 8)

    return table(_LUMA), table(_CHROMA)


def _dct_matrix() -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix D (JPEG's 2-D DCT is D B Dᵀ)."""
    d = torch.empty(8, 8, dtype=torch.float64)
    for u in range(8):
        c = math.sqrt(1 / 8) if u == 0 else math.sqrt(2 / 8)
        for i in range(8):
            d[u, i] = c * math.cos((2 * i + 1) * u * math.pi / 16)
    return d.float()


_DCT = _dct_matrix()


def _ste_round(v: torch.Tensor) -> torch.Tensor:
    """Exact rounding forward; the identity backward (straight-through)."""
    return v + (torch.round(v) - v).detach()


def _round(v: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cubic":
        r = torch.round(v).detach()
        return r + (v - r) ** 3
    return _ste_round(v)


def _blocks(c: torch.Tensor) -> torch.Tensor:
    """(N, H, W) with H, W multiples of 8 -> (N, H/8, W/8, 8, 8)."""
    n, h, w = c.shape
    return c.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, hb, wb, _, _ = b.shape
    return b.permute(0, 1, 3, 2, 4).reshape(n, hb * 8, wb * 8)


@dataclass(frozen=True)
class DiffJPEG:
    """Baseline JPEG encode + decode at ``quality``, differentiable.

    Parameters
    ----------
    quality : int in [1, 100]
        libjpeg's (and Pillow's) quality: the Annex K tables scaled by
        :func:`jpeg_quant_tables`.
    subsampling : bool, default True
        4:2:0 chroma subsampling (Pillow's default); False keeps 4:4:4.
    rounding : {"ste", "cubic"}, default "ste"
        How the quantised coefficients are rounded (see the module notes).

    Notes
    -----
    The result is snapped to the 8-bit grid (straight-through), as the real
    decoder's output is. The integer DCT of libjpeg and the exact placement
    of its edge padding differ slightly: on a natural photo at quality 75 the
    mean absolute difference from Pillow's round trip is about half an 8-bit
    level (tested).
    """

    quality: int
    subsampling: bool = True
    rounding: Literal["ste", "cubic"] = "ste"
    _tables: tuple[torch.Tensor, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality",
                           check_int("DiffJPEG", "quality", self.quality, low=1, high=100))
        check_choice("DiffJPEG", "rounding", self.rounding, ("ste", "cubic"))
        if not isinstance(self.subsampling, bool):
            reject("DiffJPEG", "subsampling", self.subsampling, "a bool")
        object.__setattr__(self, "_tables", jpeg_quant_tables(self.quality))

    def _code(self, c: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Level-shifted channel (N, H, W), multiples of 8 -> quantised and back."""
        d = _DCT.to(c)
        t = table.to(c)
        coef = d @ _blocks(c) @ d.T
        q = _round(coef / t, self.rounding) * t
        return _unblocks(d.T @ q @ d)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "DiffJPEG")
        n, ch, h, w = x.shape
        m = 16 if (ch == 3 and self.subsampling) else 8
        ph, pw = -h % m, -w % m
        z = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        z = z * 255.0
        luma_t, chroma_t = self._tables
        # libjpeg works on 8-bit samples between the stages: each is rounded (straight-through).
        if ch == 1:
            y = _ste_round(self._code(z[:, 0] - 128.0, luma_t))
            out = y[:, None] + 128.0
        else:
            r, g, b = z[:, 0], z[:, 1], z[:, 2]
            y = _ste_round(0.299 * r + 0.587 * g + 0.114 * b)
            cb = -0.168736 * r - 0.331264 * g + 0.5 * b
            cr = 0.5 * r - 0.418688 * g - 0.081312 * b
            y = _ste_round(self._code(y - 128.0, luma_t)) + 128.0
            chroma = _ste_round(torch.stack([cb, cr], dim=1))
            if self.subsampling:
                chroma = _ste_round(F.avg_pool2d(chroma, 2))
            cq = _ste_round(torch.stack([self._code(chroma[:, 0], chroma_t),
                                         self._code(chroma[:, 1], chroma_t)], dim=1))
            if self.subsampling:
                cq = _ste_round(F.interpolate(cq, scale_factor=2, mode="bilinear",
                                              align_corners=False))
            cb, cr = cq[:, 0], cq[:, 1]
            out = torch.stack([y + 1.402 * cr,
                               y - 0.344136 * cb - 0.714136 * cr,
                               y + 1.772 * cb], dim=1)
        out = out[:, :, :h, :w]
        return _ste_round(out.clamp(0, 255)) / 255.0


@dataclass(frozen=True)
class Rescale:
    """Resize by ``scale`` (antialiased bicubic, as Pillow resamples); the size changes.

    Parameters
    ----------
    scale : float in [0.1, 10]
    """

    scale: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale",
                           check_real("Rescale", "scale", self.scale, low=0.1, high=10))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "Rescale")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        size = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False,
                             antialias=True).clamp(0, 1)


@dataclass(frozen=True)
class Rotate:
    """Rotate by ``angle`` degrees counter-clockwise about the centre, bilinear, black corners.

    The size is kept (Pillow's ``Image.rotate(angle, expand=False)``).

    Parameters
    ----------
    angle : float in [-180, 180]
    """

    angle: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "angle",
                           check_real("Rotate", "angle", self.angle, low=-180, high=180))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "Rotate")
        n, _, h, w = x.shape
        a = math.radians(self.angle)
        cos, sin = math.cos(a), math.sin(a)
        # Output pixel (u, v) in pixel units about the centre samples the input at the
        # inverse rotation; y points down, so counter-clockwise on screen is -angle here.
        theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]],
                             dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(n, 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)


@dataclass(frozen=True)
class Crop:
    """Keep the box ``(left, top, right, bottom)``, given as fractions of the width and height.

    Parameters
    ----------
    box : tuple of 4 floats in [0, 1]
        ``left < right`` and ``top < bottom``; rounded to whole pixels as
        :func:`crop_pixels` says (the real crop uses the same pixels).
    """

    box: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        box = tuple(self.box)
        if len(box) != 4:
            reject("Crop", "box", self.box, "a tuple (left, top, right, bottom) of 4 fractions")
        vals = tuple(check_real("Crop", "box", v, low=0, high=1) for v in box)
        if not (vals[0] < vals[2] and vals[1] < vals[3]):
            reject("Crop", "box", self.box, "a box with left < right and top < bottom")
        object.__setattr__(self, "box", vals)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "Crop")
        left, top, right, bottom = crop_pixels(self.box, int(x.shape[-1]), int(x.shape[-2]))
        return x[..., top:bottom, left:right]


def crop_pixels(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel box ``(left, top, right, bottom)`` of a fractional box; at least 1×1."""
    left = min(width - 1, round(box[0] * width))
    top = min(height - 1, round(box[1] * height))
    right = max(left + 1, min(width, round(box[2] * width)))
    bottom = max(top + 1, min(height, round(box[3] * height)))
    return left, top, right, bottom


@dataclass(frozen=True)
class Blur:
    """Gaussian blur of standard deviation ``sigma`` pixels (Pillow's ``GaussianBlur(radius)``).

    Parameters
    ----------
    sigma : float in [0, 20]
        0 is the identity.
    """

    sigma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma",
                           check_real("Blur", "sigma", self.sigma, low=0, high=20))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "Blur")
        if self.sigma == 0:
            return x
        r = max(1, math.ceil(3 * self.sigma))
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2)
        k = k / k.sum()
        c = int(x.shape[1])
        z = F.pad(x, (r, r, r, r), mode="replicate")
        z = F.conv2d(z, k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
        return F.conv2d(z, k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


@dataclass(frozen=True)
class Brightness:
    """Multiply by ``factor`` and clip (Pillow's ``ImageEnhance.Brightness``).

    Parameters
    ----------
    factor : float in [0, 10]
    """

    factor: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor",
                           check_real("Brightness", "factor", self.factor, low=0, high=10))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (_check_image(x, "Brightness") * self.factor).clamp(0, 1)


@dataclass(frozen=True)
class Contrast:
    """Scale the distance from the mean grey by ``factor`` (Pillow's ``ImageEnhance.Contrast``).

    Parameters
    ----------
    factor : float in [0, 10]
    """

    factor: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor",
                           check_real("Contrast", "factor", self.factor, low=0, high=10))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_image(x, "Contrast")
        if x.shape[1] == 3:
            grey = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        else:
            grey = x[:, 0]
        mean = grey.mean(dim=(-2, -1)).view(-1, 1, 1, 1)
        return (mean + self.factor * (x - mean)).clamp(0, 1)


@dataclass(frozen=True)
class Compose:
    """Apply ``steps`` in order."""

    steps: tuple[Transform, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.steps:
            x = t(x)
        return x


@dataclass(frozen=True)
class TransformRanges:
    """The distribution of one random draw: a family of :data:`FAMILIES`, then JPEG.

    Each parameter is uniform in its range. ``hoodwink.survival`` measures on
    :data:`hoodwink.survival.HELDOUT_RANGES` (the defaults here); the attack
    trains on the slightly wider :data:`TRAIN_RANGES`, so that the edges of the
    held-out ranges are not the edges of what it has seen.

    Attributes
    ----------
    quality : (int, int)
        JPEG quality, inclusive.
    scale : (float, float)
        Resize factor.
    angle : float
        Rotation in [-angle, angle] degrees.
    crop : (float, float)
        Fraction of the width and of the height kept (each drawn), at a
        random position.
    blur : (float, float)
        Gaussian blur sigma in pixels.
    brightness, contrast : (float, float)
        Enhancement factors.
    """

    quality: tuple[int, int] = (50, 95)
    scale: tuple[float, float] = (0.8, 1.2)
    angle: float = 15.0
    crop: tuple[float, float] = (0.8, 1.0)
    blur: tuple[float, float] = (0.0, 1.5)
    brightness: tuple[float, float] = (0.8, 1.2)
    contrast: tuple[float, float] = (0.8, 1.2)

    def __post_init__(self) -> None:
        lo_q, hi_q = (check_int("TransformRanges", "quality", v, low=1, high=100)
                      for v in self.quality)
        if lo_q > hi_q:
            reject("TransformRanges", "quality", self.quality, "a range (low, high), low <= high")
        check_real("TransformRanges", "angle", self.angle, low=0, high=180)
        for name, hi in (("scale", 10.0), ("crop", 1.0), ("blur", 20.0), ("brightness", 10.0),
                         ("contrast", 10.0)):
            pair = getattr(self, name)
            lo, up = (check_real("TransformRanges", name, v, low=0, high=hi) for v in pair)
            positive = name in ("scale", "crop")
            if lo > up or (positive and lo <= 0):
                low = "0 < low" if positive else "low"
                reject("TransformRanges", name, pair,
                       f"a range (low, high) with {low} <= high <= {hi:g}")


#: What the EOT attack trains on: a little wider than the held-out ranges.
TRAIN_RANGES = TransformRanges(quality=(40, 98), scale=(0.75, 1.25), angle=18.0,
                               crop=(0.75, 1.0), blur=(0.0, 1.8), brightness=(0.75, 1.25),
                               contrast=(0.75, 1.25))


def draw_params(family: str, u: Sequence[float], ranges: TransformRanges) -> dict[str, float]:
    """The parameters of ``family`` from uniforms ``u`` in [0, 1) (five are enough).

    Shared by :func:`sample_transform` and :func:`hoodwink.survival.heldout_draws`,
    so that both draw from the same distribution, each with its own random source.
    """
    def lerp(pair: tuple[float, float], t: float) -> float:
        return pair[0] + (pair[1] - pair[0]) * t

    q_lo, q_hi = ranges.quality
    quality = q_lo + min(q_hi - q_lo, int(u[0] * (q_hi - q_lo + 1)))
    params: dict[str, float] = {"quality": float(quality)}
    if family == "rescale":
        params["scale"] = lerp(ranges.scale, u[1])
    elif family == "rotate":
        params["angle"] = (2 * u[1] - 1) * ranges.angle
    elif family == "crop":
        fw, fh = lerp(ranges.crop, u[1]), lerp(ranges.crop, u[2])
        left, top = u[3] * (1 - fw), u[4] * (1 - fh)
        params.update(left=left, top=top, right=left + fw, bottom=top + fh)
    elif family == "blur":
        params["sigma"] = lerp(ranges.blur, u[1])
    elif family == "brightness":
        params["factor"] = lerp(ranges.brightness, u[1])
    elif family == "contrast":
        params["factor"] = lerp(ranges.contrast, u[1])
    elif family != "jpeg":
        check_choice("draw_params", "family", family, FAMILIES)
    return params


def transform_of(family: str, params: dict[str, float], *, jpeg: bool = True,
                 rounding: Literal["ste", "cubic"] = "ste") -> Compose:
    """The differentiable composition for a family and its parameters (see :func:`draw_params`)."""
    steps: list[Transform] = []
    if family == "rescale":
        steps.append(Rescale(params["scale"]))
    elif family == "rotate":
        steps.append(Rotate(params["angle"]))
    elif family == "crop":
        steps.append(Crop((params["left"], params["top"], params["right"], params["bottom"])))
    elif family == "blur":
        steps.append(Blur(params["sigma"]))
    elif family == "brightness":
        steps.append(Brightness(params["factor"]))
    elif family == "contrast":
        steps.append(Contrast(params["factor"]))
    if jpeg:
        steps.append(DiffJPEG(int(params["quality"]), rounding=rounding))
    return Compose(tuple(steps))


def sample_transform(generator: torch.Generator, *,
                     ranges: TransformRanges = TRAIN_RANGES) -> Compose:
    """One random draw: a family of :data:`FAMILIES` (uniform), its parameters, then JPEG.

    Parameters
    ----------
    generator : torch.Generator
        The only source of randomness (CPU generator), so a seed reproduces the draws.
    ranges : TransformRanges, default :data:`TRAIN_RANGES`

    Returns
    -------
    Compose
        A differentiable map of (N, C, H, W) images in [0, 1].

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> t = sample_transform(g)
    >>> t(torch.rand(1, 3, 40, 50)).shape[1]
    3
    """
    if not isinstance(generator, torch.Generator):
        reject("sample_transform", "generator", generator, "a torch.Generator",
               hint="Pass torch.Generator().manual_seed(seed).")
    if not isinstance(ranges, TransformRanges):
        reject("sample_transform", "ranges", ranges, "a TransformRanges")
    u = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
    family = FAMILIES[min(len(FAMILIES) - 1, int(u[0] * len(FAMILIES)))]
    return transform_of(family, draw_params(family, u[1:], ranges))
