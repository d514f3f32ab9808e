"""The dream study's pieces that do not climb: the result type and the inputs.

:class:`DreamResult` is what :func:`hoodwink.studies.dream.dream` returns, and
what :mod:`hoodwink.studies.dream_report` and
:mod:`hoodwink.studies.background` read. :func:`resolve_classes`,
:func:`default_shape` and :func:`start_images` turn the caller's targets,
shape and start into class indices and a batch of start images, with the
errors that say what to pass instead. Import them from
:mod:`hoodwink.studies.dream`; this module is private.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hoodwink._validation import parse_index
from hoodwink.errors import ConfigError, OutOfBoundsError, ShapeError
from hoodwink.models.torch import TorchClassifier

__all__ = ["DreamResult", "default_shape", "resolve_classes", "start_images"]


@dataclass(frozen=True)
class DreamResult:
    """Images grown from noise (or a start image) towards target classes.

    Attributes
    ----------
    x : torch.Tensor, shape (N, C, H, W)
        The images, within the model bounds and, when the model has
        ``levels``, on its quantisation grid. For an image that reached the
        confidence this is the first iterate that did; otherwise the most
        confident iterate seen.
    target : torch.Tensor, shape (N,), int64
        The class each image was grown towards.
    confidence : torch.Tensor, shape (N,)
        Softmax probability of ``target`` for ``x``, from a fresh forward pass
        on the returned (snapped) images.
    predicted : torch.Tensor, shape (N,), int64
        The model's top class for ``x``.
    steps_used : torch.Tensor, shape (N,), int64
        Gradient steps taken before the image reached the confidence; ``steps``
        for images that never did.
    success : torch.Tensor, shape (N,), bool
        ``confidence >= threshold`` and ``predicted == target``.
    history : torch.Tensor, shape (N, steps + 1)
        Target probability of the (snapped) iterate before step ``t``, for
        ``t = 0 .. steps``; NaN after the image stopped.
    threshold : float
        The confidence asked for.
    target_names : tuple of str
        Class names of ``target`` (the index as text when the model has none).
    config : dict
        Every parameter of the call (not the model), for reports.
    seed : int
    time_s : float
        Wall-clock time of the call.
    """

    x: torch.Tensor
    target: torch.Tensor
    confidence: torch.Tensor
    predicted: torch.Tensor
    steps_used: torch.Tensor
    success: torch.Tensor
    history: torch.Tensor
    threshold: float
    target_names: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    time_s: float = 0.0

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def success_rate(self) -> float:
        """Fraction of images that reached the confidence threshold."""
        return float(self.success.float().mean()) if len(self) else float("nan")

    def steps_to(self, level: float) -> torch.Tensor:
        """Steps each image needed to reach target probability ``level``.

        Parameters
        ----------
        level : float
            A probability in (0, 1). Levels above ``threshold`` are only known
            for images that overshot it on the step they stopped.

        Returns
        -------
        torch.Tensor, shape (N,), int64
            The first step ``t`` at which the history reached ``level``, or -1
            where it never did within the run.
        """
        hit = torch.nan_to_num(self.history, nan=-1.0) >= level
        first = hit.float().argmax(dim=1)
        return torch.where(hit.any(dim=1), first, torch.full_like(first, -1)).long()

    def summary(self) -> dict[str, Any]:
        """Aggregate figures: success rate, steps (mean/median/max), confidence range."""
        steps = self.steps_used.double()
        ok = self.success
        return {
            "n": len(self),
            "threshold": self.threshold,
            "success_rate": self.success_rate,
            "steps_mean": float(steps.mean()) if len(self) else None,
            "steps_median": float(steps.median()) if len(self) else None,
            "steps_max": int(self.steps_used.max()) if len(self) else None,
            "steps_mean_successful": float(steps[ok].mean()) if bool(ok.any()) else None,
            "confidence_min": float(self.confidence.min()) if len(self) else None,
            "confidence_mean": float(self.confidence.mean()) if len(self) else None,
            "time_s": self.time_s,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record without the pixels (per image: class, confidence, steps)."""
        images = [
            {
                "target": int(t),
                "name": name,
                "confidence": float(c),
                "predicted": int(p),
                "steps_used": int(s),
                "success": bool(ok),
            }
            for t, name, c, p, s, ok in zip(
                self.target.tolist(), self.target_names, self.confidence.tolist(),
                self.predicted.tolist(), self.steps_used.tolist(), self.success.tolist(),
                strict=True,
            )
        ]
        return {
            "config": dict(self.config),
            "seed": self.seed,
            "summary": self.summary(),
            "images": images,
        }



# ---------------------------------------------------------------------------- inputs


def default_shape(model: TorchClassifier) -> tuple[int, int, int]:
    """The (C, H, W) a noise start gets when ``shape`` is not given.

    Parameters
    ----------
    model : TorchClassifier

    Returns
    -------
    tuple of int
        The model's declared ``input_shape`` when it has one of rank 3;
        ``(3, r, r)`` for a model whose preprocessing has a ``resolution``
        (the zoo's ImageNet models: their native size); ``(1, 28, 28)`` for the
        bundled MNIST networks; the shape of per-feature bounds of rank 3.

    Raises
    ------
    ConfigError
        The shape cannot be inferred; pass ``shape=(C, H, W)``.
    """
    declared = getattr(model, "input_shape", None)
    if declared is not None and len(declared) == 3:
        c, h, w = (int(d) for d in declared)
        return (c, h, w)
    res = getattr(model.preprocessing, "resolution", None)
    if isinstance(res, int) and res > 0:
        return (3, res, res)
    from hoodwink.zoo.mnist import DeepMnistCNN, MnistCNN, MnistLinear

    if isinstance(model.module, MnistCNN | MnistLinear | DeepMnistCNN):
        return (1, 28, 28)
    lower, _ = model.bounds
    if lower.ndim == 3:
        c, h, w = (int(s) for s in lower.shape)
        return (c, h, w)
    raise ConfigError(
        f"Cannot infer the input shape of {model!r}. Pass shape=(C, H, W) to dream(), "
        "e.g. shape=(3, 224, 224), or give a start image."
    )


