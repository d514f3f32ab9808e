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

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import torch

from hoodwink._validation import check_int, check_real, check_seed
from hoodwink.attacks._norms import clip_to_bounds, quantize
from hoodwink.attacks.base import Attack
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.pgd import PGD
from hoodwink.errors import ConfigError, HoodwinkError, ShapeError
from hoodwink.models.base import Classifier
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.studies.transfer.records import (
    ATTACK_NAMES,
    NOISE,
    TransferCell,
    TransferMode,
    TransferStudy,
    format_eps,
)

__all__ = ["transfer_study"]

_log = logging.getLogger(__name__)


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
    out = [
        float(check_real("transfer_study", "eps", v, low=0, closed="neither",
                         hint="L∞ budgets in raw input units, e.g. 8/255"))
        for v in values
    ]
    if len(set(out)) != len(out):
        raise ConfigError(f"The 'eps' parameter of transfer_study has duplicates: {out}.")
    return tuple(out)


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
    progress: ProgressCallback | None = None,
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
        ``progress(done, total, message)`` (:mod:`hoodwink.progress`) after each
        attack on each batch of ``x``: ``total`` is budgets × modes × attacks ×
        batches, and the message names the attack, mode and budget.

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
    report = as_callback(progress)
    models = _check_models(source_model, target_models, source_name)
    eps_t = _check_eps(eps)
    steps = int(check_int("transfer_study", "steps", steps, low=1))
    seed = check_seed("transfer_study", "seed", seed)
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
    total = len(eps_t) * len(modes) * len(attack_map) * len(groups)
    done = 0
    report(0, total, f"{len(models)} models classified the clean inputs")
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
                what = f"{aname} {mode} at eps {format_eps(e)} on {source_name}"
                _log.info("transfer: %s", what)
                t0 = time.perf_counter()
                adv_groups = []
                for gi, (g, sl) in enumerate(zip(groups, slices, strict=True)):
                    adv_groups.append(_attack_group(attack, src, g, e, mode,
                                                    labels[source_name][sl], tgt_all[sl],
                                                    valid_t[sl]))
                    done += 1
                    report(done, total, what if len(groups) == 1
                           else f"{what} ({gi + 1}/{len(groups)})")
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
