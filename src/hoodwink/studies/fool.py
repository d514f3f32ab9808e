"""The main job: fool a classifier on one image file, and prove it from disk.

:func:`fool_image` attacks an image at its own size (any resizing is part of
the model's differentiable preprocessing), snaps the result to 8 bits, encodes
it as PNG, decodes it again and classifies *that*, so what is reported is what
will be on disk. Files are written only when the attack succeeded, each one
atomically; on failure nothing is left behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from hoodwink.attacks.pgd import PGD
from hoodwink.errors import BudgetExhaustedError, ConfigError, InputError
from hoodwink.imaging import check_writable, decode_png, load_image
from hoodwink.models.torch import TorchClassifier
from hoodwink.reports import atomic_write_bytes, atomic_write_text, to_jsonable

__all__ = ["AUTO_EPS", "FoolOutcome", "fool_image", "fool_tensor", "top_k"]

_log = logging.getLogger(__name__)

#: Budgets tried in order by ``eps="auto"``, in 8-bit pixel units / 255.
AUTO_EPS: tuple[float, ...] = tuple(k / 255 for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))

SCHEMA = "hoodwink.fool/1"


@dataclass(frozen=True)
class Prediction:
    """One class with its probability."""

    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class FoolOutcome:
    """What :func:`fool_image` did, with predictions re-read from the saved PNG."""

    source: str
    model: str
    target: int | None
    target_name: str | None
    eps: float
    eps_auto: bool
    eps_tried: list[float]
    steps: int
    success: bool
    before: list[Prediction]
    after: list[Prediction]
    max_change_255: int
    size: tuple[int, int]
    time_s: float
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        from hoodwink.attacks.result import environment

        d: dict[str, Any] = {"schema": SCHEMA}
        d.update(to_jsonable(self.__dict__))
        d["before"] = [p.__dict__ for p in self.before]
        d["after"] = [p.__dict__ for p in self.after]
        d["eps_255"] = round(self.eps * 255, 4)
        d["environment"] = environment()
        return d


def top_k(model: TorchClassifier, x: torch.Tensor, k: int = 3) -> list[Prediction]:
    """The ``k`` most probable classes for a single input ``x`` of shape (1, ...)."""
    p = model.probabilities(x)[0]
    vals, idx = p.topk(min(k, p.numel()))
    names = model.class_names
    return [
        Prediction(int(i), names[int(i)] if names else str(int(i)), float(v))
        for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
    ]


def fool_tensor(
    model: TorchClassifier,
    x: torch.Tensor,
    *,
    target: int | None,
    eps: float,
    steps: int = 40,
    seed: int = 0,
    mode: Literal["RGB", "L"] = "RGB",
    confidence: float = 0.9,
) -> tuple[torch.Tensor, bytes, torch.Tensor, bool]:
    """Attack one image tensor; return (x_adv, png bytes, x re-read from png, success).

    Each sample stops once it is adversarial with at least ``confidence``
    probability (or after ``steps``). Success is judged on the image decoded
    from the PNG bytes: for a target, classified as the target; otherwise
    classified differently from ``x``.
    """
    from hoodwink.imaging import encode_png

    y0 = int(model.predict(x)[0])
    attack = PGD(norm="linf", steps=steps, stepsize=max(eps / 4, 0.25 / 255),
                 random_start=False, early_stop=True, confidence=confidence, seed=seed,
                 loss="ce")
    if target is not None:
        if target == y0:
            raise InputError(
                f"The image is already classified as the target class {target}; pick another."
            )
        res = attack(model, x, target=target, eps=eps)
    else:
        res = attack(model, x, torch.tensor([y0]), eps=eps)
    png = encode_png(res.x_adv)
    x_back = decode_png(png, mode)
    pred = int(model.predict(x_back)[0])
    ok = pred == target if target is not None else pred != y0
    return res.x_adv, png, x_back, ok


def fool_image(
    model: TorchClassifier,
    image: str | Path,
    *,
    model_name: str = "model",
    target: int | None = None,
    eps: float | Literal["auto"] = 2 / 255,
    out: str | Path | None = None,
    steps: int = 40,
    seed: int = 0,
    figure: bool = True,
    mode: Literal["RGB", "L"] = "RGB",
    progress: Callable[[str], None] | None = None,
) -> FoolOutcome:
    """Fool ``model`` on an image file and write the adversarial PNG.

    Parameters
    ----------
    model : TorchClassifier
        Must accept the image at its own size (e.g. a zoo ImageNet model, whose
        preprocessing resizes differentiably).
    image : path
    target : int, optional
        Class index to aim for; untargeted (any other class) when None.
    eps : float or "auto"
        L∞ budget in [0, 1] units (2/255 = two 8-bit levels). ``"auto"`` tries
        :data:`AUTO_EPS` in order and keeps the first that works.
    out : path, optional
        The adversarial PNG; default ``<image stem>-adv.png`` in the current
        folder. The triptych goes beside it as ``<out stem>-triptych.png`` and
        the JSON record as ``<out stem>.json``.
    steps : int
        PGD steps per budget.
    figure : bool
        Write the triptych figure.
    mode : {"RGB", "L"}
        Colour or grayscale input.
    progress : callable, optional
        Called with a short status line (the CLI shows it).

    Returns
    -------
    FoolOutcome

    Raises
    ------
    BudgetExhaustedError
        No budget worked; nothing was written.
    """
    t0 = time.perf_counter()
    src = Path(image)
    out_path = Path(out) if out is not None else Path(f"{src.stem}-adv.png")
    if out_path.suffix.lower() != ".png":
        raise ConfigError(
            f"The output must be a .png file (lossless, so the 8-bit perturbation survives); "
            f"got {out_path}."
        )
    check_writable(out_path)
    x = load_image(src, mode=mode)
    if eps == "auto":
        budgets: Sequence[float] = AUTO_EPS
    elif isinstance(eps, int | float) and 0 < float(eps) <= 1:
        budgets = (float(eps),)
    else:
        raise ConfigError(
            f"The 'eps' parameter must be in (0, 1] (e.g. 2/255) or 'auto'. Got {eps!r}."
        )
    before = top_k(model, x)
    names = model.class_names
    tried: list[float] = []
    for e in budgets:
        tried.append(e)
        if progress is not None:
            progress(f"attacking at eps = {e * 255:g}/255")
        x_adv, png, x_back, ok = fool_tensor(model, x, target=target, eps=e, steps=steps,
                                             seed=seed, mode=mode)
        if ok:
            break
    else:
        after = top_k(model, x_back)
        want = f"class {target} ({names[target] if names else target})" if target is not None \
            else "a different class"
        raise BudgetExhaustedError(
            f"eps = {tried[-1] * 255:g}/255 was not enough to make {model_name} predict {want}: "
            f"after saving it still predicts {after[0].name} ({after[0].probability:.2f}). "
            + ("Try a larger budget (--eps 4/255) or --eps auto." if eps != "auto"
               else "Even the largest automatic budget failed; try more --steps.")
            + " Nothing was written."
        )
    after = top_k(model, x_back)
    max_change = int(torch.round((x_back - x).abs().max() * 255).item())
    stem = out_path.with_suffix("")
    outputs = {"adversarial": str(out_path), "record": str(stem) + ".json"}
    if figure:
        outputs["figure"] = f"{stem}-triptych.png"
    outcome = FoolOutcome(
        source=str(src), model=model_name, target=target,
        target_name=(names[target] if names and target is not None else None),
        eps=tried[-1], eps_auto=eps == "auto", eps_tried=tried, steps=steps, success=True,
        before=before, after=after, max_change_255=max_change,
        size=(int(x.shape[-1]), int(x.shape[-2])), time_s=time.perf_counter() - t0,
        outputs=outputs,
    )
    # Render everything in memory first, then write: no half-written output on error.
    fig_bytes = _triptych(x, x_back, before, after, outcome) if figure else None
    atomic_write_bytes(out_path, png)
    if fig_bytes is not None:
        atomic_write_bytes(outputs["figure"], fig_bytes)
    atomic_write_text(outputs["record"], json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome


def _label(preds: list[Prediction]) -> str:
    return "\n".join(f"{p.name[:24]}: {p.probability:.3f}" for p in preds)


def _triptych(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    before: list[Prediction],
    after: list[Prediction],
    outcome: FoolOutcome,
) -> bytes:
    """Original | amplified perturbation | adversarial, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delta = (x_adv - x)[0]
    amp = delta.abs().max().clamp_min(1e-12)
    panels = [x[0], 0.5 + delta / (2 * amp), x_adv[0]]
    titles = [
        f"original\n{_label(before)}",
        f"perturbation ×{0.5 / float(amp):.0f}\n(max {outcome.max_change_255}/255 per pixel)",
        f"adversarial (re-read from PNG)\n{_label(after)}",
    ]
    h, w = x.shape[-2:]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6 * h / w + 1.4))
    for ax, img, title in zip(axes, panels, titles, strict=True):
        arr = img.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(arr[:, :, 0] if arr.shape[2] == 1 else arr, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
    fig.suptitle(f"{outcome.model}: eps = {outcome.eps * 255:g}/255", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
