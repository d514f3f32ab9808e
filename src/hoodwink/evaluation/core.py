"""The evaluation cascade behind :func:`hoodwink.evaluate`.

Order of work (see ``docs/evaluate.md``):

1. A clean pass: which samples the model classifies correctly.
2. The sanity checks (:mod:`hoodwink.evaluation.flags`), unless ``checks=False``.
3. Minimum-norm attacks, in order, on every clean-correct sample, with eps the
   diameter of the input box, so they report raw minimal norms.
4. For each grid eps in ascending order, the fixed-budget attacks in order,
   each only on the samples still robust at that eps (minimal norm found so
   far > eps).

Every success lowers the sample's minimal norm (the norm of the adversarial,
as the :class:`~hoodwink.AttackResult` computed it) and keeps the adversarial
of smallest norm. A sample is robust at eps iff it is clean-correct and its
minimal norm is above eps, so the robust-accuracy curve at *any* eps is read
from the minimal norms without attacking again.

The work is split into units (one attack, one eps, one batch of samples);
each unit's seed is derived from ``seed`` and the unit's key, so a run resumed
from its store (:mod:`hoodwink.evaluation.store`) gives identical numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hoodwink._validation import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_seed,
    is_real,
    reject,
)
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    EpsScaleWarning,
    InputError,
    ShapeError,
)
from hoodwink.evaluation import flags as _flags
from hoodwink.evaluation.record import Evaluation
from hoodwink.evaluation.store import RunStore, Unit, data_fingerprint, model_fingerprint
from hoodwink.progress import ProgressCallback, as_callback

if TYPE_CHECKING:
    from hoodwink.attacks.base import Attack
    from hoodwink.models.base import Classifier

__all__ = ["STANDARD", "evaluate", "standard_attacks"]

_log = logging.getLogger(__name__)
_OWNER = "evaluate"
_NORMS = ("linf", "l2", "l1")
#: Flags that say the gradients may mislead: a black-box probe then goes on to its full budget.
_SUSPECT = frozenset({"zero-gradients", "probability-outputs", "randomised-model",
                      "not-zero-at-huge-eps"})

#: The "standard" attack list per norm, in run order (see :func:`standard_attacks`).
STANDARD: dict[str, tuple[str, ...]] = {
    "linf": ("fmn", "apgd", "apgd-t", "square"),
    "l2": ("fmn", "apgd", "apgd-t", "square"),
    "l1": ("fmn", "pgd"),
}


@dataclasses.dataclass(frozen=True)
class _Planned:
    """One attack of the run: its name, configured instance and kind."""

    name: str
    attack: Attack

    @property
    def minimum_norm(self) -> bool:
        return bool(getattr(self.attack, "minimum_norm", False))

    @property
    def threat(self) -> str:
        return str(type(self.attack).threat)


def standard_attacks(norm: str, *, max_queries: int = 5000, seed: int = 0,
                     model: Classifier | None = None) -> list[tuple[str, Attack]]:
    """The attacks ``attacks="standard"`` runs, as ``(name, attack)`` pairs in run order.

    L∞ and L2: ``fmn`` (minimum norm, every clean-correct sample), then in
    cascade ``apgd`` (cross-entropy), ``apgd-t`` (targeted DLR towards the 9
    likeliest other classes) and ``square`` (black box, ``max_queries``).
    L1: ``fmn``, then ``pgd`` (L1, 100 steps). Attacks the model cannot run
    (gradients for a model without them, scores for a label-only model) are
    left out; a label-only model without any attack left gets
    ``hopskipjump`` (minimum norm, from labels, L∞/L2).

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}
    max_queries : int, default 5000
        Budget per sample of the black-box attacks.
    seed : int, default 0
        The attacks' seed (each unit of a run replaces it with its own).
    model : Classifier, optional
        When given, attacks it cannot run are left out.

    Returns
    -------
    list of (str, Attack)

    Raises
    ------
    CapabilityError
        When no standard attack fits the model.
    """
    from hoodwink.attacks import registry

    norm = check_choice("standard_attacks", "norm", norm, _NORMS)
    caps = model.capabilities if model is not None else None
    out: list[tuple[str, Attack]] = []
    for name in STANDARD[norm]:
        info = registry.get(name)
        try:
            cls = info.cls
        except ImportError:  # an attack not installed in this version: said, then skipped
            _log.warning("the standard attack %r is not available; it is left out", name)
            continue
        threat = str(cls.threat)
        if caps is not None and ((threat == "white-box" and not caps.differentiable)
                                 or (threat == "scores" and caps.output == "labels")):
            continue
        params: dict[str, Any] = {"norm": norm, "seed": seed}
        if name == "square":
            params["max_queries"] = max_queries
        if name == "pgd":
            params["steps"] = 100
        out.append((name, registry.make(name, **params)))
    if not out and norm in ("linf", "l2"):
        out.append(("hopskipjump", registry.make("hopskipjump", norm=norm, seed=seed,
                                                 max_queries=max_queries)))
    if not out:
        raise CapabilityError(
            f"No standard {norm} attack can run on this model (capabilities: {caps}). Pass "
            "attacks= with attacks it supports (see `hoodwink attacks`), or another norm."
        )
    return out


def _plan(attacks: Any, norm: str, max_queries: int, seed: int,
          model: Classifier) -> list[_Planned]:
    """The attacks to run, minimum-norm ones first (otherwise in the given order)."""
    from hoodwink.attacks import registry
    from hoodwink.attacks.base import Attack

    if isinstance(attacks, str) and attacks.strip().lower() == "standard":
        pairs = standard_attacks(norm, max_queries=max_queries, seed=seed, model=model)
    elif isinstance(attacks, str | Attack) or not isinstance(attacks, Sequence) or not attacks:
        reject(_OWNER, "attacks", attacks,
               "'standard' or a non-empty list of attack names (see `hoodwink attacks`) "
               "and Attack instances")
    else:
        pairs = []
        caps = model.capabilities
        for i, a in enumerate(attacks):
            if isinstance(a, str):
                info = registry.get(a)
                fields = {f.name for f in dataclasses.fields(info.cls)}
                params: dict[str, Any] = {"norm": norm, "seed": seed}
                if "max_queries" in fields:
                    params["max_queries"] = max_queries
                pairs.append((info.name, registry.make(info.name, **params)))
            elif isinstance(a, Attack):
                if a.norm != norm:
                    raise ConfigError(
                        f"attacks[{i}] is {a!r}, an attack in {a.norm}, but the evaluation is in "
                        f"{norm}. Build it with norm={norm!r}, or evaluate with norm={a.norm!r}."
                    )
                pairs.append((type(a).__name__.lower(), a))
            else:
                reject(_OWNER, f"attacks[{i}]", a, "an attack name or an Attack instance")
        for name, a in pairs:
            threat = type(a).threat
            if threat == "white-box" and not caps.differentiable:
                raise CapabilityError(
                    f"{name} is a white-box attack, but the model gives no gradients. Leave it "
                    "out, or use score- or label-based attacks (see `hoodwink attacks`)."
                )
            if threat == "scores" and caps.output == "labels":
                raise CapabilityError(
                    f"{name} needs the model's scores, but the model answers with labels only. "
                    "Use label-only attacks such as hopskipjump."
                )
    planned = [_Planned(n, a) for n, a in pairs]
    return [p for p in planned if p.minimum_norm] + [p for p in planned if not p.minimum_norm]


def _unit_seed(seed: int, key: str) -> int:
    """A seed for one unit, derived from the run's seed and the unit's key."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _grid(eps: Any) -> list[float]:
    if is_real(eps):
        return [check_real(_OWNER, "eps", eps, low=0)]
    if isinstance(eps, np.ndarray) and eps.ndim == 1:
        eps = eps.tolist()
    if not isinstance(eps, list | tuple | range) or len(eps) == 0:
        reject(_OWNER, "eps", eps, "a float in [0, inf) or a non-empty list of them (the grid)")
    values = [check_real(_OWNER, f"eps[{i}]", e, low=0) for i, e in enumerate(eps)]
    return sorted(set(values))