def resolve_classes(
    model: TorchClassifier, target: int | str | Sequence[int | str] | torch.Tensor
) -> list[int]:
    """Class indices from indices and/or class names of ``model``.

    Parameters
    ----------
    model : TorchClassifier
    target : int, str, sequence of int or str, or 1-D tensor
        Indices, or names matched case-insensitively against
        ``model.class_names`` (for the 1000-class ImageNet models, also with
        the fuzzy suggestions of :func:`hoodwink.zoo.imagenet.resolve_class`).

    Returns
    -------
    list of int

    Raises
    ------
    ConfigError
        An index is out of range, a name is unknown, or the list is empty.
    """
    if isinstance(target, torch.Tensor):
        if target.ndim > 1 or target.is_floating_point() or target.is_complex():
            raise ConfigError(
                f"The 'target' parameter of dream must be a 1-D integer tensor of class "
                f"indices. Got dtype {target.dtype}, shape {tuple(target.shape)}."
            )
        items: list[int | str] = [int(v) for v in target.reshape(-1).tolist()]
    elif isinstance(target, int | str):
        items = [target]
    elif isinstance(target, Sequence) and not isinstance(target, bytes | bytearray):
        items = list(target)
    else:
        raise ConfigError(
            "The 'target' parameter of dream must be a class index or name, or a list of "
            f"them. Got {target!r}."
        )
    if not items:
        raise ConfigError("The 'target' parameter of dream is empty; give at least one class.")
    names = model.class_names
    try:
        c = model.num_classes
    except ConfigError:
        c = None
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ConfigError(
                f"The 'target' parameter of dream takes class indices or names. Got {item!r}."
            )
        if isinstance(item, str) and names is not None and len(names) == 1000:
            from hoodwink.zoo.imagenet import resolve_class

            out.append(resolve_class(item))
            continue
        if isinstance(item, str):
            s = item.strip()
            lowered = [n.lower() for n in names] if names is not None else []
            if s.lower() in lowered:
                out.append(lowered.index(s.lower()))
                continue
            index = parse_index(s)
            if index is None:
                known = f"the model's classes are {', '.join(names)}" if names else \
                    "this model has no class names; give an index"
                raise ConfigError(f"Unknown class {item!r} in 'target'; {known}.")
            item = index
        if c is not None and not 0 <= item < c:
            raise ConfigError(
                f"The 'target' parameter of dream has class {item}, outside the model's "
                f"classes 0..{c - 1}."
            )
        out.append(item)
    return out


def start_images(
    model: TorchClassifier,
    start: torch.Tensor | str | Path | None,
    shape: tuple[int, int, int] | None,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """The ``n`` start images of :func:`~hoodwink.studies.dream.dream`, on the CPU.

    Uniform noise over the model bounds (drawn from ``generator``) when
    ``start`` is None; otherwise ``start`` (a tensor or an image file)
    checked for shape, finite values and bounds, repeated to ``n`` images.

    Returns
    -------
    torch.Tensor, shape (n, C, H, W)
    """
    lower, upper = (b.cpu() for b in model.bounds)
    if start is None:
        c, h, w = shape if shape is not None else default_shape(model)
        if min(c, h, w) < 1:
            raise ConfigError(f"The 'shape' parameter of dream must be positive. Got {shape}.")
        u = torch.rand((n, c, h, w), generator=generator)
        return lower + u * (upper - lower)
    if isinstance(start, str | Path):
        from hoodwink.imaging import load_image

        channels = shape[0] if shape is not None else default_shape(model)[0]
        x0 = load_image(start, mode="L" if channels == 1 else "RGB")
    elif isinstance(start, torch.Tensor):
        x0 = start.detach().cpu().float()
    else:
        raise ConfigError(
            f"The 'start' parameter of dream must be None (noise), an image tensor or an "
            f"image path. Got {type(start).__name__}."
        )
    if x0.ndim == 3:
        x0 = x0[None]
    if x0.ndim != 4 or x0.shape[0] not in (1, n):
        raise ShapeError(
            f"The start image must have shape (C, H, W), (1, C, H, W) or ({n}, C, H, W) for "
            f"{n} targets. Got {tuple(x0.shape)}."
        )
    if not torch.isfinite(x0).all():
        raise ShapeError("The start image contains NaN or infinite values.")
    if bool((x0 < lower - 1e-6).any() or (x0 > upper + 1e-6).any()):
        raise OutOfBoundsError(
            f"The start image has values in [{float(x0.min()):.3g}, {float(x0.max()):.3g}], "
            f"outside the model bounds. Pass raw pixels in the bounds, e.g. in [0, 1]."
        )
    return x0.expand(n, *x0.shape[1:]).clone()

