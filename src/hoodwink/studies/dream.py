"""Fooling images from noise: climb a class score until the network is sure.

Nguyen, Yosinski and Clune (*Deep Neural Networks are Easily Fooled: High
Confidence Predictions for Unrecognizable Images*, CVPR 2015) showed that
gradient ascent on a class score, started from random noise, produces images
a ConvNet assigns to that class with more than 99.6% confidence although no
person would. :func:`dream` does exactly that, batched over several target
classes: it maximises ``log_softmax(model(x))[target]`` by steepest ascent
(signed gradient for ``norm="linf"``, unit-L2 gradient for ``norm="l2"``)
inside the model's bounds, and stops each image as soon as the model gives
its target at least ``confidence`` probability.

Optional smoothness regularisation makes the pattern less like noise and more
like a picture (Yosinski et al., *Understanding Neural Networks Through Deep
Visualization*, 2015): ``smoothness`` mixes in the descent direction of a
total-variation penalty and ``blur`` applies a small Gaussian blur every
``blur_every`` steps. Both cost steps: the class score has to climb against
them.

When the model has quantisation levels (8-bit images), every iterate is
snapped to the grid before it is scored, so the confidence reported is the
confidence of an image that can be saved losslessly as PNG; the returned
confidence comes from a fresh forward pass on the returned images.
:func:`write_dream` saves the images, a gallery and a versioned JSON record
through :class:`~hoodwink.reports.Report`, re-reading every PNG and scoring
what was actually written.
"""


from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import torch
import torch.nn.functional as F

from hoodwink._validation import check_choice, check_int, check_real, check_seed
from hoodwink.attacks._norms import clip_to_bounds, on_grid, steepest_step
from hoodwink.attacks.pgd import MAX_STEPS
from hoodwink.errors import ConfigError, InternalError
from hoodwink.models.torch import TorchClassifier
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.studies._dream_core import (
    DreamResult,
    default_shape,
    resolve_classes,
    start_images,
)
from hoodwink.studies.dream_report import DreamOutputs, record, report, write_dream

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "NGUYEN_CONFIDENCE",
    "DreamOutputs",
    "DreamParams",
    "DreamResult",
    "default_shape",
    "dream",
    "report",
    "resolve_classes",
    "run",
    "total_variation",
    "write_dream",
]


_log = logging.getLogger(__name__)

#: The confidence Nguyen et al. (2015) report for their fooling images.
NGUYEN_CONFIDENCE = 0.996

DreamNorm = Literal["linf", "l2"]
_NORMS: tuple[DreamNorm, ...] = ("linf", "l2")


# ---------------------------------------------------------------------------- regularisers


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image: mean absolute neighbour difference.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, H, W)

    Returns
    -------
    torch.Tensor, shape (N,)
        ``mean |x[..., i+1, j] - x[..., i, j]| + mean |x[..., i, j+1] - x[..., i, j]|``.
        About 0.67 for uniform noise in [0, 1], 0 for a constant image. Being a
        mean, it does not grow with the image size.
    """
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(dim=1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(dim=1)
    return dh + dw


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel, reflect padding (values stay in their range)."""
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _tv_gradient(x: torch.Tensor) -> torch.Tensor:
    xg = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(total_variation(xg).sum(), xg)
    return g


def _balance(g_class: torch.Tensor, g_tv: torch.Tensor, smoothness: float) -> torch.Tensor:
    """``g_class / mean|g_class| - smoothness * g_tv / mean|g_tv|``, per sample.

    Normalising both gradients makes ``smoothness`` a ratio of pulls that means
    the same on a 28x28 digit and a 224x224 photo, whatever the scale of the
    model's gradients.
    """

    def unit(g: torch.Tensor) -> torch.Tensor:
        scale = g.abs().flatten(1).mean(dim=1).clamp_min(1e-30)
        return g / scale.view(-1, *([1] * (g.ndim - 1)))

    return unit(g_class) - smoothness * unit(g_tv)


def _snap(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: int) -> torch.Tensor:
    span = upper - lower
    k = torch.round((x - lower) / span * (levels - 1)).clamp(0, levels - 1)
    # (k * span) / (levels - 1), not k * step: bit-identical to an 8-bit file read back.
    return lower + (k * span) / (levels - 1)


# ---------------------------------------------------------------------------- the method


