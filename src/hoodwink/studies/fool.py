"""The main job: fool a classifier on one image file, and prove it from disk.

:func:`fool_image` attacks an image at its own size (any resizing is part of
the model's differentiable preprocessing), snaps the result to 8 bits, encodes
it as PNG, decodes it again and classifies *that*, so what is reported is what
will be on disk. Files are written only when the attack succeeded, each one
atomically; on failure nothing is left behind.

The study contract (:mod:`hoodwink.studies`): :func:`run` does the same attack
in memory and returns a plain-data record, with the original and the
adversarial PNG inside (base64 text); :func:`report` draws the triptych and the
page from that record alone (:mod:`hoodwink.studies.fool_report`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from hoodwink.attacks.pgd import PGD
from hoodwink.errors import BudgetExhaustedError, ConfigError, InputError
from hoodwink.imaging import check_writable, decode_png, load_image, make_parent
from hoodwink.models.torch import TorchClassifier
from hoodwink.progress import ProgressCallback, scaled
from hoodwink.reports import atomic_write_bytes, atomic_write_text, to_jsonable
from hoodwink.studies._record import check_record, to_b64
from hoodwink.studies.fool_report import report, triptych

__all__ = [
    "AUTO_EPS",
    "EOT_SAMPLES",
    "EOT_STEPS",
    "FoolOutcome",
    "eot_attack",
    "fool_image",
    "fool_tensor",
    "report",
    "run",
    "top_k",
]

_log = logging.getLogger(__name__)

#: Budgets tried in order by ``eps="auto"``, in 8-bit pixel units / 255.
AUTO_EPS: tuple[float, ...] = tuple(k / 255 for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))

SCHEMA = "hoodwink.fool/1"

#: Transformations averaged per step in robust mode (one of them the identity).
EOT_SAMPLES = 8
#: Steps in robust mode when ``steps`` is not given.
EOT_STEPS = 60
#: Held-out draws measured after a robust attack when ``survival_draws`` is not given.
ROBUST_SURVIVAL_DRAWS = 50


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
    #: Seconds per phase: whatever the caller measured before (the CLI: ``startup``,
    #: ``model_load``), then ``attack``, ``png_roundtrip`` (encode, decode, classify
    #: the re-read image), ``survival`` (when measured), ``figure`` and ``total`` (up to
    #: writing the record).
    timings_s: dict[str, float] = field(default_factory=dict)
    #: The image mode attacked and saved: "L" (grey, 1 channel) or "RGB".
    mode: str = "RGB"
    #: Optimised over random transformations (expectation over transformation).
    robust: bool = False
    #: Transformations averaged per step (robust mode), else None.
    eot_samples: int | None = None
    #: :meth:`hoodwink.survival.SurvivalReport.to_dict` of the saved PNG, measured with
    #: the real codecs on held-out draws; None when ``survival_draws`` was 0.
    survival: dict[str, Any] | None = None

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


def top_k(model: TorchClassifier, x: torch.Tensor, k: int = 3, *,
          probabilities: torch.Tensor | None = None) -> list[Prediction]:
    """The ``k`` most probable classes for a single input ``x`` of shape (1, ...).

    ``probabilities`` (shape (1, C)), when the caller has them already, saves
    the forward pass.
    """
    p = (probabilities if probabilities is not None else model.probabilities(x))[0]
    vals, idx = p.topk(min(k, p.numel()))
    names = model.class_names
    return [
        Prediction(int(i), names[int(i)] if names else str(int(i)), float(v))
        for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
    ]


def _grid_box(x: torch.Tensor, eps: float, model: TorchClassifier
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The 8-bit grid points within ``eps`` of ``x`` and within the model's bounds, as a box."""
    lo_b, hi_b = (b.to(x) for b in model.bounds)
    lo = torch.maximum(torch.ceil((x - eps) * 255 - 1e-4) / 255,
                       torch.ceil(lo_b * 255 - 1e-4) / 255)
    hi = torch.minimum(torch.floor((x + eps) * 255 + 1e-4) / 255,
                       torch.floor(hi_b * 255 + 1e-4) / 255)
    if bool((lo > hi).any()):
        raise ConfigError(
            f"No 8-bit level lies within eps = {eps * 255:.3g}/255 of some pixels of x (x is "
            "off the 8-bit grid); give eps >= 1/255 or an image read from an 8-bit file."
        )
    return lo, hi