def _inputs(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a tensor (or numpy array) of inputs, shape (N, ...); got "
                         f"{type(x).__name__}.")
    if not x.is_floating_point():
        raise ShapeError(f"x has dtype {x.dtype}; pass float inputs in the model's bounds "
                         "(uint8 images: divide by 255).")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ShapeError(f"x has shape {tuple(x.shape)}; pass a non-empty batch (N, ...).")
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(y)
    if isinstance(y, list | tuple):
        y = torch.tensor(y)
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise InputError("y must be integer class labels, shape (N,); got "
                         f"{getattr(y, 'dtype', type(y).__name__)}.")
    if tuple(y.shape) != (x.shape[0],):
        raise ShapeError(f"y has shape {tuple(y.shape)}; it needs one label per input, shape "
                         f"({x.shape[0]},).")
    return x, y.to(device=x.device, dtype=torch.int64)


def evaluate(
    model: Classifier,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray | Sequence[int],
    *,
    norm: str = "linf",
    eps: float | Sequence[float] = 8 / 255,
    attacks: str | Sequence[str | Attack] = "standard",
    seed: int = 0,
    batch_size: int | None = None,
    max_queries: int = 5000,
    probe_queries: int | None = 500,
    probe_targets: int | None = 3,
    store: str | Path | None = None,
    checks: bool = True,
    examples: int = 6,
    progress: ProgressCallback | None = None,
    model_name: str | None = None,
    data_name: str | None = None,
) -> Evaluation:
    """Measure robust accuracy with a cascade of attacks, and flag what makes it untrustworthy.

    Minimum-norm attacks run first on every clean-correct sample; then, for
    each eps of the grid in ascending order, the fixed-budget attacks run in
    cascade, each on the samples every attack before it failed on at that eps.
    A sample is never attacked at an eps where it is already broken.

    Robust accuracy at eps is the fraction of *all* n samples that the model
    classifies correctly and that no attack broke within eps; it is an upper
    bound on the true robust accuracy (a stronger attack can only lower it).

    Parameters
    ----------
    model : Classifier
        A wrapped model (e.g. :class:`hoodwink.TorchClassifier`); it is not changed.
    x : torch.Tensor, shape (N, ...)
        Raw float inputs within the model's bounds.
    y : int tensor, shape (N,)
        True labels.
    norm : {"linf", "l2", "l1"}, default "linf"
    eps : float or sequence of float, default 8/255
        The budget, or a grid of budgets (sorted ascending, duplicates dropped),
        in raw input units.
    attacks : "standard" or list of str and Attack, default "standard"
        "standard": see :func:`standard_attacks`. Names are built with
        :func:`hoodwink.attacks.registry.make` (``norm``, ``seed`` and, for
        black-box attacks, ``max_queries``); instances must use ``norm``.
        Minimum-norm attacks always run first.
    seed : int, default 0
        Each unit (attack, eps, batch) runs with a seed derived from it.
    batch_size : int >= 1, optional
        Samples per unit; all of a stage's samples at once when None.
    max_queries : int in [2, 10**9], default 5000
        Query budget per sample of black-box attacks named by string.
    probe_queries : int in [2, 10**9] or None, default 500
        A black-box attack that follows a white-box one in the cascade first
        runs with this budget per sample (a probe), and goes on with the rest
        of its budget (``max_queries``, or the instance's own; a fresh run, so
        no sample ever costs more) on the samples still robust only when
        there is evidence that the gradients mislead: the
        probe broke a sample every white-box attack failed on, or a gradient
        flag fired in the sanity checks (``zero-gradients``,
        ``probability-outputs``, ``randomised-model``,
        ``not-zero-at-huge-eps``), or the checks are off (no evidence either
        way). On a model with sound gradients the black-box stage then costs a
        tenth of its full budget; see ``docs/evaluate.md`` for the
        measurements behind this choice. None spends the full budget always,
        as the reference AutoAttack does.
    probe_targets : int >= 1 or None, default 3
        APGD-T (:class:`~hoodwink.attacks.apgd.APGD` with ``target_classes``)
        first attacks this many likeliest other classes, with one random
        start more than its own ``restarts``, and the remaining classes only
        when a gradient flag fired or the checks are off (a white-box probe
        that breaks samples is doing its job: that is no evidence of masking).
        None attacks all of them at once, as the reference does.
    store : str or Path, optional
        An SQLite file: each finished unit is written there, and a run with the
        same store resumes, reading finished units back. A store of another
        configuration is refused with :class:`~hoodwink.errors.ConfigError`.
    checks : bool, default True
        Run the sanity checks (:data:`hoodwink.evaluation.FLAGS`).
    examples : int >= 0, default 6
        How many samples' x and best x_adv to keep in the record (broken ones
        first).
    progress : callable, optional
        ``progress(done, total, message)``, called after each stage.
    model_name, data_name : str, optional
        Names for the record (default: the module's class name, "data").

    Returns
    -------
    Evaluation
        The record: summary, dense curve, per-stage contributions, per-sample
        minimal norms, flags and example tensors.

    Raises
    ------
    ConfigError
        An invalid parameter, an unknown attack name, an attack of another
        norm, or a store of another configuration.
    InputError
        Unusable x or y.
    CapabilityError
        An attack the model cannot run.

    Examples
    --------
    >>> import torch
    >>> from hoodwink import TorchClassifier
    >>> net = torch.nn.Linear(4, 3).eval()
    >>> model = TorchClassifier(net, bounds=(-5, 5))
    >>> x = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))
    >>> ev = evaluate(model, x, model.predict(x), eps=[0.05, 0.1], attacks=["pgd"],
    ...               checks=False)
    >>> ev.clean_accuracy
    1.0
    >>> [r["eps"] for r in ev.totals["robust"]]
    [0.05, 0.1]
    """
    t_start = time.perf_counter()
    needed = ("capabilities", "num_classes", "bounds", "levels", "predict")
    if isinstance(model, type) or not all(hasattr(type(model), a) for a in needed):
        reject(_OWNER, "model", model, "a hoodwink model instance",
               hint="Wrap a torch module with hoodwink.TorchClassifier(module, bounds=...).")
    xt, yt = _inputs(x, y)
    norm = check_choice(_OWNER, "norm", norm, _NORMS)
    grid = _grid(eps)
    seed = check_seed(_OWNER, "seed", seed)
    bs = check_int(_OWNER, "batch_size", batch_size, low=1, allow_none=True)
    max_queries = check_int(_OWNER, "max_queries", max_queries, low=2, high=10**9)
    probe_queries = check_int(_OWNER, "probe_queries", probe_queries, low=2, high=10**9,
                              allow_none=True)
    probe_targets = check_int(_OWNER, "probe_targets", probe_targets, low=1, high=10**5,
                              allow_none=True)
    checks = check_bool(_OWNER, "checks", checks)
    examples = check_int(_OWNER, "examples", examples, low=0)
    report = as_callback(progress)
    for name, value in (("model_name", model_name), ("data_name", data_name)):
        if value is not None and not isinstance(value, str):
            reject(_OWNER, name, value, "a string or None")
    n = int(xt.shape[0])
    batch = n if bs is None else bs
    plan = _plan(attacks, norm, max_queries, seed, model)
    if store is not None and not isinstance(store, str | Path):
        reject(_OWNER, "store", store, "a path to an SQLite file, or None")

    from hoodwink.attacks._norms import range_diameter

    lo, hi = model.bounds
    dims = math.prod(int(d) for d in xt.shape[1:])
    diameter = range_diameter(lo, hi, norm, dims)  # type: ignore[arg-type]
    evaluating = getattr(model, "evaluating", None)
    with evaluating() if callable(evaluating) else nullcontext():
        # The clean pass first: an adapter may learn its number of classes from it.
        pred_clean = model.predict(xt).detach().cpu().numpy().astype(np.int64)
    n_classes = int(model.num_classes)
    if bool(((yt < 0) | (yt >= n_classes)).any()):
        bad = int(yt[(yt < 0) | (yt >= n_classes)][0])
        raise InputError(
            f"y contains the label {bad}, outside the model's classes 0..{n_classes - 1}. Check "
            "that the labels belong to the model."
        )
    config: dict[str, Any] = {
        "model": model_fingerprint(model), "data": data_fingerprint(xt, yt), "norm": norm,
        "eps": grid, "attacks": [repr(p.attack) for p in plan], "seed": seed,
        "batch_size": batch, "max_queries": max_queries, "checks": checks,
    }
    for key, budget in (("probe_queries", probe_queries), ("probe_targets", probe_targets)):
        if budget is not None:  # absent when None: stores written before stay valid
            config[key] = budget
    db = RunStore(store, config) if store is not None else None
    try:
        with evaluating() if callable(evaluating) else nullcontext():
            run = _Run(model, xt, yt, norm, grid, plan, seed, batch, diameter, db, report)
            run.clean(pred_clean)
            t_checks = time.perf_counter()
            flag_list = run.checks() if checks else []
            checks_s = time.perf_counter() - t_checks if checks else 0.0
            run.probe_queries, run.probe_targets = probe_queries, probe_targets
            suspect = sorted({str(f["code"]) for f in flag_list} & _SUSPECT)
            run.suspect = suspect if checks else ["checks off"]
            t_attacks = time.perf_counter()
            run.cascade()
            if checks:
                run.late_checks()
                flag_list += run.late_flags
                checks_s += run.late_s
            attacks_s = time.perf_counter() - t_attacks - run.late_s
    finally:
        if db is not None:
            db.close()
    if checks:
        bb = _flags.blackbox_beats_whitebox(run.stages)
        if bb is not None:
            flag_list.append(bb)
    for f in flag_list:
        _log.warning("sanity flag %s: %s", f["code"], f["message"])
    total_s = time.perf_counter() - t_start
    return run.record(
        model_name=model_name, data_name=data_name, max_queries=max_queries,
        probes={"probe_queries": probe_queries, "probe_targets": probe_targets}, checks=checks,
        flags=flag_list, examples=examples, config_fp=config,
        timings={"total_s": total_s, "checks_s": checks_s, "attacks_s": attacks_s})


