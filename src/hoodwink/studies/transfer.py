"""Transferability: do adversarial examples made on one model fool another?

:func:`transfer_study` crafts adversarial examples on a *source* model with
white-box attacks (FGSM and PGD by default), feeds them to every *target*
model, and reports, for each attack, budget and mode (untargeted, targeted),
a row of the transfer matrix: the source's white-box success rate on the
diagonal, the transfer rate to each target model beside it, and underneath
the same rates for random-sign noise of the same L∞ budget, so that transfer
can be told apart from mere sensitivity to noise.

Definitions
-----------
Every sample ``i`` has a reference label per model ``m``: the true label
``y_i`` when labels are given, otherwise model ``m``'s own clean prediction
(for unlabelled photos "correct" then means "unchanged"). Model ``m`` is
*clean-correct* on ``i`` when its clean prediction equals that label.

Untargeted transfer rate, source S → target T:
    among the samples that S and T both classify correctly and on which the
    attack succeeded against S (S no longer predicts the label), the
    fraction that T also misclassifies.
Targeted transfer rate, S → T, towards target classes ``t_i``:
    among the samples that S and T both classify correctly, that T does not
    already assign to ``t_i``, and on which the attack made S predict
    ``t_i``, the fraction that T also classifies as ``t_i``.
White-box rate (the diagonal, T = S):
    among the samples S classifies correctly, the fraction on which the attack
    succeeded against S (untargeted: any wrong class; targeted: ``t_i``).
Noise baseline:
    the same sample pool as the pair (for the diagonal: S-correct samples),
    without the condition on the source attack: the fraction that T
    misclassifies (untargeted) or assigns to ``t_i`` (targeted) when given
    ``x + eps * s`` with independent random signs ``s`` (clipped to the
    bounds, snapped to the model's grid), one draw shared by all models.
Unconditional rate (reported beside every transfer rate):
    among the samples S and T both classify correctly (targeted: and T does
    not already assign to ``t_i``), the fraction T gets wrong (hits ``t_i``)
    on the source's adversarial examples, whether or not they fooled S.

All rates are ``None`` (shown as "–") when their pool is empty; the counts
behind every rate are recorded.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch

from hoodwink.attacks._norms import clip_to_bounds, quantize
from hoodwink.attacks.base import Attack
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.pgd import PGD
from hoodwink.errors import ConfigError, HoodwinkError, MissingDependencyError, ShapeError
from hoodwink.models.base import Classifier

if TYPE_CHECKING:
    from hoodwink.reports import Report, ReportPaths

__all__ = [
    "DEFINITIONS",
    "PHOTOS",
    "SCHEMA",
    "TransferCell",
    "TransferMode",
    "TransferStudy",
    "format_eps",
    "natural_photos",
    "render_heatmap",
    "transfer_report",
    "transfer_study",
    "write_transfer_report",
    "zoo_transfer_study",
]

_log = logging.getLogger(__name__)

SCHEMA = "hoodwink.transfer/1"

TransferMode = Literal["untargeted", "targeted"]
CellKind = Literal["white-box", "transfer", "noise"]

#: Row name of the random-sign noise baseline in every matrix.
NOISE = "noise"

#: Attack names :func:`transfer_study` builds itself.
ATTACK_NAMES: tuple[str, ...] = ("fgsm", "pgd")

#: What each rate means, stored in every record and printed in every report.
DEFINITIONS: dict[str, str] = {
    "label": (
        "Each sample's reference label per model is the true label y when labels are given, "
        "otherwise that model's own clean prediction; a model is clean-correct on a sample "
        "when its clean prediction equals that label."
    ),
    "untargeted": (
        "Untargeted transfer rate S->T: among samples that S and T both classify correctly "
        "and on which the attack succeeded against S, the fraction that T also misclassifies."
    ),
    "targeted": (
        "Targeted transfer rate S->T: among samples that S and T both classify correctly, "
        "that T does not already assign to the target class, and on which the attack made S "
        "predict the target, the fraction that T also classifies as the target."
    ),
    "white-box": (
        "Diagonal (T = S): among samples S classifies correctly, the fraction on which the "
        "attack succeeded against S (untargeted: any other class; targeted: the target)."
    ),
    "noise": (
        "Noise baseline: x + eps * s with independent random signs s (clipped to the bounds, "
        "snapped to the model's grid), one draw shared by all models; on the pair's pool "
        "(diagonal: S-correct samples) without the condition on the source attack, the "
        "fraction T misclassifies (untargeted) or assigns to the target (targeted)."
    ),
    "unconditional": (
        "Unconditional rate: among samples S and T both classify correctly (targeted: and T "
        "does not already predict the target), the fraction T gets wrong (hits the target) on "
        "the source's adversarial examples, whether or not they fooled S."
    ),
}

#: Natural photos available offline, in the order :func:`natural_photos` returns them:
#: scikit-image's (CC0 / public domain) and scikit-learn's two sample photos (CC-BY).
PHOTOS: tuple[str, ...] = (
    "chelsea", "coffee", "rocket", "astronaut", "motorcycle", "china", "flower",
)
_SKLEARN_PHOTOS = ("china", "flower")

_MNIST_EPS: tuple[float, ...] = (0.1, 0.2)
_IMAGENET_EPS: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class TransferCell:
    """One cell of a transfer matrix.

    Attributes
    ----------
    mode : {"untargeted", "targeted"}
    eps : float
        L∞ budget in raw input units.
    attack : str
        Row: an attack name (``"fgsm"``, ``"pgd"``, ...) or ``"noise"``.
    model : str
        Column: the model the examples were evaluated on.
    kind : {"white-box", "transfer", "noise"}
        White-box on the source column of an attack row, transfer on the other
        columns, noise on the noise row.
    rate : float or None
        ``n_fooled / n_eligible``; None when ``n_eligible`` is 0. See
        :data:`DEFINITIONS` for what counts as eligible and fooled.
    n_eligible : int
        Samples in the rate's denominator.
    n_fooled : int
        Samples in its numerator.
    n_pool : int
        Samples both models classify correctly (targeted: and the column model
        does not already predict the target); for the diagonal, source-correct
        samples.
    rate_unconditional : float or None
        Fooled fraction of the whole pool, ignoring whether the attack fooled
        the source; None when the pool is empty.
    """

    mode: TransferMode
    eps: float
    attack: str
    model: str
    kind: CellKind
    rate: float | None
    n_eligible: int
    n_fooled: int
    n_pool: int
    rate_unconditional: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "mode": self.mode, "eps": self.eps, "eps_255": round(self.eps * 255, 4),
            "attack": self.attack, "model": self.model, "kind": self.kind, "rate": self.rate,
            "n_eligible": self.n_eligible, "n_fooled": self.n_fooled, "n_pool": self.n_pool,
            "rate_unconditional": self.rate_unconditional,
        }


@dataclass(frozen=True)
class TransferStudy:
    """Result of :func:`transfer_study`: every cell of every transfer matrix.

    Attributes
    ----------
    source : str
        Name of the source model (the first column of every matrix).
    models : tuple of str
        Column order: the source, then the target models.
    eps : tuple of float
    attacks : tuple of str
        Attack row names, in order; the noise row comes after them.
    attack_reprs : dict of str to str
        Each attack's repr (every parameter that shaped its examples).
    modes : tuple of {"untargeted", "targeted"}
    cells : tuple of TransferCell
    clean : dict
        Per model: ``n_correct`` and ``accuracy`` (against the true labels, or
        agreement with the source's clean predictions when unlabelled).
    n : int
        Number of samples.
    labelled : bool
        Whether true labels were given.
    seed : int
    samples : dict
        Per-sample data: reference labels and clean predictions per model, the
        target classes, and for each run the source's success and every
        model's prediction on the examples.
    time_s : float
        Wall time of the study.
    data : str
        What the samples were (free text recorded in the report).
    """

    source: str
    models: tuple[str, ...]
    eps: tuple[float, ...]
    attacks: tuple[str, ...]
    attack_reprs: dict[str, str]
    modes: tuple[TransferMode, ...]
    cells: tuple[TransferCell, ...]
    clean: dict[str, dict[str, Any]]
    n: int
    labelled: bool
    seed: int
    samples: dict[str, Any] = field(repr=False)
    time_s: float = 0.0
    data: str = ""

    @property
    def rows(self) -> tuple[str, ...]:
        """Row names of every matrix: the attacks, then ``"noise"``."""
        return (*self.attacks, NOISE)

    def cell(self, mode: TransferMode, eps: float, attack: str, model: str) -> TransferCell:
        """The cell for one mode, budget, row and column.

        Raises
        ------
        ConfigError
            No such cell (the message lists what exists).
        """
        for c in self.cells:
            if (c.mode == mode and math.isclose(c.eps, eps, rel_tol=1e-9, abs_tol=1e-12)
                    and c.attack == attack and c.model == model):
                return c
        raise ConfigError(
            f"No transfer cell for mode={mode!r}, eps={eps:g}, attack={attack!r}, "
            f"model={model!r}. Modes: {list(self.modes)}; eps: {list(self.eps)}; rows: "
            f"{list(self.rows)}; models: {list(self.models)}."
        )

    def rate(self, mode: TransferMode, eps: float, attack: str, model: str) -> float | None:
        """Shortcut for ``cell(...).rate``."""
        return self.cell(mode, eps, attack, model).rate

    def matrix(self, mode: TransferMode, eps: float) -> np.ndarray:
        """The matrix for one mode and budget.

        Returns
        -------
        numpy.ndarray, shape (len(rows), len(models)), float
            ``rate`` of each cell, NaN where undefined. Rows are :attr:`rows`
            (attacks, then noise), columns :attr:`models` (source first).
        """
        out = np.full((len(self.rows), len(self.models)), np.nan)
        for i, r in enumerate(self.rows):
            for j, m in enumerate(self.models):
                v = self.cell(mode, eps, r, m).rate
                if v is not None:
                    out[i, j] = v
        return out

    def to_dict(self, *, per_sample: bool = True) -> dict[str, Any]:
        """The versioned JSON record (without environment; :class:`Report` adds it)."""
        matrices = {
            mode: {
                _eps_key(e): {
                    "rows": list(self.rows),
                    "columns": list(self.models),
                    "rate": [[_nan_none(v) for v in row] for row in self.matrix(mode, e)],
                    "n_eligible": [[self.cell(mode, e, r, m).n_eligible for m in self.models]
                                   for r in self.rows],
                }
                for e in self.eps
            }
            for mode in self.modes
        }
        rec: dict[str, Any] = {
            "schema": SCHEMA,
            "definitions": dict(DEFINITIONS),
            "config": {
                "source": self.source,
                "targets": list(self.models[1:]),
                "eps": list(self.eps),
                "eps_255": [round(e * 255, 4) for e in self.eps],
                "attacks": dict(self.attack_reprs),
                "modes": list(self.modes),
                "seed": self.seed,
                "n": self.n,
                "labelled": self.labelled,
                "data": self.data,
            },
            "clean": self.clean,
            "matrices": matrices,
            "cells": [c.to_dict() for c in self.cells],
            "time_s": round(self.time_s, 3),
        }
        if per_sample:
            rec["samples"] = self.samples
        return rec


# ---------------------------------------------------------------------- validation
def _check_models(source: Any, targets: Any, source_name: Any) -> dict[str, Classifier]:
    if not isinstance(source_name, str) or not source_name.strip():
        raise ConfigError(
            f"The 'source_name' parameter of transfer_study must be a non-empty str. "
            f"Got {source_name!r}."
        )
    if not isinstance(targets, Mapping) or len(targets) == 0:
        raise ConfigError(
            "The 'target_models' parameter of transfer_study must be a non-empty dict of "
            f"name -> model, e.g. {{'mnist-linear': model}}. Got {targets!r}."
        )
    models: dict[str, Classifier] = {source_name: _check_model(source, "source_model")}
    for name, m in targets.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"The names in 'target_models' must be non-empty str. Got {name!r}."
            )
        if name in models:
            raise ConfigError(
                f"The target model name {name!r} is also the source's name; give each model "
                "its own name (source_name= names the source)."
            )
        models[name] = _check_model(m, f"target_models[{name!r}]")
    return models


def _check_model(m: Any, what: str) -> Classifier:
    needed = ("capabilities", "num_classes", "bounds", "levels", "predict")
    if not all(hasattr(type(m), a) for a in needed):
        raise ConfigError(
            f"The {what} argument of transfer_study must be a hoodwink model; got "
            f"{type(m).__name__}. Wrap a torch module with hoodwink.TorchClassifier(module, "
            "bounds=...), or load one with hoodwink.zoo.load(name)."
        )
    return cast(Classifier, m)


def _check_eps(eps: Any) -> tuple[float, ...]:
    values = [eps] if isinstance(eps, int | float | np.floating | np.integer) else eps
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray) or len(values) == 0:
        raise ConfigError(
            f"The 'eps' parameter of transfer_study must be a float > 0 or a non-empty list "
            f"of them, e.g. [2/255, 8/255]. Got {eps!r}."
        )
    out = []
    for v in values:
        ok = (isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)
              and math.isfinite(float(v)) and float(v) > 0)
        if not ok:
            raise ConfigError(
                f"The 'eps' parameter of transfer_study must hold floats in (0, inf) (L∞ "
                f"budgets in raw input units, e.g. 8/255). Got {v!r}."
            )
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ConfigError(f"The 'eps' parameter of transfer_study has duplicates: {out}.")
    return tuple(out)


def _check_int(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        raise ConfigError(
            f"The '{name}' parameter of transfer_study must be an int >= {low}. Got {v!r}."
        )
    return int(v)


def _build_attacks(attacks: Any, steps: int, seed: int) -> dict[str, Attack]:
    if isinstance(attacks, str | Attack):
        attacks = [attacks]
    if not isinstance(attacks, Sequence) or len(attacks) == 0:
        raise ConfigError(
            "The 'attacks' parameter of transfer_study must be a non-empty list of attack "
            f"names ({', '.join(ATTACK_NAMES)}) or Attack instances. Got {attacks!r}."
        )
    out: dict[str, Attack] = {}
    for a in attacks:
        if isinstance(a, str):
            key = a.strip().lower()
            if key == "fgsm":
                name, attack = key, cast(Attack, FGSM())
            elif key == "pgd":
                # No early stop: transfer needs examples pushed as far as the budget allows,
                # not ones that barely cross the source's decision boundary.
                name, attack = key, PGD(steps=steps, early_stop=False, random_start=True,
                                        seed=seed)
            else:
                raise ConfigError(
                    f"Unknown attack {a!r} in the 'attacks' parameter of transfer_study; "
                    f"choose from {', '.join(ATTACK_NAMES)}, or pass an Attack instance."
                )
        elif isinstance(a, Attack):
            name, attack = type(a).__name__.lower(), a
            if a.norm != "linf":
                raise ConfigError(
                    f"transfer_study compares attacks with an L∞ noise baseline; {a!r} uses "
                    f"norm={a.norm!r}. Pass an attack with norm='linf'."
                )
        else:
            raise ConfigError(
                f"The 'attacks' parameter of transfer_study takes attack names "
                f"({', '.join(ATTACK_NAMES)}) or Attack instances. Got {a!r}."
            )
        if name == NOISE or name in out:
            raise ConfigError(
                f"Attack name {name!r} appears twice in 'attacks' (or clashes with the "
                "noise row); give each attack once."
            )
        out[name] = attack
    return out


def _as_groups(x: Any) -> list[torch.Tensor]:
    """Split the inputs into batches that can each go through a model at once."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    groups: list[torch.Tensor]
    if isinstance(x, torch.Tensor):
        groups = [x]
    elif isinstance(x, Sequence) and not isinstance(x, str) and len(x) > 0:
        groups = [torch.from_numpy(g) if isinstance(g, np.ndarray) else g for g in x]
        if not all(isinstance(g, torch.Tensor) for g in groups):
            raise ShapeError(
                "x must be a tensor of shape (N, ...) or a list of tensors (k, ...) (e.g. "
                "photos of different sizes, each (1, C, H, W)). Got a list holding "
                f"{sorted({type(g).__name__ for g in groups})}."
            )
    else:
        raise ShapeError(
            "x must be a tensor of shape (N, ...) or a non-empty list of tensors of shape "
            f"(k, ...) (e.g. photos of different sizes, each (1, C, H, W)). Got {x!r:.80}."
        )
    for g in groups:
        if g.ndim < 2 or g.shape[0] == 0:
            raise ShapeError(
                f"Every batch in x must have shape (k, ...) with k >= 1; got shape "
                f"{tuple(g.shape)}. For one input use x[None]."
            )
        if not torch.is_floating_point(g):
            raise ShapeError(
                f"x has dtype {g.dtype}; pass float inputs in the model bounds (8-bit images: "
                "x.float() / 255)."
            )
    return groups


def _as_label_tensor(v: Any, n: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(v)
    if t.is_floating_point() or t.dtype == torch.bool or t.shape != (n,):
        raise ShapeError(
            f"{name} must be an int tensor of shape ({n},) (one class per sample); got "
            f"dtype {t.dtype} and shape {tuple(t.shape)}."
        )
    return t.to(torch.int64).cpu()


# ---------------------------------------------------------------------- the study
def _predict(model: Classifier, groups: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([model.predict(g).cpu() for g in groups])


def _random_sign(
    model: Classifier, x: torch.Tensor, eps: float, gen: torch.Generator
) -> torch.Tensor:
    """``x + eps * s`` with random signs, clipped to the bounds and snapped to the grid."""
    lo, hi = (b.to(x.device) for b in model.bounds)
    s = torch.randint(0, 2, x.shape, generator=gen).to(device=x.device, dtype=x.dtype) * 2 - 1
    xn = clip_to_bounds(x + eps * s, lo, hi)
    if model.levels is not None:
        xn = quantize(x, xn, eps, "linf", lo, hi, model.levels)
    return xn


def _draw_targets(labels: torch.Tensor, c: int, gen: torch.Generator) -> torch.Tensor:
    """Uniform random classes, each different from its sample's label."""
    offset = torch.randint(1, c, labels.shape, generator=gen)
    return (labels + offset) % c


def _attack_group(
    attack: Attack,
    model: Classifier,
    x: torch.Tensor,
    eps: float,
    mode: TransferMode,
    labels: torch.Tensor,
    targets: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """Adversarial examples for one batch; targeted samples that cannot be attacked stay x."""
    if mode == "untargeted":
        return attack(model, x, labels, eps=eps).x_adv.detach()
    out = x.detach().clone()
    if bool(valid.any()):
        idx = valid.nonzero()[:, 0]
        res = attack(model, x[idx.to(x.device)], target=targets[idx], eps=eps)
        out[idx.to(x.device)] = res.x_adv.detach().to(out.dtype)
    return out


def _rate(fooled: torch.Tensor, mask: torch.Tensor) -> tuple[float | None, int, int]:
    n = int(mask.sum())
    k = int((fooled & mask).sum())
    return (k / n if n else None), n, k


def transfer_study(
    source_model: Classifier,
    target_models: Mapping[str, Classifier],
    x: torch.Tensor | np.ndarray | Sequence[torch.Tensor],
    y: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    *,
    source_name: str = "source",
    attacks: Sequence[str | Attack] = ATTACK_NAMES,
    eps: float | Sequence[float] = 8 / 255,
    targeted: bool | None = None,
    target: Literal["random"] | int | torch.Tensor | Sequence[int] = "random",
    steps: int = 20,
    seed: int = 0,
    data: str = "",
    progress: Callable[[str], None] | None = None,
) -> TransferStudy:
    """Measure how often adversarial examples made on one model fool others.

    For each budget in ``eps``, each mode and each attack, the attack is run
    against ``source_model`` only (white box) and its examples are classified
    by every model. Random-sign noise of the same budget gives the baseline
    row. See the module docstring (and :data:`DEFINITIONS`, stored in every
    record) for the exact definition of every rate.

    Parameters
    ----------
    source_model : Classifier
        Differentiable model the attacks are run against (e.g.
        ``hoodwink.zoo.load("mnist-cnn")``).
    target_models : dict of str to Classifier
        Models the examples are transferred to, by name; at least one. They
        must take the same inputs and have the same classes as the source.
    x : torch.Tensor of shape (N, ...), or list of tensors of shape (k, ...)
        Raw inputs within the bounds (and on the grid of models with
        ``levels``). A list lets inputs of different sizes (full-size photos,
        each (1, 3, H, W)) go through each model's own preprocessing.
    y : int tensor of shape (N,), optional
        True labels. When omitted, each model's clean prediction serves as its
        reference label, so "fooled" means "prediction changed".
    source_name : str, default "source"
        Name of the source column.
    attacks : list of str or Attack, default ("fgsm", "pgd")
        ``"fgsm"`` is :class:`~hoodwink.FGSM` (one step of size eps);
        ``"pgd"`` is :class:`~hoodwink.PGD` with ``steps`` steps of
        ``2.5 * eps / steps``, a random start and *no* early stop (examples are
        pushed as far as the budget allows, which is what transfers). L∞
        :class:`~hoodwink.Attack` instances may be given instead.
    eps : float or list of float, default 8/255
        L∞ budgets in raw input units, each > 0.
    targeted : bool or None, default None
        True: targeted only; False: untargeted only; None: both.
    target : "random", int or int tensor of shape (N,), default "random"
        Target classes of the targeted mode. ``"random"`` draws, per sample,
        a class uniformly among those different from its (source) reference
        label, with ``seed``. Samples whose label equals the given target are
        left out of the targeted pools.
    steps : int >= 1, default 20
        Steps of the ``"pgd"`` attack.
    seed : int >= 0, default 0
        Seeds the targets, the noise and the ``"pgd"`` random start.
    data : str, optional
        Description of the samples, recorded in the report.
    progress : callable, optional
        Called with a short status line before each attack run.

    Returns
    -------
    TransferStudy
        Cells of every matrix plus per-sample data; ``.to_dict()`` is the JSON
        record, :func:`write_transfer_report` renders it.

    Raises
    ------
    ConfigError
        A parameter is invalid, or the models disagree on their classes.
    ShapeError
        ``x``, ``y`` or ``target`` have the wrong shape or dtype.

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.studies.transfer import transfer_study
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> a = hoodwink.TorchClassifier(net)
    >>> b = hoodwink.TorchClassifier(net)  # the same network: everything transfers
    >>> x = torch.rand(16, 1, 2, 2)
    >>> study = transfer_study(a, {"copy": b}, x, source_name="a", eps=0.5, targeted=False)
    >>> study.rate("untargeted", 0.5, "pgd", "copy")
    1.0
    """
    t_start = time.perf_counter()
    models = _check_models(source_model, target_models, source_name)
    eps_t = _check_eps(eps)
    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    attack_map = _build_attacks(attacks, steps, seed)
    if targeted is not None and not isinstance(targeted, bool):
        raise ConfigError(
            f"The 'targeted' parameter of transfer_study must be True, False or None (both). "
            f"Got {targeted!r}."
        )
    modes: tuple[TransferMode, ...] = (
        ("untargeted", "targeted") if targeted is None
        else ("targeted",) if targeted else ("untargeted",)
    )
    groups = _as_groups(x)
    n = sum(int(g.shape[0]) for g in groups)
    y_t = _as_label_tensor(y, n, "y") if y is not None else None
    names = list(models)

    clean_pred = {}
    for name, m in models.items():
        try:
            clean_pred[name] = _predict(m, groups)
        except HoodwinkError:
            raise
        except (RuntimeError, ValueError) as exc:  # pragma: no cover - model specific
            raise ShapeError(
                f"Model {name!r} could not classify x ({type(exc).__name__}: {exc}). All models "
                "of a transfer study must take the same inputs."
            ) from exc
    classes = {name: m.num_classes for name, m in models.items()}
    if len(set(classes.values())) != 1:
        raise ConfigError(
            f"The models of a transfer study must share their classes; they have "
            f"{classes} classes. Compare models trained on the same label set."
        )
    c = classes[source_name]
    if y_t is not None and bool(((y_t < 0) | (y_t >= c)).any()):
        raise ShapeError(f"y holds values outside the models' classes 0..{c - 1}.")
    labels = {k: (y_t if y_t is not None else p) for k, p in clean_pred.items()}
    correct = {k: clean_pred[k] == labels[k] for k in names}

    # Separate streams, so the noise does not depend on whether targets were drawn.
    target_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed)
    tgt: torch.Tensor | None = None
    if "targeted" in modes:
        if isinstance(target, str):
            if target != "random":
                raise ConfigError(
                    f"The 'target' parameter of transfer_study must be 'random', a class "
                    f"index or a tensor of class indices. Got {target!r}."
                )
            tgt = _draw_targets(labels[source_name], c, target_gen)
        elif isinstance(target, int | np.integer) and not isinstance(target, bool):
            if not 0 <= int(target) < c:
                raise ConfigError(
                    f"The 'target' parameter of transfer_study must be a class in 0..{c - 1}. "
                    f"Got {target!r}."
                )
            tgt = torch.full((n,), int(target), dtype=torch.int64)
        else:
            tgt = _as_label_tensor(target, n, "target")
            if bool(((tgt < 0) | (tgt >= c)).any()):
                raise ShapeError(f"target holds values outside the models' classes 0..{c - 1}.")
    # A sample can be attacked towards t only if t is not its source label.
    tgt_all = tgt if tgt is not None else torch.full((n,), -1, dtype=torch.int64)
    valid_t = tgt_all != labels[source_name] if tgt is not None else torch.zeros(
        n, dtype=torch.bool)

    edges = np.cumsum([0] + [int(g.shape[0]) for g in groups])
    slices = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    cells: list[TransferCell] = []
    runs: list[dict[str, Any]] = []
    noise_runs: list[dict[str, Any]] = []
    src = models[source_name]
    everywhere = torch.ones(n, dtype=torch.bool)
    for e in eps_t:
        # Noise: one draw per budget, shared by all models.
        x_noise = [_random_sign(src, g, e, noise_gen) for g in groups]
        noise_pred = {k: _predict(m, x_noise) for k, m in models.items()}
        noise_runs.append({"eps": e, "pred": {k: v.tolist() for k, v in noise_pred.items()}})
        for mode in modes:
            if mode == "untargeted":
                def hits(pred: torch.Tensor, k: str) -> torch.Tensor:
                    return pred != labels[k]
                not_already = {k: everywhere for k in names}
            else:
                def hits(pred: torch.Tensor, k: str) -> torch.Tensor:
                    return (pred == tgt_all) & valid_t
                not_already = {k: (clean_pred[k] != tgt_all) & valid_t for k in names}
            src_pool = correct[source_name] & not_already[source_name]
            pools = {k: src_pool & correct[k] & not_already[k] for k in names}
            pools[source_name] = src_pool
            for aname, attack in attack_map.items():
                if progress is not None:
                    progress(f"{aname} {mode} at eps {format_eps(e)} on {source_name}")
                _log.info("transfer: %s %s at eps %s on %s", aname, mode, format_eps(e),
                          source_name)
                t0 = time.perf_counter()
                adv_groups = [
                    _attack_group(attack, src, g, e, mode, labels[source_name][sl],
                                  tgt_all[sl], valid_t[sl])
                    for g, sl in zip(groups, slices, strict=True)
                ]
                adv_pred = {k: _predict(m, adv_groups) for k, m in models.items()}
                dt = time.perf_counter() - t0
                fooled = {k: hits(adv_pred[k], k) for k in names}
                src_ok = fooled[source_name]
                runs.append({
                    "eps": e, "mode": mode, "attack": aname, "time_s": round(dt, 3),
                    "source_success": src_ok.tolist(),
                    "pred_adv": {k: v.tolist() for k, v in adv_pred.items()},
                })
                for k in names:
                    if k == source_name:
                        rate, ne, nf = _rate(src_ok, src_pool)
                        cells.append(TransferCell(mode, e, aname, k, "white-box", rate, ne, nf,
                                                  ne, rate))
                    else:
                        rate, ne, nf = _rate(fooled[k], pools[k] & src_ok)
                        unc, npool, _ = _rate(fooled[k], pools[k])
                        cells.append(TransferCell(mode, e, aname, k, "transfer", rate, ne, nf,
                                                  npool, unc))
            for k in names:
                rate, ne, nf = _rate(hits(noise_pred[k], k), pools[k])
                cells.append(TransferCell(mode, e, NOISE, k, "noise", rate, ne, nf, ne, rate))

    clean: dict[str, dict[str, Any]] = {}
    for k in names:
        ref = y_t if y_t is not None else clean_pred[source_name]
        agree = clean_pred[k] == ref
        clean[k] = {
            "n_correct": int(agree.sum()),
            "accuracy" if y_t is not None else "agreement_with_source": float(
                agree.float().mean()),
        }
    samples = {
        "y": y_t.tolist() if y_t is not None else None,
        "clean_pred": {k: v.tolist() for k, v in clean_pred.items()},
        "target": tgt.tolist() if tgt is not None else None,
        "runs": runs,
        "noise": noise_runs,
    }
    return TransferStudy(
        source=source_name, models=tuple(names), eps=eps_t, attacks=tuple(attack_map),
        attack_reprs={k: repr(a) for k, a in attack_map.items()}, modes=modes,
        cells=tuple(cells), clean=clean, n=n, labelled=y_t is not None, seed=seed,
        samples=samples, time_s=time.perf_counter() - t_start, data=data,
    )


# ---------------------------------------------------------------------- zoo and data
def natural_photos(names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Natural photos that ship inside installed packages, at native resolution.

    Parameters
    ----------
    names : list of str, optional
        Any of :data:`PHOTOS`: scikit-image's ``chelsea`` (a cat), ``coffee``
        (espresso), ``rocket``, ``astronaut``, ``motorcycle`` (the left view of
        ``stereo_motorcycle``), and scikit-learn's ``china`` (a temple) and
        ``flower`` (a daisy). Default: all of them, without the two
        scikit-learn photos when scikit-learn is not installed.

    Returns
    -------
    dict of str to torch.Tensor
        Each photo as a float tensor of shape (1, 3, H, W) with values
        ``k / 255``, in the order asked for.

    Raises
    ------
    ConfigError
        Unknown photo name.
    MissingDependencyError
        scikit-image (or scikit-learn, for a photo named explicitly) is missing.
    """
    try:
        import skimage.data as skdata
    except ImportError as exc:
        raise MissingDependencyError(
            "The ImageNet photos come from scikit-image: pip install 'hoodwink[imagenet]'."
        ) from exc
    have_sklearn = True
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        have_sklearn = False
    if names is None:
        wanted = [p for p in PHOTOS if have_sklearn or p not in _SKLEARN_PHOTOS]
    else:
        if isinstance(names, str):
            names = [names]
        wanted = [str(p).strip().lower() for p in names]
        unknown = [p for p in wanted if p not in PHOTOS]
        if unknown or not wanted:
            raise ConfigError(
                f"Unknown photo name(s) {unknown or names!r}; choose from {', '.join(PHOTOS)}."
            )
        if not have_sklearn and any(p in _SKLEARN_PHOTOS for p in wanted):
            raise MissingDependencyError(
                "The photos 'china' and 'flower' come from scikit-learn: "
                "pip install 'hoodwink[sklearn]'."
            )
    out: dict[str, torch.Tensor] = {}
    sample_images: list[np.ndarray] | None = None
    for p in wanted:
        if p == "motorcycle":
            arr = np.asarray(skdata.stereo_motorcycle()[0])  # type: ignore[no-untyped-call]
        elif p in _SKLEARN_PHOTOS:
            if sample_images is None:
                sample_images = list(load_sample_images().images)
            arr = np.asarray(sample_images[_SKLEARN_PHOTOS.index(p)])
        else:
            arr = np.asarray(getattr(skdata, p)())
        t = torch.from_numpy(np.array(arr[..., :3], dtype=np.uint8, copy=True)).permute(2, 0, 1)
        out[p] = t[None].float() / 255.0
    return out


def _family(name: str) -> str:
    return "mnist" if name.startswith("mnist") else "imagenet"


def zoo_transfer_study(
    source: str,
    to: Sequence[str],
    *,
    n: int = 500,
    eps: float | Sequence[float] | None = None,
    attacks: Sequence[str] = ATTACK_NAMES,
    targeted: bool | None = None,
    target: Literal["random"] | int | str = "random",
    steps: int = 20,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> TransferStudy:
    """:func:`transfer_study` between pretrained zoo models, on their bundled data.

    MNIST models are compared on the first ``n`` held-out digits
    (``hoodwink.data.load_mnist("test")``, with their true labels); ImageNet
    models on the first ``n`` of :func:`natural_photos` at their native sizes
    (each model resizes differentiably), unlabelled, so each model's clean
    prediction is its reference label.

    Parameters
    ----------
    source : str
        A name from ``hoodwink.zoo.available()``.
    to : list of str
        Target model names of the same family (MNIST or ImageNet).
    n : int >= 1, default 500
        Samples (for ImageNet: photos, at most ``len(PHOTOS)``).
    eps : float or list of float, optional
        Default: 0.1 and 0.2 for MNIST; 2/255, 4/255 and 8/255 for ImageNet.
    attacks, targeted, steps, seed, progress
        As in :func:`transfer_study`.
    target : "random", int or str
        Targeted mode's class: random per sample, an index, or an ImageNet
        class name (e.g. ``"goldfish"``).

    Returns
    -------
    TransferStudy

    Raises
    ------
    ConfigError
        Unknown model name, mixed families, or a bad parameter.
    """
    from hoodwink import zoo

    if isinstance(to, str):
        to = [t for t in to.split(",") if t.strip()]
    names = [source, *to]
    known = zoo.available()
    for nm in names:
        if not isinstance(nm, str) or nm.strip().lower() not in known:
            raise ConfigError(f"Unknown model {nm!r}. Available: {', '.join(known)}.")
    names = [nm.strip().lower() for nm in names]
    if len(names) < 2:
        raise ConfigError("Give at least one target model (--to), e.g. --to mnist-linear.")
    if len(set(names)) != len(names):
        raise ConfigError(f"Each model may appear once; got {names}.")
    families = {_family(nm) for nm in names}
    if len(families) != 1:
        raise ConfigError(
            f"Transfer needs models that take the same inputs; {names} mix MNIST and ImageNet "
            "models."
        )
    family = families.pop()
    n = _check_int("n", n, 1)
    target_spec: Literal["random"] | int = "random"
    if isinstance(target, str) and target.strip().lower() != "random":
        s = target.strip()
        if s.isdigit():
            target_spec = int(s)
        elif family == "imagenet":
            from hoodwink.zoo.imagenet import resolve_class

            target_spec = resolve_class(s)
        else:
            raise ConfigError(f"An MNIST target must be a digit 0..9 or 'random'. Got {target!r}.")
    elif isinstance(target, int):
        target_spec = target
    if eps is None:
        eps = _MNIST_EPS if family == "mnist" else _IMAGENET_EPS
    xs: torch.Tensor | list[torch.Tensor]
    ys: torch.Tensor | None
    if family == "mnist":
        from hoodwink.data.mnist import load_mnist

        x_all, y_all = load_mnist("test")
        xs, ys = x_all[:n], y_all[:n]
        data = f"first {len(xs)} of load_mnist('test') (true labels)"
    else:
        photos = natural_photos()
        chosen = list(photos)[:n]
        xs, ys = [photos[p] for p in chosen], None
        data = (f"photos {', '.join(chosen)} at native size (unlabelled: each model's clean "
                "prediction is its reference label)")
    models = {nm: zoo.load(nm) for nm in names}
    return transfer_study(
        models[names[0]], {nm: models[nm] for nm in names[1:]}, xs, ys, source_name=names[0],
        attacks=attacks, eps=eps, targeted=targeted, target=target_spec, steps=steps,
        seed=seed, data=data, progress=progress,
    )


# ---------------------------------------------------------------------- rendering
def format_eps(e: float) -> str:
    """A budget as people write it: ``0.1`` stays ``0.1``; ``8/255`` is shown as ``8/255``."""
    short = f"{e:g}"
    k = e * 255
    if len(short) > 5 and round(k) > 0 and abs(k - round(k)) < 1e-6:
        return f"{round(k):d}/255"
    return f"{e:.4g}"


def _eps_key(e: float) -> str:
    return f"{e:.6g}"


def _nan_none(v: float) -> float | None:
    return None if v != v else float(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def render_heatmap(study: TransferStudy) -> bytes:
    """The transfer matrices as one PNG figure (matplotlib, Agg; no display needed).

    One panel per mode (rows) and budget (columns); in each, rows are the
    attacks and the noise baseline, columns the models (source first, marked
    white-box); each cell shows the rate and its denominator.

    Returns
    -------
    bytes
        PNG data.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The heat map needs matplotlib: pip install 'hoodwink[images]'."
        ) from exc
    n_modes, n_eps = len(study.modes), len(study.eps)
    n_rows, n_cols = len(study.rows), len(study.models)
    w = max(3.0, 1.25 * n_cols + 1.6)
    h = max(2.2, 0.6 * n_rows + 1.5)
    fig = Figure(figsize=(w * n_eps, h * n_modes), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_modes, n_eps, squeeze=False)
    cols = [f"{m}\n(white-box)" if m == study.source else m for m in study.models]
    image = None
    for i, mode in enumerate(study.modes):
        for j, e in enumerate(study.eps):
            ax = axes[i][j]
            mat = study.matrix(mode, e)
            image = ax.imshow(np.ma.masked_invalid(mat), vmin=0.0, vmax=1.0, cmap="magma",
                              aspect="auto")
            ax.set_facecolor("#dddddd")
            for r, row in enumerate(study.rows):
                for cc, model in enumerate(study.models):
                    cell = study.cell(mode, e, row, model)
                    v = mat[r, cc]
                    colour = "black" if v == v and v > 0.6 else "white"
                    if v != v:
                        colour = "black"
                    ax.text(cc, r, f"{_pct(cell.rate)}\nn={cell.n_eligible}", ha="center",
                            va="center", fontsize=7, color=colour)
            ax.set_xticks(range(n_cols), cols, fontsize=7)
            ax.set_yticks(range(n_rows), list(study.rows), fontsize=8)
            ax.set_title(f"{mode}, eps = {format_eps(e)}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="rate")
    fig.suptitle(f"Transfer from {study.source} (n = {study.n})", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def transfer_report(study: TransferStudy, *, figure: str | None = "transfer.png") -> Report:
    """A :class:`~hoodwink.reports.Report` of the study: tables and text from its record.

    Parameters
    ----------
    study : TransferStudy
    figure : str or None, default "transfer.png"
        Name of the heat-map file the report links (written by
        :func:`write_transfer_report`); None for no figure block.
    """
    from hoodwink.reports import Report

    rep = Report(kind="transfer", title=f"Transferability from {study.source}",
                 record=study.to_dict())
    rep.text(
        f"Adversarial examples made on **{study.source}** (white box), evaluated on "
        f"{', '.join(study.models[1:])}. Data: {study.data or f'{study.n} samples'}. "
        f"Seed {study.seed}."
    )
    rep.heading("Definitions")
    for key in ("label", "untargeted", "targeted", "white-box", "noise", "unconditional"):
        rep.text(DEFINITIONS[key])
    rep.heading("Clean predictions")
    metric = "accuracy" if study.labelled else "agreement_with_source"
    rep.table(["model", metric.replace("_", " "), "correct"],
              [[k, v[metric], v["n_correct"]] for k, v in study.clean.items()])
    if figure is not None:
        rep.figure(figure, "Transfer matrices: rows attacks and the noise baseline, columns "
                           "models (source first: white-box rate).")
    for mode in study.modes:
        for e in study.eps:
            rep.heading(f"{mode}, eps = {format_eps(e)}")
            rows = []
            for r in study.rows:
                row: list[Any] = [r]
                for m in study.models:
                    cell = study.cell(mode, e, r, m)
                    row.append(f"{_pct(cell.rate)} ({cell.n_fooled}/{cell.n_eligible})")
                rows.append(row)
            rep.table(["attack", *[f"{m} (white-box)" if m == study.source else m
                                   for m in study.models]], rows)
    rep.heading("Attacks")
    rep.table(["name", "configuration"], [[k, v] for k, v in study.attack_reprs.items()])
    return rep


def write_transfer_report(
    study: TransferStudy, folder: str | Path, *, stem: str = "transfer"
) -> ReportPaths:
    """Write ``<stem>.json`` (the record), ``.md``, ``.html`` and ``<stem>.png`` (heat map).

    Parameters
    ----------
    study : TransferStudy
    folder : str or Path
        Created if needed.
    stem : str, default "transfer"

    Returns
    -------
    ReportPaths
        The figure lies beside them as ``<stem>.png``.
    """
    from hoodwink.reports import atomic_write_bytes

    d = Path(folder)
    png = render_heatmap(study)
    rep = transfer_report(study, figure=f"{stem}.png")
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(d / f"{stem}.png", png)
    return rep.write(d, stem=stem)