def eot_attack(
    model: TorchClassifier,
    x: torch.Tensor,
    *,
    target: int | None,
    eps: float,
    y0: int | None = None,
    steps: int = EOT_STEPS,
    eot_samples: int = EOT_SAMPLES,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    """L∞ attack on one image that survives random transformations (EOT).

    Expectation over transformation (Athalye, Engstrom, Ilyas and Kwok,
    "Synthesizing Robust Adversarial Examples", ICML 2018): each step averages
    the gradient of the cross-entropy (towards ``target``, or away from ``y0``)
    over ``eot_samples`` images: the image itself and ``eot_samples - 1``
    random draws of :func:`hoodwink.transforms.sample_transform` (a resize,
    rotation, crop, blur, brightness or contrast change, then a differentiable
    JPEG). The step is the sign of a momentum of the normalised gradient
    (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018),
    with a cosine-decaying length from eps/4 to eps/50. Every iterate is a
    point of the 8-bit grid within eps of ``x`` and within the bounds (the
    rounding passes gradients straight through), and so is the result.

    Threat model: white box (input gradients), targeted or untargeted, L∞
    ball of radius ``eps``, on an image the transformations may alter.

    Parameters
    ----------
    model : TorchClassifier
        Takes images of any size (the zoo's ImageNet models resize inside).
    x : torch.Tensor, shape (1, C, H, W)
        In [0, 1]; C = 1 or 3.
    target : int or None
        Class to aim for; None: untargeted (away from ``y0``).
    eps : float in (0, 1]
    y0 : int, optional
        The class of ``x`` (computed when None); used when untargeted.
    steps : int in [1, 100000], default :data:`EOT_STEPS`
    eot_samples : int in [1, 1024], default :data:`EOT_SAMPLES`
        Images per step (one the identity); each costs a forward and backward pass.
    seed : int >= 0
        Seeds the transformations' ``torch.Generator`` (nothing global).
    progress : callable, optional
        ``progress(done, steps, message)``.

    Returns
    -------
    torch.Tensor, shape of ``x``
        On the 8-bit grid, within eps of ``x`` (in whole levels) and the bounds.

    Raises
    ------
    ConfigError
        A bad parameter, or ``eps`` too small for any 8-bit level near an
        off-grid ``x``.
    InternalError
        The result broke a guarantee (a library bug).
    """
    import math

    import torch.nn.functional as F

    from hoodwink._validation import check_int, check_real, check_seed
    from hoodwink.errors import InternalError
    from hoodwink.transforms import sample_transform

    owner = "eot_attack"
    eps = check_real(owner, "eps", eps, low=0, high=1, closed="right")
    steps = check_int(owner, "steps", steps, low=1, high=100_000)
    eot_samples = check_int(owner, "eot_samples", eot_samples, low=1, high=1024)
    seed = check_seed(owner, "seed", seed)
    _mode_of(x, None)
    if y0 is None:
        y0 = int(model.predict(x)[0])
    targeted = target is not None
    label = torch.tensor([target if target is not None else y0], device=x.device)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = _grid_box(x.detach(), eps, model)
    x0 = x.detach()
    delta = (torch.round(x0 * 255) / 255).clamp(lo, hi) - x0
    mom = torch.zeros_like(x0)

    def objective(logits: torch.Tensor, _x: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, label.expand(logits.shape[0]), reduction="none")
        return -ce if targeted else ce

    with model.evaluating():
        for i in range(steps):
            d = delta.clone().requires_grad_(True)
            xa = x0 + d
            # The model sees grid points; the rounding passes gradients straight through.
            xa = xa + ((torch.round(xa * 255) / 255).clamp(lo, hi) - xa).detach()
            outs, grads = [], []
            for j in range(eot_samples):
                z = xa if j == 0 else sample_transform(gen)(xa)
                _, _, gz = model.objective_gradient(z.detach(), objective)
                outs.append(z)
                grads.append(gz)
            torch.autograd.backward(outs, grads)
            g = d.grad if d.grad is not None else torch.zeros_like(x0)
            mom = 0.5 * mom + g / g.abs().mean().clamp_min(1e-12)
            size = eps * (0.02 + 0.23 * 0.5 * (1 + math.cos(math.pi * i / steps)))
            delta = (x0 + delta + size * mom.sign()).clamp(lo, hi) - x0
            if progress is not None:
                progress(i + 1, steps, f"EOT step {i + 1}/{steps}")
    x_adv = (torch.round((x0 + delta) * 255) / 255).clamp(lo, hi)
    on_grid = bool((x_adv * 255 - torch.round(x_adv * 255)).abs().max() < 1e-4)
    lo_b, hi_b = (b.to(x_adv) for b in model.bounds)
    if not on_grid or bool(((x_adv - x0).abs() > eps + 1e-6).any()) \
            or bool((x_adv < lo_b).any() or (x_adv > hi_b).any()):
        raise InternalError("eot_attack returned an image off the 8-bit grid, outside eps or "
                            "outside the bounds; please report this bug.")
    return x_adv.to(x.dtype)


def fool_tensor(
    model: TorchClassifier,
    x: torch.Tensor,
    *,
    target: int | None,
    eps: float,
    steps: int = 40,
    seed: int = 0,
    mode: Literal["RGB", "L"] | None = None,
    confidence: float = 0.9,
    y0: int | None = None,
    progress: ProgressCallback | None = None,
    times: dict[str, float] | None = None,
    probabilities_back: list[torch.Tensor] | None = None,
    robust: bool = False,
    eot_samples: int = EOT_SAMPLES,
) -> tuple[torch.Tensor, bytes, torch.Tensor, bool]:
    """Attack one image tensor; return (x_adv, png bytes, x re-read from png, success).

    Each sample stops once it is adversarial with at least ``confidence``
    probability (or after ``steps``). Success is judged on the image decoded
    from the PNG bytes: for a target, classified as the target; otherwise
    classified differently from ``x``.

    ``y0`` is the model's class for ``x`` when the caller knows it already (one
    forward pass saved); ``progress`` reports the PGD steps; ``times`` gets the
    seconds spent in ``"attack"`` and ``"png_roundtrip"`` added;
    ``probabilities_back`` gets the probabilities of the re-read image appended.
    ``mode`` ("L" or "RGB"), when given, must match the channels of ``x`` (1 or 3);
    the PNG keeps them. ``robust`` runs :func:`eot_attack` (``steps`` steps of
    ``eot_samples`` transformed images each) instead of plain PGD; the result
    is judged the same way.
    """
    from hoodwink.imaging import encode_png

    png_mode = _mode_of(x, mode)
    t0 = time.perf_counter()
    if y0 is None:
        y0 = int(model.predict(x)[0])
    if target is not None and target == y0:
        raise InputError(
            f"The image is already classified as the target class {target}; pick another."
        )
    if robust:
        x_adv = eot_attack(model, x, target=target, eps=eps, y0=y0, steps=steps,
                           eot_samples=eot_samples, seed=seed, progress=progress)
    else:
        attack = PGD(norm="linf", steps=steps, stepsize=max(eps / 4, 0.25 / 255),
                     random_start=False, early_stop=True, confidence=confidence, seed=seed,
                     loss="ce")
        if target is not None:
            x_adv = attack(model, x, target=target, eps=eps, progress=progress).x_adv
        else:
            x_adv = attack(model, x, torch.tensor([y0]), eps=eps, progress=progress).x_adv
    t1 = time.perf_counter()
    png = encode_png(x_adv)
    x_back = decode_png(png, png_mode)
    probs = model.probabilities(x_back)
    pred = int(probs[0].argmax())
    ok = pred == target if target is not None else pred != y0
    if times is not None:
        times["attack"] = times.get("attack", 0.0) + (t1 - t0)
        times["png_roundtrip"] = times.get("png_roundtrip", 0.0) + (time.perf_counter() - t1)
    if probabilities_back is not None:
        probabilities_back.append(probs)
    return x_adv, png, x_back, ok


def fool_image(
    model: TorchClassifier,
    image: str | Path,
    *,
    model_name: str = "model",
    target: int | None = None,
    eps: float | Literal["auto"] = 2 / 255,
    out: str | Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    figure: bool = True,
    mode: Literal["RGB", "L"] | None = None,
    progress: ProgressCallback | None = None,
    timings: Mapping[str, float] | None = None,
    clock_start: float | None = None,
    create_folders: bool = False,
    robust: bool = False,
    eot_samples: int = EOT_SAMPLES,
    survival_draws: int | None = None,
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
        folder (the CLI passes ``./out/fool/<image stem>-adv.png``). The
        triptych goes beside it as ``<out stem>-triptych.png`` and the JSON
        record as ``<out stem>.json``.
    steps : int, optional
        Steps per budget: default 40 (plain PGD), :data:`EOT_STEPS` (robust).
    figure : bool
        Write the triptych figure (with the survival table, when measured).
    mode : {"RGB", "L"} or None
        Read the image as colour or grey. None (default) keeps the file's own
        mode, so a grey photo gives a grey adversarial PNG; only a model that
        takes one channel (``input_shape`` (1, H, W)) turns a colour file grey.
        A grey image given to a model that needs 3 channels is attacked as one
        channel, repeated to three inside the model's preprocessing: the
        perturbation is the same in every channel (no colour noise), and the
        saved grey PNG, read back as RGB, is classified as reported.
    progress : callable, optional
        ``progress(done, total, message)`` (:mod:`hoodwink.progress`): PGD
        steps, ``steps`` per budget tried.
    timings : mapping of str to float, optional
        Seconds the caller spent before this call (the CLI: ``startup`` and
        ``model_load``), recorded first in ``timings_s``.
    clock_start : float, optional
        The ``time.perf_counter()`` value the recorded ``total`` counts from
        (the CLI: its process's start); default: the start of this call.
    create_folders : bool
        Create missing folders above ``out`` (only once the attack succeeded,
        so a failure leaves nothing behind). Otherwise they must exist.
    robust : bool
        Optimise the expectation over random transformations
        (:func:`eot_attack`: resizes, rotations, crops, blur, brightness,
        contrast, each followed by a differentiable JPEG), so that the result
        survives being re-encoded or edited. Every guarantee of a plain
        result holds all the same (bounds, eps, the 8-bit grid, success
        judged on the PNG read back).
    eot_samples : int in [1, 1024]
        Robust mode: images averaged per step (one of them the identity).
    survival_draws : int >= 0, optional
        Held-out random draws of real operations (Pillow's JPEG codec and
        resampling; :func:`hoodwink.survival.survival`) applied to the saved
        PNG, plus the fixed rows (JPEG 95, 75, 50); 0 skips the measurement.
        Default: 50 in robust mode, else 0.

    Returns
    -------
    FoolOutcome
        ``survival`` holds the survival record when it was measured.

    Raises
    ------
    BudgetExhaustedError
        No budget worked; nothing was written.
    ConfigError
        A bad parameter, or an output that cannot be written (checked for the
        PNG, the triptych and the record before any work).
    """
    t0 = time.perf_counter()
    _check_mode_param(mode)
    steps, survival_draws = _robust_params(robust, steps, eot_samples, survival_draws)
    src = Path(image)
    out_path = Path(out) if out is not None else Path(f"{src.stem}-adv.png")
    if out_path.suffix.lower() != ".png":
        raise ConfigError(
            f"The output must be a .png file (lossless, so the 8-bit perturbation survives); "
            f"got {out_path}."
        )
    stem = out_path.with_suffix("")
    outputs = {"adversarial": str(out_path), "record": str(stem) + ".json"}
    if figure:
        outputs["figure"] = f"{stem}-triptych.png"
    for written in outputs.values():
        _check_output(written, create_folders)
    budgets = _budgets(eps)
    x, clf = _load_for(model, src, mode)
    fooled = _fool_budgets(clf, x, budgets, eps=eps, target=target, steps=steps, seed=seed,
                           model_name=model_name, progress=progress, robust=robust,
                           eot_samples=eot_samples)
    x_back, png, before, after = fooled.x_back, fooled.png, fooled.before, fooled.after
    tried, times, names = fooled.tried, fooled.times, model.class_names
    max_change = int(torch.round((x_back - x).abs().max() * 255).item())
    t_surv = time.perf_counter()
    surv = _survival_of(clf, png, target=target, y0=before[0].index, draws=survival_draws,
                        seed=seed)
    t_surv = time.perf_counter() - t_surv
    fields: dict[str, Any] = dict(
        source=str(src), model=model_name, target=target,
        target_name=(names[target] if names and target is not None else None),
        eps=tried[-1], eps_auto=eps == "auto", eps_tried=tried, steps=steps, success=True,
        before=before, after=after, max_change_255=max_change,
        size=(int(x.shape[-1]), int(x.shape[-2])), outputs=outputs, mode=_mode_of(x, None),
        robust=robust, eot_samples=eot_samples if robust else None, survival=surv,
    )
    # Render everything in memory first, then write: no half-written output on error.
    t_fig = time.perf_counter()
    fig_bytes = triptych(x, x_back, before, after, model_name, tried[-1], max_change,
                         target=fields["target_name"] or _opt_str(target),
                         survival=surv) if figure else None
    timing = {**{k: float(v) for k, v in (timings or {}).items()},
              "attack": times.get("attack", 0.0),
              "png_roundtrip": times.get("png_roundtrip", 0.0),
              **({"survival": t_surv} if surv is not None else {}),
              "figure": time.perf_counter() - t_fig if figure else 0.0}
    if create_folders:
        make_parent(out_path)
    atomic_write_bytes(out_path, png)
    if fig_bytes is not None:
        atomic_write_bytes(outputs["figure"], fig_bytes)
    now = time.perf_counter()
    timing["total"] = now - (clock_start if clock_start is not None else t0)
    outcome = FoolOutcome(**fields, time_s=now - t0,
                          timings_s={k: round(v, 4) for k, v in timing.items()})
    atomic_write_text(outputs["record"], json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome


@dataclass(frozen=True)
class _Fooled:
    """The in-memory result shared by :func:`fool_image` and :func:`run`."""

    x_back: torch.Tensor
    png: bytes
    before: list[Prediction]
    after: list[Prediction]
    tried: list[float]
    times: dict[str, float]


def _robust_params(robust: object, steps: object, eot_samples: object,
                   survival_draws: object) -> tuple[int, int]:
    """Validate the robust-mode parameters; return (steps, survival_draws) with defaults."""
    from hoodwink._validation import check_bool, check_int

    robust = check_bool("fool_image", "robust", robust)
    check_int("fool_image", "eot_samples", eot_samples, low=1, high=1024)
    s = check_int("fool_image", "steps", steps, low=1, high=100_000, allow_none=True)
    d = check_int("fool_image", "survival_draws", survival_draws, low=0, high=100_000,
                  allow_none=True)
    if s is None:
        s = EOT_STEPS if robust else 40
    if d is None:
        d = ROBUST_SURVIVAL_DRAWS if robust else 0
    return s, d


def _survival_of(model: TorchClassifier, png: bytes, *, target: int | None, y0: int,
                 draws: int, seed: int) -> dict[str, Any] | None:
    """The survival record of the saved PNG bytes (None when ``draws`` is 0)."""
    if draws == 0:
        return None
    import io

    from PIL import Image

    from hoodwink.survival import survival

    with Image.open(io.BytesIO(png)) as img:
        img.load()
        rep = survival(model, img, target=target, original_label=y0, draws=draws, seed=seed)
    return rep.to_dict()


def _budgets(eps: float | str) -> Sequence[float]:
    """The budgets to try, in order, for ``eps`` (a float in (0, 1] or ``"auto"``)."""
    if eps == "auto":
        return AUTO_EPS
    if isinstance(eps, int | float) and 0 < float(eps) <= 1:
        return (float(eps),)
    raise ConfigError(
        f"The 'eps' parameter must be in (0, 1] (e.g. 2/255) or 'auto'. Got {eps!r}."
    )


def _fool_budgets(
    model: TorchClassifier,
    x: torch.Tensor,
    budgets: Sequence[float],
    *,
    eps: float | str,
    target: int | None,
    steps: int,
    seed: int,
    model_name: str,
    progress: ProgressCallback | None,
    robust: bool = False,
    eot_samples: int = EOT_SAMPLES,
) -> _Fooled:
    """Try ``budgets`` in order until the re-read PNG is fooled.

    Raises
    ------
    BudgetExhaustedError
        No budget worked.
    """
    probs0 = model.probabilities(x)
    before = top_k(model, x, probabilities=probs0)
    y0 = before[0].index
    names = model.class_names
    times: dict[str, float] = {}
    back: list[torch.Tensor] = []
    tried: list[float] = []
    for j, e in enumerate(budgets):
        tried.append(e)
        part = scaled(progress, j * steps, steps, steps * len(budgets)) \
            if progress is not None else None
        _, png, x_back, ok = fool_tensor(model, x, target=target, eps=e, steps=steps,
                                         seed=seed, y0=y0, progress=part,
                                         times=times, probabilities_back=back,
                                         robust=robust, eot_samples=eot_samples)
        if ok:
            break
    else:
        after = top_k(model, x_back, probabilities=back[-1])
        want = f"class {target} ({names[target] if names else target})" if target is not None \
            else "a different class"
        bigger = min(255.0, 2 * tried[-1] * 255)
        raise BudgetExhaustedError(
            f"eps = {tried[-1] * 255:g}/255 was not enough to make {model_name} predict {want}: "
            f"after saving it still predicts {after[0].name} ({after[0].probability:.2f}). "
            + (f"Try a larger budget, e.g. eps={bigger:g}/255, or eps='auto'." if eps != "auto"
               else f"Even the largest automatic budget failed; try more steps (steps={steps} "
                    "now).")
            + " Nothing was written."
        )
    if progress is not None:
        progress(steps * len(budgets), steps * len(budgets), "done")
    after = top_k(model, x_back, probabilities=back[-1])
    return _Fooled(x_back, png, before, after, tried, times)


# ---------------------------------------------------------------------------- the contract


def run(
    model: str | TorchClassifier,
    image: str | Path,
    *,
    model_name: str | None = None,
    target: int | None = None,
    eps: float | Literal["auto"] = 2 / 255,
    steps: int | None = None,
    seed: int = 0,
    mode: Literal["RGB", "L"] | None = None,
    stem: str | None = None,
    progress: ProgressCallback | None = None,
    robust: bool = False,
    eot_samples: int = EOT_SAMPLES,
    survival_draws: int | None = None,
) -> dict[str, Any]:
    """Fool ``model`` on an image file, in memory, and return the record.

    The same attack as :func:`fool_image` (same budgets, steps and judgement
    on the PNG read back), but nothing is written: the original and the
    adversarial PNG travel in the record as base64 text, and :func:`report`
    draws the triptych and the page from the record alone.

    Parameters
    ----------
    model : str or TorchClassifier
        A zoo name (``hoodwink.zoo.load``) or a model.
    image : path
    model_name : str, optional
        Shown in the report; default the zoo name, else ``"model"``.
    target, eps, steps, seed, progress, robust, eot_samples, survival_draws
        As in :func:`fool_image` (``steps`` default 40, :data:`EOT_STEPS` in
        robust mode; the survival table, measured on the PNG bytes with the
        real codecs, goes in the record as ``survival``).
    mode : {"RGB", "L"}, optional
        Default: ``"L"`` for a model whose name starts with ``mnist`` (the
        CLI's rule), else the file's own mode, as in :func:`fool_image` (a
        grey photo stays grey).
    stem : str, optional
        File names in the record: ``<stem>.png`` (the adversarial image) and
        ``<stem>-triptych.png``; default ``<image stem>-adv``, the names
        ``hoodwink fool`` writes.

    Returns
    -------
    dict
        Data only; ``json.loads(json.dumps(record)) == record``. The fields of
        :meth:`FoolOutcome.to_dict` (less ``outputs``), plus ``source_name``,
        ``seed``, ``mode``, ``images`` (``original`` and ``adversarial``, each
        with its ``png`` as base64; the adversarial one with its ``file``
        name) and ``figure`` (the triptych's file name). ``timings_s``:
        ``model_load`` (when loaded by name), ``attack``, ``png_roundtrip``,
        ``total``.

    Raises
    ------
    BudgetExhaustedError
        No budget worked.
    """
    from hoodwink.attacks.result import environment
    from hoodwink.imaging import encode_png

    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    if isinstance(model, str):
        from hoodwink import zoo

        name = model_name or zoo.canonical_name(model)
        clf = zoo.load(model)
        timing["model_load"] = time.perf_counter() - t0
    else:
        name, clf = model_name or "model", model
    _check_mode_param(mode)
    steps, survival_draws = _robust_params(robust, steps, eot_samples, survival_draws)
    if mode is None and name.strip().lower().startswith("mnist"):
        mode = "L"
    src = Path(image)
    budgets = _budgets(eps)
    x, attacked = _load_for(clf, src, mode)
    fooled = _fool_budgets(attacked, x, budgets, eps=eps, target=target, steps=steps,
                           seed=seed, model_name=name, progress=progress, robust=robust,
                           eot_samples=eot_samples)
    t_surv = time.perf_counter()
    surv = _survival_of(attacked, fooled.png, target=target, y0=fooled.before[0].index,
                        draws=survival_draws, seed=seed)
    if surv is not None:
        timing["survival"] = time.perf_counter() - t_surv
    orig_png = encode_png(x)
    max_change = int(torch.round((fooled.x_back - x).abs().max() * 255).item())
    names = clf.class_names
    file_stem = stem if stem is not None else f"{src.stem}-adv"
    timing["attack"] = fooled.times.get("attack", 0.0)
    timing["png_roundtrip"] = fooled.times.get("png_roundtrip", 0.0)
    total = time.perf_counter() - t0
    timing["total"] = total
    tried = fooled.tried
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "source": str(src), "source_name": src.name, "model": name, "target": target,
        "target_name": names[target] if names and target is not None else None,
        "eps": tried[-1], "eps_255": round(tried[-1] * 255, 4), "eps_auto": eps == "auto",
        "eps_tried": list(tried), "steps": steps, "seed": seed, "mode": _mode_of(x, None),
        "success": True,
        "before": [dict(p.__dict__) for p in fooled.before],
        "after": [dict(p.__dict__) for p in fooled.after],
        "max_change_255": max_change, "size": [int(x.shape[-1]), int(x.shape[-2])],
        "robust": robust, "eot_samples": eot_samples if robust else None, "survival": surv,
        "time_s": total, "timings_s": {k: round(v, 4) for k, v in timing.items()},
        "images": {
            "original": {"png": to_b64(orig_png)},
            "adversarial": {"file": f"{file_stem}.png", "png": to_b64(fooled.png)},
        },
        "figure": f"{file_stem}-triptych.png",
        "environment": environment(),
    }
    return check_record(rec, "fool.run")


# ---------------------------------------------------------------------------- helpers


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _check_mode_param(mode: object) -> None:
    if mode is not None and mode not in ("RGB", "L"):
        raise ConfigError(
            f"The 'mode' parameter must be 'RGB', 'L' or None (the file's own mode). "
            f"Got {mode!r}."
        )


def _mode_of(x: torch.Tensor, mode: object) -> Literal["RGB", "L"]:
    """The PNG mode of an image tensor (1 channel: "L"; 3: "RGB"), checked against ``mode``."""
    c = int(x.shape[1]) if x.ndim == 4 else -1
    found: Literal["RGB", "L"] | None = "L" if c == 1 else "RGB" if c == 3 else None
    if found is None:
        raise ConfigError(
            f"x must be one image of shape (1, C, H, W) with C = 1 or 3; got {tuple(x.shape)}."
        )
    _check_mode_param(mode)
    if mode is not None and mode != found:
        raise ConfigError(
            f"The 'mode' parameter is {mode!r} but x has {c} channel(s) ({found!r}). Give "
            f"mode={found!r} or leave it out."
        )
    return found


def _check_output(path: str | Path, create: bool) -> None:
    """One output file, checked before any work (a library error, not an OSError)."""
    from hoodwink.reports import check_output_path

    p = Path(path)
    if not create and not p.parent.is_dir():
        check_writable(p)  # InputError: the folder must exist (or is a file)
    check_output_path(p, kind="file")


def _load_for(
    model: TorchClassifier, src: Path, mode: Literal["RGB", "L"] | None
) -> tuple[torch.Tensor, TorchClassifier]:
    """The image to attack and the model to attack it on.

    With ``mode`` None the file keeps its own mode, except that a colour file
    becomes grey for a model that takes one channel. A grey image on a model
    that needs three channels gets the model wrapped so that the channel is
    repeated inside the preprocessing (:func:`_grey_as_rgb`).
    """
    x = load_image(src, mode=mode)
    shape = model.input_shape
    if mode is None and shape is not None and len(shape) == 3 and shape[0] == 1 \
            and x.shape[1] == 3:
        x = load_image(src, mode="L")
    if x.shape[1] != 1:
        return x, model
    if shape is not None and len(shape) == 3:
        return (x, _grey_as_rgb(model)) if shape[0] == 3 else (x, model)
    try:  # A model without input_shape: does it take one channel as it is?
        model.logits(x)
    except Exception:  # noqa: BLE001 - any failure means: give it three channels
        wrapped = _grey_as_rgb(model)
        wrapped.logits(x)  # a model that fails on both raises its own error here
        return x, wrapped
    return x, model


class _GreyAsRGB(torch.nn.Module):
    """Preprocessing that repeats a grey channel to three, then applies ``inner``."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return self.inner(z) if self.inner is not None else z


def _grey_as_rgb(model: TorchClassifier) -> TorchClassifier:
    """``model`` taking a grey (N, 1, H, W) image, repeated to RGB inside its preprocessing.

    The attack then works on the grey image: its perturbation is one value per
    pixel, the same in all three channels the network sees.
    """
    lo, hi = model.bounds
    if lo.ndim >= 1 and lo.shape[0] == 3:
        lo = lo.amax(dim=0, keepdim=True)
    if hi.ndim >= 1 and hi.shape[0] == 3:
        hi = hi.amin(dim=0, keepdim=True)
    shape = model.input_shape
    return TorchClassifier(
        model.module, bounds=(lo, hi), preprocessing=_GreyAsRGB(model.preprocessing),
        levels=model.levels, batch_size=model.batch_size, device=model.device,
        class_names=model.class_names,
        input_shape=(1, *shape[1:]) if shape is not None and len(shape) == 3 else None,
    )
