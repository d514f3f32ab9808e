"""The attack base class: one call signature, validation and guarantees.

Every attack subclasses :class:`Attack` (or :class:`GradientAttack`) and
implements ``_run``. The public :meth:`Attack.__call__` validates the inputs,
runs ``_run``, then projects the result onto the eps-ball and the bounds once
more (it does not trust the subclass), snaps it to the model's grid, verifies
every guarantee, and recomputes success with a fresh forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from hoodwink.attacks._norms import NormName, clip_to_bounds, norms, on_grid, project, quantize
from hoodwink.attacks.result import AttackResult
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    EpsScaleWarning,
    InputError,
    InternalError,
    OutOfBoundsError,
    ShapeError,
)
from hoodwink.models.base import Classifier

__all__ = ["Attack", "AttackInputs", "GradientAttack"]

_NORMS: tuple[str, ...] = ("linf", "l2", "l1")


@dataclass(frozen=True)
class AttackInputs:
    """Validated call arguments handed to ``Attack._run``.

    Attributes
    ----------
    x : torch.Tensor
        Inputs on the model's device, float, within bounds.
    labels : torch.Tensor
        True labels (untargeted) or targets (targeted), int64, shape (N,).
    targeted : bool
    eps : float
    pred_clean : torch.Tensor
        Model predictions on ``x``.
    y : torch.Tensor or None
        True labels when given (also for targeted attacks).
    generator : torch.Generator
        Local CPU generator seeded with the attack's seed.
    """

    x: torch.Tensor
    labels: torch.Tensor
    targeted: bool
    eps: float
    pred_clean: torch.Tensor
    y: torch.Tensor | None
    generator: torch.Generator

    def is_adversarial(self, pred: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Success criterion for predictions ``pred`` of samples ``idx`` (all if None)."""
        lab = self.labels if idx is None else self.labels[idx]
        return pred == lab if self.targeted else pred != lab


def _check_param(cls_name: str, name: str, value: Any, ok: bool, constraint: str) -> None:
    if not ok:
        raise ConfigError(
            f"The '{name}' parameter of {cls_name} must be {constraint}. Got {value!r}."
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)