def dream(
    model: TorchClassifier,
    target: int | str | Sequence[int | str] | torch.Tensor,
    *,
    start: torch.Tensor | str | Path | None = None,
    shape: tuple[int, int, int] | None = None,
    confidence: float = NGUYEN_CONFIDENCE,
    steps: int = 200,
    stepsize: float = 1 / 255,
    norm: DreamNorm = "linf",
    smoothness: float = 0.0,
    blur: float = 0.0,
    blur_every: int = 4,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> DreamResult:
    """Grow one image per target class until the model is ``confidence`` sure of it.

    White-box, targeted, unbounded (no eps-ball: only the model bounds
    constrain the image). Needs input gradients (a :class:`TorchClassifier`).
    Implements the gradient-ascent fooling images of Nguyen et al. (CVPR 2015),
    with the smoothness priors of Yosinski et al. (2015) as options.

    Parameters
    ----------
    model : TorchClassifier
    target : int, str, sequence of int or str, or tensor of shape (N,)
        One image is grown per entry (repeats allowed). Names are resolved by
        :func:`resolve_classes`.
    start : tensor, path or None, default None
        None starts every image from uniform noise over the bounds, drawn from
        a local generator seeded by ``seed``. A tensor of shape (C, H, W),
        (1, C, H, W) or (N, C, H, W), or an image file, starts from that.
    shape : (C, H, W), optional
        Size of the noise image; default :func:`default_shape` (224×224 RGB
        for EfficientNet-Lite0, 28×28 grey for the MNIST networks).
    confidence : float in (0, 1), default 0.996
        Softmax probability of the target at which an image stops.
    steps : int >= 1, default 200
        Most gradient steps per image.
    stepsize : float > 0, default 1/255
        Step length: per-pixel change for ``norm="linf"``, L2 length of the
        whole step for ``norm="l2"``.
    norm : {"linf", "l2"}, default "linf"
        Steepest ascent direction: the gradient's sign, or the gradient
        scaled to unit L2 norm.
    smoothness : float >= 0, default 0
        Pull towards a smooth image. Each step follows
        ``g / mean|g| - smoothness * h / mean|h|``, where ``g`` is the gradient
        of ``log p(target | x)`` and ``h`` that of :func:`total_variation`;
        normalising both makes the value mean the same on a 28x28 digit and a
        224x224 photo. 1 halves the total variation of MNIST fooling images
        at equal steps; above about 2 the pull can keep images below a high
        ``confidence``.
    blur : float >= 0, default 0
        Standard deviation, in pixels, of a Gaussian blur applied to the
        iterate every ``blur_every`` steps (0: never).
    blur_every : int >= 1, default 4
    seed : int, default 0
        Seeds the noise start; nothing else is random.
    progress : callable, optional
        ``progress(step, steps, message)`` (:mod:`hoodwink.progress`) after
        every step; the message says how many images reached the confidence.

    Returns
    -------
    DreamResult

    Raises
    ------
    ConfigError
        An unknown class, ``confidence`` outside (0, 1), ``steps < 1``, or any
        other invalid parameter.
    ShapeError, OutOfBoundsError
        A start image of the wrong shape or outside the model bounds.

    Examples
    --------
    >>> from hoodwink import zoo
    >>> from hoodwink.studies.dream import dream
    >>> res = dream(zoo.load("mnist-cnn"), [3, 7], steps=300)  # doctest: +SKIP
    >>> res.confidence.min() >= 0.996  # doctest: +SKIP
    tensor(True)
    """
    t0 = time.perf_counter()
    if not isinstance(model, TorchClassifier):
        raise ConfigError(
            f"dream needs a TorchClassifier (it uses input gradients). Got "
            f"{type(model).__name__}."
        )
    confidence = check_real("dream", "confidence", confidence, low=0, high=1,
                            closed="neither", hint="e.g. 0.996")
    steps = check_int("dream", "steps", steps, low=1, high=MAX_STEPS)
    stepsize = check_real("dream", "stepsize", stepsize, low=0, closed="neither",
                          hint="e.g. 1/255")
    smoothness = check_real("dream", "smoothness", smoothness, low=0)
    blur = check_real("dream", "blur", blur, low=0)
    blur_every = check_int("dream", "blur_every", blur_every, low=1)
    seed = check_seed("dream", "seed", seed)
    report = as_callback(progress)
    norm = check_choice("dream", "norm", norm, _NORMS)
    if shape is not None and (
        not isinstance(shape, tuple | list) or len(shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
    ):
        raise ConfigError(
            f"The 'shape' parameter of dream must be (C, H, W), three ints. Got {shape!r}."
        )
    targets = resolve_classes(model, target)
    n = len(targets)
    names = model.class_names
    target_names = tuple(names[t] if names else str(t) for t in targets)
    generator = torch.Generator().manual_seed(seed)
    shape3 = (int(shape[0]), int(shape[1]), int(shape[2])) if shape is not None else None
    x0 = start_images(model, start, shape3, n, generator)
    if blur > 0 and x0.ndim != 4:
        raise ConfigError("The 'blur' parameter of dream needs image inputs (N, C, H, W).")

    device = model.device
    lower, upper = (b.to(device) for b in model.bounds)
    levels = model.levels
    tgt = torch.tensor(targets, dtype=torch.int64, device=device)

    def snap(x: torch.Tensor) -> torch.Tensor:
        return _snap(x, lower, upper, levels) if levels else x

    xc = clip_to_bounds(x0.to(device), lower, upper)
    best = snap(xc).clone()
    best_p = torch.full((n,), -1.0, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    steps_used = torch.full((n,), steps, dtype=torch.int64, device=device)
    history = torch.full((n, steps + 1), float("nan"), device=device)
    idx = torch.arange(n, device=device)

    for t in range(steps + 1):
        xq = snap(xc)
        tg = tgt[idx]
        if t < steps:
            # -CE(target) is log p(target): the targeted attack loss is the objective.
            _, logits, grad = model.loss_gradient(xq, tg, loss="ce", targeted=True)
            if smoothness > 0:
                grad = _balance(grad, _tv_gradient(xq), smoothness)
        else:
            logits = model.logits(xq)
        probs = torch.softmax(logits, dim=1)
        p = probs.gather(1, tg[:, None])[:, 0]
        history[idx, t] = p
        reached = (p >= confidence) & (probs.argmax(dim=1) == tg)
        better = reached | (p > best_p[idx])
        best[idx[better]] = xq[better]
        best_p[idx[better]] = p[better]
        done[idx[reached]] = True
        steps_used[idx[reached]] = t
        report(t, steps, f"{int(done.sum())}/{n} at {confidence:.1%}")
        keep = ~reached
        if t == steps or not bool(keep.any()):
            break
        if not bool(keep.all()):
            idx, xc, grad = idx[keep], xc[keep], grad[keep]
        xc = clip_to_bounds(xc + stepsize * steepest_step(grad, norm), lower, upper)
        if blur > 0 and (t + 1) % blur_every == 0:
            xc = clip_to_bounds(_gaussian_blur(xc, blur), lower, upper)

    # Guarantees, checked on what is returned rather than trusted from the loop.
    if bool((best < lower).any() or (best > upper).any()):
        raise InternalError("dream returned pixels outside the model bounds; please report it.")
    if levels and not on_grid(best, lower, upper, levels):
        raise InternalError("dream returned pixels off the quantisation grid; please report it.")
    probs = model.probabilities(best)
    conf = probs.gather(1, tgt[:, None])[:, 0]
    pred = probs.argmax(dim=1)
    success = (conf >= confidence) & (pred == tgt)
    config = {
        "targets": targets, "start": "noise" if start is None else (
            str(start) if isinstance(start, str | Path) else "tensor"),
        "shape": list(best.shape[1:]), "confidence": confidence, "steps": steps,
        "stepsize": stepsize, "norm": norm, "smoothness": smoothness, "blur": blur,
        "blur_every": blur_every, "seed": seed, "model": repr(model),
    }
    res = DreamResult(
        x=best.detach(), target=tgt, confidence=conf, predicted=pred,
        steps_used=steps_used, success=success, history=history.cpu(),
        threshold=confidence, target_names=target_names, config=config, seed=seed,
        time_s=time.perf_counter() - t0,
    )
    _log.info("dream: %d/%d images reached %.4f in %.1f s", int(success.sum()), n, confidence,
              res.time_s)
    return res


# ---------------------------------------------------------------------------- the contract


class DreamParams(TypedDict, total=False):
    """The keywords of :func:`dream` that :func:`run` passes on (defaults: :func:`dream`'s)."""

    start: torch.Tensor | str | Path | None
    shape: tuple[int, int, int] | None
    confidence: float
    steps: int
    stepsize: float
    norm: DreamNorm
    smoothness: float
    blur: float
    blur_every: int
    seed: int
    progress: ProgressCallback | None


def run(
    model: str | TorchClassifier,
    target: int | str | Sequence[int | str] | torch.Tensor,
    *,
    model_name: str | None = None,
    stem: str = "dream",
    **params: Unpack[DreamParams],
) -> dict[str, Any]:
    """Run :func:`dream` and return the record, judged on the PNG files.

    Parameters
    ----------
    model : str or TorchClassifier
        A zoo name (``hoodwink.zoo.load``) or a model.
    target
        As in :func:`dream`.
    model_name : str, optional
        Shown in the report; default the zoo name, else ``"model"``.
    stem : str, default "dream"
        Prefix of the image file names.
    **params
        Any keyword of :func:`dream` (:class:`DreamParams`): start, shape,
        confidence, steps, stepsize, norm, smoothness, blur, blur_every, seed,
        progress; with :func:`dream`'s defaults.

    Returns
    -------
    dict
        :func:`hoodwink.studies.dream_report.record`: data only, the PNGs inside
        as base64 text; :func:`report` renders it.
    """
    if isinstance(model, str):
        from hoodwink import zoo

        name = model_name or model
        clf = zoo.load(model)
    else:
        name, clf = model_name or "model", model
    res = dream(clf, target, **params)
    return record(clf, res, model_name=name, stem=stem)