class _Run:
    """The state of one evaluation: per-sample minimal norms, best adversarials, stages."""

    def __init__(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, norm: str,
                 grid: list[float], plan: list[_Planned], seed: int, batch: int,
                 diameter: float, db: RunStore | None, report: ProgressCallback) -> None:
        self.model, self.x, self.y, self.norm, self.grid = model, x, y, norm, grid
        self.plan, self.seed, self.batch, self.diameter = plan, seed, batch, diameter
        self.db, self.report = db, report
        n = x.shape[0]
        self.min_norm = np.full(n, math.inf)
        self.best_x = x.detach().clone()
        self.pred_adv: list[int | None] = [None] * n
        self.broken_by: list[str | None] = [None] * n
        self.queries = np.zeros(n, dtype=np.int64)
        self.stages: list[dict[str, Any]] = []
        self.seq = 0
        self.computed = 0
        self.pred_clean = np.zeros(n, dtype=np.int64)
        self.cc = np.zeros(n, dtype=bool)
        #: Probe budget of black-box stages after white-box ones (None: full budgets).
        self.probe_queries: int | None = None
        #: Target classes of APGD-T's probe (None: all of them at once).
        self.probe_targets: int | None = None
        #: Why black-box probes go on to their full budget whatever they find (flag codes).
        self.suspect: list[str] = []
        #: Per-sample smallest norm a fixed-budget white-box attack reached (the huge-eps
        #: check's input).
        self.white_norm = np.full(n, math.inf)
        #: The huge-eps check's attack, until it has run (None: no white-box fixed-budget
        #: attack, no checks, or run already).
        self.huge_attack: Attack | None = None
        self.late_flags: list[dict[str, Any]] = []
        self.late_s = 0.0

    # ------------------------------------------------------------------ clean pass, checks
    def clean(self, pred: np.ndarray) -> None:
        # A resumed run keeps the first run's clean predictions (a random model's differ).
        cached = self.db.get("clean") if self.db is not None else None
        if cached is not None:
            pred = np.asarray(cached, dtype=np.int64)
        elif self.db is not None:
            self.db.put("clean", pred.tolist())
        self.pred_clean = pred
        self.cc = pred == self.y.cpu().numpy()

    def _cc_index(self) -> torch.Tensor:
        return torch.from_numpy(np.flatnonzero(self.cc)).to(self.x.device)

    def checks(self) -> list[dict[str, Any]]:
        fixed_white = [p for p in self.plan if not p.minimum_norm and p.threat == "white-box"]
        if fixed_white:
            # Run once the white-box stages have broken what they can (late_checks), also
            # when the checks below are read back from the store: it has a cache of its own.
            self.huge_attack = dataclasses.replace(
                fixed_white[0].attack, seed=_unit_seed(self.seed, "check:huge-eps"))
        cached = self.db.get("checks") if self.db is not None else None
        if cached is not None:
            return list(cached)
        out: list[dict[str, Any]] = []
        idx = self._cc_index()
        xc, yc = self.x[idx], self.y[idx]
        logit = [p.name for p in self.plan if p.threat != "labels"]
        found = [_flags.eps_too_large(self.grid, diameter=self.diameter, norm=self.norm)]
        from hoodwink.models.torch import TorchClassifier

        if isinstance(self.model, TorchClassifier) and self.model.capabilities.differentiable \
                and xc.shape[0] > 0:
            # One gradient pass on the clean-correct samples serves three checks: its
            # logits are the model's scores (TorchClassifier.scores is its logits).
            n_grad = min(int(xc.shape[0]), _flags.GRADIENT_N)
            _, logits, grad = self.model.loss_gradient(xc[:n_grad], yc[:n_grad], loss="ce")
            found += [_flags.probability_outputs(self.model, xc, logit, scores=logits),
                      _flags.randomised_model(self.model, xc, scores=logits),
                      _flags.zero_gradients(self.model, xc, yc, gradient=grad)]
        else:
            found += [_flags.probability_outputs(self.model, self.x, logit),
                      _flags.randomised_model(self.model, self.x),
                      _flags.zero_gradients(self.model, xc, yc)]
        out = [f for f in found if f is not None]
        if self.db is not None:
            self.db.put("checks", out)
        return out

    def late_checks(self) -> None:
        """``not-zero-at-huge-eps``, on the samples no white-box stage has broken yet.

        Runs once, at the first probe decision or at the end of the cascade: a
        sample a fixed-budget white-box attack broke within half the range is
        broken at that budget, so only the others cost model passes (none, on a
        model those attacks break entirely).
        """
        attack, self.huge_attack = self.huge_attack, None
        if attack is None:
            return
        t0 = time.perf_counter()
        cached = self.db.get("check:huge-eps") if self.db is not None else None
        if cached is not None:
            flag = cached.get("flag")
        else:
            idx = self._cc_index()
            eps = 0.5 * self.diameter
            broken = torch.from_numpy(self.white_norm[idx.cpu().numpy()] <= eps)
            flag = _flags.not_zero_at_huge_eps(self.model, self.x[idx], self.y[idx],
                                               attack, eps=eps, broken=broken)
            if self.db is not None:
                self.db.put("check:huge-eps", {"flag": flag})
        if flag is not None:
            self.late_flags.append(flag)
            if flag["code"] in _SUSPECT:
                self.suspect = sorted({*self.suspect, str(flag["code"])})
        self.late_s += time.perf_counter() - t0

    # ------------------------------------------------------------------ the cascade
    def _one_level(self) -> bool:
        """Whether the smallest grid eps is the smallest non-zero L∞ norm on the model's grid.

        On a grid of step ``s`` (scalar bounds, ``levels`` set) every L∞ norm is a
        multiple of ``s``: at an eps in ``[s, 2s)`` the ball's only other points are one
        level away, so a sample broken there has minimal norm exactly ``s``.
        """
        levels = self.model.levels
        lo, hi = self.model.bounds
        if self.norm != "linf" or not levels or lo.numel() != 1 or hi.numel() != 1:
            return False
        step = (float(hi.reshape(-1)[0]) - float(lo.reshape(-1)[0])) / (levels - 1)
        e = self.grid[0]
        return step * (1 - 1e-9) <= e < 2 * step * (1 - 1e-9)

    def cascade(self) -> None:
        mins = [p for p in self.plan if p.minimum_norm]
        fixed = [p for p in self.plan if not p.minimum_norm]
        total = len(mins) + len(fixed) * len(self.grid)
        done = 0
        top = self.grid[-1]
        si = 0
        grid = list(self.grid)
        if mins and fixed and self._one_level():
            # The fixed-budget attacks at one grid level first: what they break has its
            # minimal norm (one level), and the minimum-norm attacks skip it.
            done, si = self._fixed_at(grid.pop(0), fixed, si, done, total, white=False)
        for p in mins:
            idx = np.flatnonzero(self.cc & (self.min_norm > self.grid[0])) \
                if len(grid) < len(self.grid) else np.flatnonzero(self.cc)
            before = self.min_norm.copy()
            row = self._stage(si, p, None, idx)
            row["broke"] = int(((before > top) & (self.min_norm <= top))[idx].sum())
            row["robust_after"] = int((self.cc & (self.min_norm > top)).sum())
            self.stages.append(row)
            si += 1
            done += 1
            self.report(done, total, f"{p.name}: minimal norms")
        white = any(p.threat == "white-box" for p in mins)
        for e in grid:
            done, si = self._fixed_at(e, fixed, si, done, total, white=white)

    def _fixed_at(self, e: float, fixed: list[_Planned], si: int, done: int, total: int,
                  *, white: bool) -> tuple[int, int]:
        """The fixed-budget attacks at one eps, in cascade; returns the counters moved on."""
        for p in fixed:
            idx = np.flatnonzero(self.cc & (self.min_norm > e))
            split = self._probe(p, white)
            if split is None:
                row = self._stage(si, p, e, idx)
            else:
                row = self._probed_stage(si, *split, e, idx)
            row["broke"] = int((self.min_norm[idx] <= e).sum())
            row["robust_after"] = int((self.cc & (self.min_norm > e)).sum())
            self.stages.append(row)
            white = white or p.threat == "white-box"
            si += 1
            done += 1
            self.report(done, total, f"{p.name} at eps {e:.4g}")
        return done, si

    def _probe(self, p: _Planned, after_white: bool) -> tuple[_Planned, _Planned] | None:
        """A stage's probe and the rest of it, or None when it runs whole.

        A black-box attack after a white-box one probes with ``probe_queries``
        per sample, the rest being a fresh run with the budget left; APGD-T
        probes with its ``probe_targets`` likeliest classes, the rest being the
        other classes (``skip_targets``).
        """
        a: Any = p.attack
        from hoodwink.attacks.apgd import APGD

        k = min(a.target_classes, int(self.model.num_classes) - 1) \
            if isinstance(a, APGD) else 0
        if isinstance(a, APGD) and self.probe_targets is not None \
                and k > self.probe_targets and a.skip_targets == 0:
            # The probe gives its few classes one more random start than the attack's own:
            # on the bundled MNIST ConvNet a second start found digits a first one missed
            # (docs/evaluate.md), and 3 classes x 2 starts still cost 6 runs, not 9.
            probe = dataclasses.replace(a, target_classes=self.probe_targets,
                                        restarts=a.restarts + 1)
            return (_Planned(p.name, probe),
                    _Planned(p.name, dataclasses.replace(a, skip_targets=self.probe_targets)))
        if p.threat == "white-box" or not after_white or self.probe_queries is None:
            return None
        full = getattr(a, "max_queries", None)
        if not isinstance(full, int) or full < self.probe_queries + 2:
            return None
        # The rest is a fresh run (its own seed) with what the probe left of the budget, so
        # that no sample ever costs more than the attack's max_queries.
        return (_Planned(p.name, dataclasses.replace(a, max_queries=self.probe_queries)),
                _Planned(p.name, dataclasses.replace(a, max_queries=full - self.probe_queries)))

    def _probed_stage(self, si: int, probe: _Planned, rest: _Planned, eps: float,
                      idx: np.ndarray) -> dict[str, Any]:
        """A stage run as a probe, going on to the rest of it on evidence."""
        row = self._stage(si, probe, eps, idx, tag="probe")
        broke = int((self.min_norm[idx] <= eps).sum())
        self.late_checks()
        why = list(self.suspect)
        if broke and probe.threat != "white-box":
            # A black-box probe that beats every white-box attack is evidence of masking; a
            # white-box probe breaking samples is what it is for, and says nothing of it.
            why.append(f"the probe broke {broke}")
        row["probe"] = {"attack": repr(probe.attack), "broke": broke,
                        "went_on": bool(why), "why": why}
        if why:
            left = np.flatnonzero(self.cc & (self.min_norm > eps))
            more = self._stage(si, rest, eps, left)
            row["time_s"] += more["time_s"]
            row["queries"] += more["queries"]
        return row

    def _stage(self, si: int, p: _Planned, eps: float | None,
               idx: np.ndarray, tag: str = "") -> dict[str, Any]:
        time_s = 0.0
        queries = 0
        for b, start in enumerate(range(0, len(idx), self.batch)):
            rows = [int(i) for i in idx[start:start + self.batch]]
            key = f"s{si}|{p.name}{'-' + tag if tag else ''}|" \
                  f"{'min' if eps is None else repr(float(eps))}|b{b}"
            unit = self.db.unit(key) if self.db is not None else None
            if unit is not None:
                if unit.indices != rows:
                    raise ConfigError(
                        f"The run store holds unit {key} for other samples than this run "
                        "attacks; it was written by another version of hoodwink or edited. "
                        "Pass a new store path, or delete the file."
                    )
                _log.info("unit %s read back from the store", key)
            else:
                unit = self._compute(key, p, eps, b, rows)
            # Only a fixed-budget white-box success shows that such an attack works on the
            # sample; a minimum-norm one (FMN) can succeed where APGD is masked.
            self._apply(unit, p.name, eps,
                        white=p.threat == "white-box" and not p.minimum_norm)
            time_s += unit.time_s
            queries += sum(unit.queries)
        return {"name": p.name, "eps": eps, "attacked": len(idx), "broke": 0,
                "robust_after": 0, "time_s": time_s, "queries": int(queries),
                "threat": p.threat}

    def _compute(self, key: str, p: _Planned, eps: float | None, b: int,
                 rows: list[int]) -> Unit:
        useed = _unit_seed(self.seed, key)
        attack = dataclasses.replace(p.attack, seed=useed)
        sel = torch.tensor(rows, dtype=torch.int64, device=self.x.device)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # Minimum-norm attacks get the box's diameter on purpose, to report raw norms.
            warnings.simplefilter("ignore", EpsScaleWarning)
            res = attack(self.model, self.x[sel], self.y[sel],
                         eps=self.diameter if eps is None else eps)
        elapsed = time.perf_counter() - t0
        self.seq += 1
        self.computed += 1
        norms = res.perturbation_norm.detach().cpu().double().tolist()
        unit = Unit(key=key, seq=self.seq, attack=p.name, eps=eps, batch=b, seed=useed,
                    indices=rows, success=[bool(s) for s in res.success.cpu().tolist()],
                    norm=[float(v) if math.isfinite(v) else 0.0 for v in norms],
                    pred_adv=[int(v) for v in res.pred_adv.cpu().tolist()],
                    queries=[int(v) for v in res.queries.cpu().tolist()],
                    x_adv=res.x_adv.detach().to("cpu", torch.float32), time_s=elapsed)
        if self.db is not None:
            self.db.add(unit)
        _log.info("unit %s: %d of %d broken in %.2f s", key, sum(unit.success), len(rows),
                  elapsed)
        return unit

    def _apply(self, unit: Unit, name: str, eps: float | None, *, white: bool) -> None:
        # The stored float32 x_adv either way: a resumed run holds the same values.
        x_adv = unit.x_adv.to(device=self.x.device, dtype=self.x.dtype)
        for j, i in enumerate(unit.indices):
            self.queries[i] += unit.queries[j]
            if not unit.success[j]:
                continue
            nrm = float(unit.norm[j])
            if eps is not None:
                # Broken at eps: a norm above eps by float rounding still counts at eps.
                nrm = min(nrm, float(eps))
            if white:
                self.white_norm[i] = min(self.white_norm[i], nrm)
            if nrm < self.min_norm[i]:
                self.min_norm[i] = nrm
                self.best_x[i] = x_adv[j]
                self.pred_adv[i] = int(unit.pred_adv[j])
                self.broken_by[i] = name

    # ------------------------------------------------------------------ the record
    def robust_at(self, e: float) -> int:
        return int((self.cc & (self.min_norm > e)).sum())

    def record(self, *, model_name: str | None, data_name: str | None, max_queries: int,
               probes: dict[str, int | None], checks: bool, flags: list[dict[str, Any]],
               examples: int, config_fp: dict[str, Any], timings: dict[str, float]) -> Evaluation:
        from hoodwink import __version__
        from hoodwink.attacks.result import environment
        from hoodwink.stats import wilson

        n = int(self.x.shape[0])
        n_cc = int(self.cc.sum())
        lo, hi = self.model.bounds
        scalar = lo.numel() == 1 and hi.numel() == 1
        module = getattr(self.model, "module", None)
        names = getattr(self.model, "class_names", None)
        model_rec = {
            "name": model_name or (type(module).__name__ if module is not None
                                   else type(self.model).__name__),
            "num_classes": int(self.model.num_classes),
            "input_shape": [int(d) for d in self.x.shape[1:]],
            "bounds": [float(lo.reshape(-1)[0]), float(hi.reshape(-1)[0])] if scalar else None,
            "levels": self.model.levels,
            "output": self.model.capabilities.output,
            "class_names": list(names) if names is not None else None,
        }
        robust_rows = []
        for e in self.grid:
            k = self.robust_at(e)
            lo_ci, hi_ci = wilson(k, n)
            robust_rows.append({"eps": e, "robust": k, "robust_accuracy": k / n,
                                "ci95": [lo_ci, hi_ci]})
        finite = self.min_norm[self.cc & np.isfinite(self.min_norm)]
        mns = np.sort(self.min_norm[self.cc])
        points = sorted({0.0, *(float(v) for v in finite), *self.grid})
        curve = [{"eps": e, "robust_accuracy":
                  int(n_cc - np.searchsorted(mns, e, side="right")) / n} for e in points]
        samples = []
        y = self.y.cpu().tolist()
        for i in range(n):
            cc = bool(self.cc[i])
            mn = self.min_norm[i]
            samples.append({
                "index": i, "label": int(y[i]), "pred_clean": int(self.pred_clean[i]),
                "clean_correct": cc,
                "min_norm": (float(mn) if math.isfinite(mn) else None) if cc else 0.0,
                "broken_by": self.broken_by[i] if cc else None,
                "pred_adv": self.pred_adv[i] if cc else int(self.pred_clean[i]),
                "robust": [bool(cc and mn > e) for e in self.grid],
                "queries": int(self.queries[i]),
            })
        broken = [i for i in range(n) if self.cc[i] and math.isfinite(self.min_norm[i])]
        robust = [i for i in range(n) if self.cc[i] and not math.isfinite(self.min_norm[i])]
        wrong = [i for i in range(n) if not self.cc[i]]
        chosen = sorted((broken + robust + wrong)[:examples])
        sel = torch.tensor(chosen, dtype=torch.int64, device=self.x.device)
        x_ex = self.x[sel].detach().to("cpu", copy=True)
        adv_ex = self.best_x[sel].detach().to("cpu", copy=True)
        config = {
            "norm": self.norm, "eps": list(self.grid),
            "attacks": [{"name": p.name, "repr": repr(p.attack), "threat": p.threat,
                         "minimum_norm": p.minimum_norm} for p in self.plan],
            "seed": self.seed, "batch_size": self.batch, "max_queries": max_queries,
            **probes,
            "checks": checks,
        }
        return Evaluation(
            created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            hoodwink_version=__version__,
            environment=environment(),
            model=model_rec,
            data={"name": data_name or "data", "n": n, "fingerprint": config_fp["data"]},
            config=config,
            totals={"n": n, "clean_correct": n_cc, "clean_accuracy": n_cc / n,
                    "robust": robust_rows,
                    "median_min_norm": float(np.median(finite)) if finite.size else None,
                    "time_s": timings["total_s"]},
            curve=curve,
            attacks=self.stages,
            flags=flags,
            samples=samples,
            examples=chosen,
            timings=timings,
            x_examples=x_ex,
            x_adv_examples=adv_ex,
        )