@dataclass(frozen=True, kw_only=True)
class Attack:
    """Base class of all attacks.

    Subclasses are frozen, keyword-only dataclasses. They declare their norm
    in a ``norm`` field and implement :meth:`_run`.
    """

    norm: NormName = "linf"
    seed: int | None = 0

    #: Norms the attack supports.
    supported_norms: ClassVar[tuple[str, ...]] = _NORMS
    #: Whether the attack needs gradients from the model.
    needs_gradients: ClassVar[bool] = False

    def __post_init__(self) -> None:
        name = type(self).__name__
        _check_param(
            name, "norm", self.norm, self.norm in self.supported_norms,
            "one of " + ", ".join(repr(n) for n in self.supported_norms),
        )
        _check_param(
            name, "seed", self.seed, self.seed is None or (_is_int(self.seed) and self.seed >= 0),
            "a non-negative int or None",
        )
        self._validate()

    def _validate(self) -> None:
        """Check subclass parameters; raise :class:`ConfigError` on a bad value."""

    # ------------------------------------------------------------------ helpers
    def _check(self, name: str, ok: bool, constraint: str) -> None:
        _check_param(type(self).__name__, name, getattr(self, name), ok, constraint)

    def _check_int(self, name: str, low: int) -> None:
        v = getattr(self, name)
        self._check(name, _is_int(v) and v >= low, f"an int >= {low}")

    def _check_float(self, name: str, low: float, *, allow_none: bool = False,
                     strict: bool = False) -> None:
        v = getattr(self, name)
        if allow_none and v is None:
            return
        ok = _is_real(v) and math.isfinite(float(v)) and (v > low if strict else v >= low)
        rng = f"({low:g}, inf)" if strict else f"[{low:g}, inf)"
        self._check(name, ok, f"a float in {rng}" + (" or None" if allow_none else ""))

    def _check_choice(self, name: str, choices: Sequence[str]) -> None:
        v = getattr(self, name)
        self._check(name, v in choices, "one of " + ", ".join(repr(c) for c in choices))

    # ------------------------------------------------------------------ public API
    def __call__(
        self,
        model: Classifier,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        *,
        target: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        eps: float,
    ) -> AttackResult:
        """Attack ``model`` on ``x`` within an eps-ball.

        Parameters
        ----------
        model : Classifier
            A wrapped model, e.g. :class:`hoodwink.TorchClassifier`.
        x : torch.Tensor, shape (N, ...)
            Raw float inputs within the model bounds (never normalised).
        y : int tensor of shape (N,), optional
            True labels. Required for an untargeted attack, except that when
            both ``y`` and ``target`` are omitted the model's own clean
            predictions are attacked.
        target : int or int tensor of shape (N,), optional
            Target classes; makes the attack targeted. An int applies to all.
        eps : float
            Budget in the attack's norm, in raw input units (8/255, not 8).

        Returns
        -------
        AttackResult
        """
        t0 = time.perf_counter()
        self._check_model(model)
        eps_f = self._check_eps(model, eps, x)
        # One evaluating() block around the whole run, where the model has one: the
        # model's own per-call blocks then nest for free instead of walking every
        # submodule and parameter on each step. The mode is still restored on error.
        evaluating = getattr(model, "evaluating", None)
        with evaluating() if callable(evaluating) else contextlib.nullcontext():
            inputs, orig = self._prepare(model, x, y, target, eps_f)
            x_adv, queries = self._run(model, inputs)
            return self._finish(model, inputs, orig, x_adv, queries, t0)

    def sweep(
        self,
        model: Classifier,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        *,
        target: torch.Tensor | np.ndarray | Sequence[int] | int | None = None,
        eps: Sequence[float],
    ) -> list[AttackResult]:
        """Run the attack once per budget in ``eps``; one result per budget, in order."""
        if (isinstance(eps, int | float | str) or not isinstance(eps, Sequence | np.ndarray)
                or np.ndim(eps) != 1):
            raise ConfigError(
                f"sweep() takes a list of budgets, e.g. eps=[1/255, 2/255, 4/255]. Got {eps!r}."
            )
        if len(eps) == 0:
            raise ConfigError("sweep() needs at least one budget in eps.")
        # Each budget is validated by __call__ (a ConfigError naming 'eps' if bad).
        return [self(model, x, y, target=target, eps=e) for e in eps]

    def _run(self, model: Classifier, inputs: AttackInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Produce adversarial inputs and per-sample query counts."""
        raise NotImplementedError

    # ------------------------------------------------------------------ validation
    def _check_model(self, model: Classifier) -> None:
        needed = ("capabilities", "num_classes", "bounds", "levels", "predict")
        if not all(hasattr(type(model), a) or hasattr(model, a) for a in needed):
            raise CapabilityError(
                f"{type(self).__name__} needs a hoodwink model; got {type(model).__name__}. "
                "Wrap a torch module with hoodwink.TorchClassifier(module, bounds=...)."
            )
        if self.needs_gradients and not model.capabilities.differentiable:
            raise CapabilityError(
                f"{type(self).__name__} is a gradient attack but {type(model).__name__} "
                "provides no gradients. Use a score- or decision-based attack instead."
            )

    def _check_eps(self, model: Classifier, eps: Any, x: Any) -> float:
        name = type(self).__name__
        if not _is_real(eps) or not math.isfinite(float(eps)) or eps < 0:
            raise ConfigError(
                f"The 'eps' parameter of {name} must be a float in [0, inf). Got {eps!r}."
            )
        e = float(eps)
        lo, hi = model.bounds
        span = float((hi - lo).max().item())
        dims = int(np.prod(tuple(x.shape[1:]))) if hasattr(x, "shape") else 1
        diameter = span * (1.0 if self.norm == "linf" else dims ** (1.0 if self.norm == "l1" else
                                                                      0.5))
        if e > diameter:
            warnings.warn(
                f"eps={e:g} is larger than the whole input range in {self.norm} "
                f"({diameter:g}), so the attack is unconstrained. Budgets are in raw input "
                f"units: did you mean {e:g}/255 = {e / 255:.5g}?",
                EpsScaleWarning,
                stacklevel=3,
            )
        return e

    def _prepare(
        self, model: Classifier, x: Any, y: Any, target: Any, eps: float
    ) -> tuple[AttackInputs, torch.Tensor]:
        xt = _as_input(x)
        device = _model_device(model, xt)
        xd = xt.detach().to(device=device, dtype=torch.float32 if xt.dtype in (
            torch.float16, torch.bfloat16) else xt.dtype)
        lo, hi = model.bounds
        try:
            below = xd < lo
            above = xd > hi
        except RuntimeError as exc:
            raise ShapeError(
                f"x has shape {tuple(xt.shape)}, which does not broadcast with the model "
                f"bounds of shape {tuple(lo.shape)}. Pass a batch (N, ...) of single inputs."
            ) from exc
        if bool(below.any() or above.any()):
            raise OutOfBoundsError(
                f"x has values in [{xd.min().item():.4g}, {xd.max().item():.4g}], outside the "
                f"model bounds [{lo.min().item():.4g}, {hi.max().item():.4g}]. If your data is "
                "normalised, pass raw inputs and give preprocessing= to TorchClassifier."
            )
        levels = model.levels
        if levels is not None and not on_grid(xd, lo, hi, levels):
            raise InputError(
                f"The model has levels={levels} but x is not on that grid. Quantise the "
                f"inputs first (for 8-bit images: x = torch.round(x * 255) / 255), or wrap "
                "the model with levels=None."
            )
        n = xd.shape[0]
        pred_clean = model.predict(xd)
        c = model.num_classes
        y_t = _as_labels(y, n, c, "y", device) if y is not None else None
        t_t = _as_labels(target, n, c, "target", device) if target is not None else None
        if t_t is not None and y_t is not None:
            same = t_t == y_t
            if bool(same.any()):
                i = int(same.nonzero()[0, 0].item())
                raise InputError(
                    f"target equals the true label y for {int(same.sum())} sample(s) "
                    f"(first: index {i}, class {int(y_t[i])}). A targeted attack needs a "
                    "different class; drop those samples or pick another target."
                )
        gen = torch.Generator()
        gen.manual_seed(self.seed if self.seed is not None else int(torch.seed() % 2**63))
        labels = t_t if t_t is not None else (y_t if y_t is not None else pred_clean)
        inputs = AttackInputs(
            x=xd, labels=labels, targeted=t_t is not None, eps=eps,
            pred_clean=pred_clean, y=y_t, generator=gen,
        )
        return inputs, xt

    # ------------------------------------------------------------------ guarantees
    def _finish(
        self,
        model: Classifier,
        inputs: AttackInputs,
        orig: torch.Tensor,
        x_adv: torch.Tensor,
        queries: torch.Tensor,
        t0: float,
    ) -> AttackResult:
        x = inputs.x
        if x_adv.shape != x.shape:
            raise InternalError(
                f"{type(self).__name__} returned shape {tuple(x_adv.shape)} for inputs of "
                f"shape {tuple(x.shape)}; this is a hoodwink bug, please report it."
            )
        lo, hi = model.bounds
        x_adv = x_adv.detach().to(device=x.device, dtype=x.dtype)
        x_adv = clip_to_bounds(x + project(x_adv - x, inputs.eps, self.norm), lo, hi)
        if model.levels is not None:
            x_adv = quantize(x, x_adv, inputs.eps, self.norm, lo, hi, model.levels)
        # Untargeted samples the model already gets wrong need no perturbation.
        if not inputs.targeted:
            already = inputs.is_adversarial(inputs.pred_clean)
            x_adv = torch.where(already.reshape((-1,) + (1,) * (x.ndim - 1)), x, x_adv)
        pnorm = norms(x_adv - x, self.norm)
        tol = 1e-5 * max(1.0, inputs.eps) + 1e-6
        if bool((pnorm > inputs.eps + tol).any()) or bool(((x_adv < lo) | (x_adv > hi)).any()):
            raise InternalError(
                f"{type(self).__name__} produced a result outside the eps-ball or the bounds "
                f"(max norm {pnorm.max().item():.6g} for eps {inputs.eps:.6g}); this is a "
                "hoodwink bug, please report it."
            )
        pred_adv = model.predict(x_adv)
        success = inputs.is_adversarial(pred_adv)
        y_t = inputs.y
        clean_correct = (
            inputs.pred_clean == y_t if y_t is not None
            else torch.zeros_like(success)
        )
        out_dev = orig.device
        result = AttackResult(
            x_adv=x_adv.to(device=out_dev, dtype=orig.dtype),
            success=success.to(out_dev),
            clean_correct=clean_correct.to(out_dev),
            pred_clean=inputs.pred_clean.to(out_dev),
            pred_adv=pred_adv.to(out_dev),
            perturbation_norm=pnorm.to(out_dev),
            queries=(queries + 2).to(out_dev),  # + clean and verification forward passes
            y=y_t.to(out_dev) if y_t is not None else None,
            target=inputs.labels.to(out_dev) if inputs.targeted else None,
            eps=inputs.eps,
            norm=self.norm,
            attack=repr(self),
            seed=self.seed,
            time_s=time.perf_counter() - t0,
        )
        return result

    def replace(self, **changes: Any) -> Attack:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class GradientAttack(Attack):
    """Base class of white-box attacks that need loss gradients."""

    needs_gradients: ClassVar[bool] = True


def _as_input(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"x must be a torch.Tensor or numpy array of shape (N, ...); got {type(x).__name__}."
        )
    if x.ndim < 2:
        raise ShapeError(
            f"x has shape {tuple(x.shape)}; attacks take a batch of shape (N, ...). For one "
            "input use x[None]."
        )
    if x.shape[0] == 0:
        raise InputError("x is an empty batch (N = 0); pass at least one input.")
    if not torch.is_floating_point(x):
        raise ShapeError(
            f"x has dtype {x.dtype}; attacks work on float inputs in the model bounds. For "
            "8-bit images use x.float() / 255 with bounds=(0, 1) (and levels=256)."
        )
    if not bool(torch.isfinite(x).all()):
        raise InputError("x contains NaN or infinite values; attacks need finite inputs.")
    return x


def _as_labels(v: Any, n: int, c: int, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        t = torch.full((n,), int(v), dtype=torch.int64)
    else:
        try:
            t = torch.as_tensor(v)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ShapeError(f"{name} must be an int tensor of shape ({n},); got {v!r}.") from exc
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise ShapeError(
                f"{name} has dtype {t.dtype}; labels must be integers (class indices), "
                f"e.g. {name}.long()."
            )
        if t.shape != (n,):
            raise ShapeError(
                f"{name} has shape {tuple(t.shape)} but x has {n} samples; {name} must have "
                f"shape ({n},)."
            )
        t = t.to(torch.int64)
    if bool(((t < 0) | (t >= c)).any()):
        bad = t[(t < 0) | (t >= c)][0].item()
        raise InputError(
            f"{name} contains {bad}, outside the model's classes 0..{c - 1}."
        )
    return t.to(device)


def _model_device(model: Classifier, x: torch.Tensor) -> torch.device:
    dev = getattr(model, "device", None)
    return dev if isinstance(dev, torch.device) else x.device
