"""The forests study: are non-differentiable models safe from black-box attacks?

The essay behind hoodwink says that adversarial examples can be made from a
model's scores alone ("computing the gradient numerically or by local
stochastic search"), so that random forests and other non-differentiable
models are not safe either, and that nobody had confirmed this empirically.
:func:`forests_study` measures it: it trains a random forest, gradient-boosted
trees, an RBF SVM, k-nearest neighbours and a logistic regression on three
datasets (:mod:`hoodwink.studies.forests.models`), adds the bundled MNIST
ConvNet, and attacks each with every black-box attack of the registry, in
L∞ and L2, at query budgets of 100, 1,000 and 10,000 per input.

Definitions
-----------
Pool:
    per dataset, the first test inputs (in the fixed shuffled order of the
    split) that *every* model of the dataset classifies correctly; each model
    is attacked on the first ``n`` of them, so all its attacks, and models
    with the same ``n``, are compared on the same inputs.
Success within budget B:
    the attack's result is misclassified, lies within eps of the input
    (checked again here, so a minimum-norm attack that stopped above eps does
    not count), *and* the attack spent at most B queries on that input
    (clean pass and final verification included, as
    :attr:`~hoodwink.AttackResult.queries` counts them). One run per cell at
    the largest budget gives every point of the success-against-budget curve:
    the attacks stop at their first success, and their schedules do not
    depend on the budget ("anytime"), so a run with budget B is the first B
    queries of the longer run. The study does not take that on trust: it also
    runs each cell directly at the smaller ``check_budgets`` and records how
    many inputs agree.
Minimum-norm attacks (HopSkipJump, BoundaryWalk):
    run with ``stop_at_eps=True``, i.e. they stop at the first adversarial
    point within eps, which makes them fixed-budget attacks for this purpose.
Rates:
    ``k / n`` over the ``n`` attacked inputs, each with its Wilson 95%
    interval (:func:`hoodwink.stats.wilson`); the median perturbation norm is
    over the successes within the budget.
Why attacks fail:
    for every model, the record's ``probes`` count, over one gradient
    estimate of each estimator (NES, FD) at every clean input the model is
    attacked on, with the attack's own sigma and number of probes, the
    inputs where every probe pair returned identical scores, so that the
    estimate is exactly zero. For
    score attacks on piecewise-constant models (forest, boosted trees, k-NN)
    every query the attack makes is also watched: ``unchanged`` counts the
    inputs whose scores never differed from the clean scores in any query.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from hoodwink._validation import check_int, check_seed
from hoodwink.errors import ConfigError, HoodwinkError
from hoodwink.models.base import Classifier, ScoreClassifier
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.stats import wilson
from hoodwink.studies._record import check_record
from hoodwink.studies.forests.models import (
    DATASETS,
    MODELS,
    StudyData,
    TrainedModel,
    common_pool,
    load_data,
    train_model,
)

__all__ = [
    "ATTACKS",
    "DEFINITIONS",
    "PROFILES",
    "SCHEMA",
    "DatasetPlan",
    "Profile",
    "forests_study",
    "run",
]

_log = logging.getLogger(__name__)

SCHEMA = "hoodwink.forests/1"

#: Every black-box attack of the study, by registry name, in report order.
ATTACKS: tuple[str, ...] = (
    "nes", "fd", "simba", "simba-dct", "square", "local-search", "hopskipjump",
    "boundary-walk", "substitute",
)
#: The white-box reference, run on the differentiable model (the CNN) only.
WHITE_BOX = "pgd"
#: What each attack needs, for cells whose class cannot be imported.
_THREATS = {"nes": "scores", "fd": "scores", "simba": "scores", "simba-dct": "scores",
            "square": "scores", "local-search": "scores", "hopskipjump": "labels",
            "boundary-walk": "labels", "substitute": "labels", "pgd": "white-box"}
#: Step of the estimated-gradient attacks' inner PGD, as a fraction of eps (fixed, so
#: that a run is "anytime": its steps do not depend on the budget).
_NES_STEP = 0.25
#: Tolerance of the "within eps" check of a result.
_EPS_TOL = 1e-5

DEFINITIONS: dict[str, str] = {
    "pool": (
        "Each dataset's pool is the first test inputs (in the split's fixed shuffled order) "
        "that every model of the dataset classifies correctly; each model is attacked on the "
        "first n of them."
    ),
    "success": (
        "An attack succeeds on an input within budget B when its result is misclassified, "
        "lies within eps of the input, and it spent at most B queries on that input (clean "
        "pass and verification included)."
    ),
    "anytime": (
        "One run per cell at the largest budget gives the whole success-against-budget "
        "curve: the attacks stop at their first success and their schedules do not depend "
        "on the budget, so a run with budget B is the first B queries of the longer run. "
        "Each cell is also run directly at the check budgets, and the record says how many "
        "inputs agree."
    ),
    "minimum-norm": (
        "HopSkipJump and BoundaryWalk look for the smallest perturbation; here they run with "
        "stop_at_eps=True, stopping at the first adversarial point within eps."
    ),
    "zero-gradient": (
        "Probes: one gradient estimate per clean input with the attack's own sigma and "
        "number of probes; the estimate is exactly zero when every probe pair returned "
        "identical scores. Unchanged: inputs whose scores never differed from the clean "
        "scores in any query the attack made (watched on piecewise-constant models)."
    ),
}


@dataclass(frozen=True)
class DatasetPlan:
    """What the study runs on one dataset.

    Attributes
    ----------
    eps : dict of str to tuple of float
        Budgets per norm (``"linf"``, ``"l2"``), in the dataset's units.
    n : dict of str to int
        Inputs attacked per model; a model missing here is not run.
    train_limit : dict of str to int
        Training samples per model, where fewer than all are used.
    """

    eps: Mapping[str, tuple[float, ...]]
    n: Mapping[str, int]
    train_limit: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"eps": {k: list(v) for k, v in self.eps.items()}, "n": dict(self.n),
                "train_limit": dict(self.train_limit)}


@dataclass(frozen=True)
class Profile:
    """A configuration of the whole study.

    Attributes
    ----------
    name : str
    datasets : dict of str to DatasetPlan
    budgets : tuple of int
        Query budgets per input, increasing; the last is the one each cell runs.
    check_budgets : tuple of int
        Budgets at which each cell is also run directly, to check the anytime
        assumption.
    norm_budgets : dict of str to int
        The largest budget of a norm, where it is below the last of
        ``budgets`` (the full profile runs L2 to 1,000 queries only: see
        docs/forests.md, "Cost").
    attacks : tuple of str
        Black-box attacks (registry names); ``"pgd"`` is added on the CNN.
    trees : int
        Trees of the random forest.
    boosting_rounds : int
        Boosting iterations of the gradient-boosted trees (one tree per class each).
    nes_samples : int
        Probes per gradient estimate of NES and FD.
    pgd_steps : int
        Steps of the white-box PGD reference.
    substitute_rounds : int
        Jacobian augmentation rounds of the substitute attack: ``2**rounds``
        labels per input, whatever the budget (Papernot et al. use up to 6).
    """

    name: str
    datasets: Mapping[str, DatasetPlan]
    budgets: tuple[int, ...]
    check_budgets: tuple[int, ...]
    norm_budgets: Mapping[str, int] = field(default_factory=dict)
    attacks: tuple[str, ...] = ATTACKS
    trees: int = 100
    boosting_rounds: int = 100
    nes_samples: int = 50
    pgd_steps: int = 40
    substitute_rounds: int = 6

    def budgets_for(self, norm: str) -> tuple[int, ...]:
        """The budgets of the cells in ``norm``: ``budgets`` up to the norm's cap."""
        cap = self.norm_budgets.get(norm)
        return tuple(b for b in self.budgets if cap is None or b <= cap)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "name": self.name,
            "datasets": {k: v.to_dict() for k, v in self.datasets.items()},
            "budgets": list(self.budgets), "check_budgets": list(self.check_budgets),
            "norm_budgets": {n: list(self.budgets_for(n)) for n in ("linf", "l2")},
            "attacks": list(self.attacks), "trees": self.trees,
            "boosting_rounds": self.boosting_rounds, "nes_samples": self.nes_samples,
            "pgd_steps": self.pgd_steps, "substitute_rounds": self.substitute_rounds,
        }


_SK = ("forest", "boosting", "svm", "knn", "logistic")

#: The profiles :func:`run` knows: ``"full"`` writes the committed record, ``"quick"``
#: is for tests and a first look (budget 100 only, a few inputs).
PROFILES: dict[str, Profile] = {
    "full": Profile(
        name="full",
        datasets={
            "digits8": DatasetPlan(
                eps={"linf": (2.0,), "l2": (4.0,)},
                n={"forest": 50, "boosting": 50, "svm": 20, "knn": 20, "logistic": 50},
            ),
            "mnist": DatasetPlan(
                eps={"linf": (0.1,), "l2": (1.0,)},
                n={"forest": 30, "boosting": 30, "svm": 10, "knn": 10, "logistic": 30,
                   "cnn": 15},
                train_limit={"svm": 1000, "knn": 1000, "boosting": 2000},
            ),
            "breast-cancer": DatasetPlan(
                eps={"linf": (0.1,), "l2": (0.2,)},
                n={"forest": 50, "boosting": 50, "svm": 30, "knn": 30, "logistic": 50},
            ),
        },
        budgets=(100, 1000, 10_000),
        check_budgets=(100,),
        norm_budgets={"l2": 1000},
        trees=25,
        boosting_rounds=20,
    ),
    "quick": Profile(
        name="quick",
        datasets={
            "digits8": DatasetPlan(eps={"linf": (4.0,), "l2": (8.0,)},
                                   n={"forest": 4, "knn": 4, "logistic": 4}),
        },
        budgets=(100,),
        check_budgets=(),
        trees=10,
        boosting_rounds=10,
        nes_samples=20,
        pgd_steps=10,
        substitute_rounds=3,
    ),
}


# ---------------------------------------------------------------------- watching queries
class _ScoreWatch:
    """A view of a score model that notes, per attacked input, whether its scores ever changed.

    Every scores query is attributed to the nearest clean input (an attack's
    queries stay within eps, plus the probe distance, of their own input) and
    compared with that input's clean scores. The clean scores are the study's
    own look at the model, outside the attack's budget.
    """

    def __init__(self, model: Classifier, x0: torch.Tensor) -> None:
        self._model = model
        self._x0 = x0.reshape(x0.shape[0], -1).float()
        self._s0 = self._scores(x0)
        self.changed = torch.zeros(x0.shape[0], dtype=torch.bool)
        self.queries = 0
        self.flat = 0
        self.label_queries = 0

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return cast(ScoreClassifier, self._model).scores(x)

    @property
    def capabilities(self) -> Any:
        return self._model.capabilities

    @property
    def num_classes(self) -> int:
        return self._model.num_classes

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._model.bounds

    @property
    def levels(self) -> int | None:
        return self._model.levels

    def __getattr__(self, name: str) -> Any:
        # Anything else (device, input_shape, batch_size, ...) is the model's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.label_queries += int(x.shape[0])
        return self._model.predict(x)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        s = self._scores(x)
        if x.shape[0] > 0:
            flat = x.detach().reshape(x.shape[0], -1).float().cpu()
            idx = torch.cdist(flat, self._x0).argmin(dim=1)
            same = (s.detach().cpu() == self._s0[idx]).all(dim=1)
            self.changed[idx[~same]] = True
            self.queries += int(x.shape[0])
            self.flat += int(same.sum())
        return s


# ---------------------------------------------------------------------- probes
def _sigma(data: StudyData, model: Classifier) -> float:
    """EstimatedGradient's default probe distance: 0.001, or one grid step when larger."""
    if model.levels is None:
        return 1e-3
    return max(1e-3, (data.bounds[1] - data.bounds[0]) / (model.levels - 1))


def _probe(data: StudyData, tm: TrainedModel, x: torch.Tensor, samples: int,
           seed: int) -> list[dict[str, Any]]:
    """One gradient estimate per input and estimator: how often is it exactly zero?"""
    model = tm.classifier
    scores = getattr(model, "scores", None)
    if scores is None:  # pragma: no cover - every model of the study has scores
        return []
    lo, hi = data.bounds
    sigma = _sigma(data, model)
    d = int(x[0].numel())
    out = []
    for est in ("nes", "fd"):
        gen = torch.Generator().manual_seed(seed)
        pairs = samples // 2 if est == "nes" else min(samples // 2, d)
        n = x.shape[0]
        shape1 = tuple(x.shape[1:])
        if est == "nes":
            delta = sigma * torch.randn((n, pairs) + shape1, generator=gen)
        else:
            coords = torch.rand((n, d), generator=gen).topk(pairs, dim=1).indices
            onehot = torch.zeros((n, pairs, d))
            onehot.scatter_(2, coords[:, :, None], 1.0)
            delta = sigma * onehot.reshape((n, pairs) + shape1)
        xs = x[:, None].to(delta.dtype)
        plus = (xs + delta).clamp(lo, hi).reshape((n * pairs,) + shape1)
        minus = (xs - delta).clamp(lo, hi).reshape((n * pairs,) + shape1)
        with torch.no_grad():
            s0 = scores(x).detach().cpu()
            sp = scores(plus).detach().cpu().reshape(n, pairs, -1)
            sm = scores(minus).detach().cpu().reshape(n, pairs, -1)
        zero = (sp == sm).all(dim=2).all(dim=1)
        flat = ((sp == s0[:, None]).all(dim=2) & (sm == s0[:, None]).all(dim=2)).all(dim=1)
        pair_same = (sp == sm).all(dim=2)
        out.append({
            "dataset": data.name, "model": tm.name, "estimator": est, "sigma": sigma,
            "pairs": pairs, "n": int(n), "zero_estimates": int(zero.sum()),
            "flat_estimates": int(flat.sum()),
            "identical_pairs": int(pair_same.sum()), "pairs_total": int(pair_same.numel()),
        })
    return out


# ---------------------------------------------------------------------- attacks
def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _simba_step(data: StudyData, basis: str, norm: str, eps: float) -> float:
    """SimBA's step for one cell, scaled to the data (the paper's 0.2 is for pixels in [0, 1]).

    Pixel basis: the whole budget per feature in L∞ (``eps``), else 0.2 of the range
    (at most eps). DCT basis: 0.2 of the range, but at least sqrt(H * W) grid steps,
    so that a step spread over a whole image is not rounded away by the grid.
    """
    span = data.bounds[1] - data.bounds[0]
    if basis == "pixel":
        return eps if norm == "linf" else min(eps, 0.2 * span)
    step = 0.2 * span
    if data.levels is not None:
        pixels = math.prod(data.shape[1:])
        step = max(step, math.sqrt(pixels) * span / (data.levels - 1))
    return step


def _make_attack(name: str, norm: str, eps: float, budget: int, seed: int,
                 profile: Profile, data: StudyData) -> Any:
    """The attack ``name`` for one cell; raises HoodwinkError (or ImportError) when it cannot."""
    from hoodwink.attacks import registry
    from hoodwink.attacks.pgd import PGD

    if name == WHITE_BOX:
        return PGD(norm=norm, steps=profile.pgd_steps, seed=seed)  # type: ignore[arg-type]
    info = registry.get(name)
    cls = info.cls
    if norm not in info.norms:
        raise ConfigError(f"{name} does not support norm {norm!r} (it has "
                          f"{', '.join(info.norms)}).")
    params: dict[str, Any] = {"norm": norm, "max_queries": budget, "seed": seed}
    fields = _field_names(cls)
    if name in ("nes", "fd"):
        per = profile.nes_samples + 1
        steps = max(1, (max(profile.budgets) - 3) // per)
        # The step is given, so it does not depend on the budget: the run is anytime.
        params["attack"] = PGD(norm=norm, steps=steps, stepsize=_NES_STEP * eps,  # type: ignore[arg-type]
                               random_start=False, loss="margin")
        params["samples"] = profile.nes_samples
    if name == "substitute":
        params["rounds"] = profile.substitute_rounds
    if name in ("simba", "simba-dct"):
        params["step"] = _simba_step(data, "dct" if name == "simba-dct" else "pixel", norm, eps)
    if "stop_at_eps" in fields:
        params["stop_at_eps"] = True
    if "schedule_queries" in fields:
        # Square's schedule laid out for 10,000 queries, not the budget: the run is anytime.
        params["schedule_queries"] = 10_000
    return registry.make(name, **params)


def _threat(name: str) -> str:
    if name == WHITE_BOX:
        return "white-box"
    try:
        from hoodwink.attacks import registry

        return registry.get(name).threat
    except (ImportError, AttributeError, HoodwinkError):
        return _THREATS.get(name, "scores")


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _rates(success: torch.Tensor, queries: torch.Tensor, norm: torch.Tensor,
           budgets: Sequence[int]) -> list[dict[str, Any]]:
    n = int(success.numel())
    out = []
    for b in budgets:
        hit = success & (queries <= b)
        k = int(hit.sum())
        lo, hi = wilson(k, n) if n else (0.0, 1.0)
        out.append({
            "budget": int(b), "k": k, "n": n, "rate": k / n if n else None,
            "ci": [lo, hi],
            "median_norm": _median([round(float(v), 6) for v in norm[hit].tolist()]),
            "median_queries": _median([float(v) for v in queries[hit].tolist()]),
        })
    return out


def _within(res: Any, eps: float) -> torch.Tensor:
    """Successes that also lie within eps (a minimum-norm attack may stop above it)."""
    tol = _EPS_TOL * max(1.0, eps)
    return cast(torch.Tensor, (res.success & (res.perturbation_norm <= eps + tol)).cpu())


def _cell(
    data: StudyData,
    tm: TrainedModel,
    attack: str,
    norm: str,
    eps: float,
    x: torch.Tensor,
    y: torch.Tensor,
    profile: Profile,
    seed: int,
    per_sample: bool,
) -> dict[str, Any]:
    budgets = profile.budgets_for(norm)
    budget = max(budgets)
    cell: dict[str, Any] = {
        "dataset": data.name, "model": tm.name, "attack": attack, "threat": _threat(attack),
        "norm": norm, "eps": eps, "max_queries": budget, "n": int(x.shape[0]),
        "status": "ok", "reason": None,
    }
    try:
        atk = _make_attack(attack, norm, eps, budget, seed, profile, data)
    except (ImportError, AttributeError) as exc:
        cell.update(status="missing", reason=f"not available in this hoodwink ({exc})")
        return cell
    except HoodwinkError as exc:
        cell.update(status="skipped", reason=str(exc))
        return cell
    watch = (_ScoreWatch(tm.classifier, x)
             if tm.piecewise_constant and cell["threat"] == "scores" else None)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        res = atk(watch if watch is not None else tm.classifier, x, y, eps=eps)
    except HoodwinkError as exc:
        cell.update(status="skipped", reason=f"{type(exc).__name__}: {exc}",
                    time_s=round(time.perf_counter() - t0, 3))
        return cell
    cell["time_s"] = round(time.perf_counter() - t0, 3)
    cell["cpu_s"] = round(time.process_time() - c0, 3)
    cell["attack_repr"] = repr(atk)
    success = _within(res, eps)
    queries = res.queries.cpu()
    pnorm = res.perturbation_norm.detach().cpu().double()
    cell["rates"] = _rates(success, queries, pnorm, budgets)
    cell["queries_max"] = int(queries.max())
    cell["queries_total"] = int(queries.sum())
    if watch is not None:
        cell["unchanged"] = int((~watch.changed).sum())
        cell["flat_queries"] = [watch.flat, watch.queries]
    checks = []
    t1 = time.perf_counter()
    for b in profile.check_budgets:
        if b >= budget:
            continue
        try:
            small = _make_attack(attack, norm, eps, b, seed, profile, data)
            r = small(tm.classifier, x, y, eps=eps)
        except HoodwinkError as exc:
            checks.append({"budget": int(b), "error": f"{type(exc).__name__}: {exc}"})
            continue
        direct = _within(r, eps)
        derived = success & (queries <= b)
        checks.append({"budget": int(b), "k": int(direct.sum()), "n": int(direct.numel()),
                       "derived_k": int(derived.sum()),
                       "agree": int((direct == derived).sum())})
    cell["checks"] = checks
    cell["check_time_s"] = round(time.perf_counter() - t1, 3)
    if per_sample:
        cell["samples"] = {
            "success": success.tolist(), "queries": queries.tolist(),
            "norm": [round(float(v), 6) for v in pnorm.tolist()],
        }
    return cell


# ---------------------------------------------------------------------- the study
def _check_subset(name: str, values: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    if values is None:
        return list(known)
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        key = v.strip().lower() if isinstance(v, str) else v
        if key not in known:
            raise ConfigError(
                f"Unknown value {v!r} in the '{name}' parameter of forests.run; choose from "
                f"{', '.join(known)}."
            )
        out.append(key)
    if not out:
        raise ConfigError(f"The '{name}' parameter of forests.run must name at least one of "
                          f"{', '.join(known)}.")
    return out


def _resolve(profile: str | Profile, datasets: Sequence[str] | None,
             models: Sequence[str] | None, attacks: Sequence[str] | None,
             n: int | None) -> Profile:
    if isinstance(profile, str):
        key = profile.strip().lower()
        if key not in PROFILES:
            raise ConfigError(
                f"The 'profile' parameter of forests.run must be one of "
                f"{', '.join(PROFILES)}. Got {profile!r}."
            )
        prof = PROFILES[key]
    elif isinstance(profile, Profile):
        prof = profile
    else:
        raise ConfigError(
            f"The 'profile' parameter of forests.run must be a profile name "
            f"({', '.join(PROFILES)}) or a Profile. Got {profile!r}."
        )
    ds = _check_subset("datasets", datasets, DATASETS)
    ms = _check_subset("models", models, MODELS)
    atk = _check_subset("attacks", attacks, ATTACKS) if attacks is not None else list(
        prof.attacks)
    n_all = check_int("forests.run", "n", n, low=1, allow_none=True)
    plans = {}
    for name, plan in prof.datasets.items():
        if name not in ds:
            continue
        counts = {m: (n_all if n_all is not None else k) for m, k in plan.n.items() if m in ms}
        if counts:
            plans[name] = dataclasses.replace(plan, n=counts)
    if not plans:
        raise ConfigError(
            f"Nothing to run: the profile {prof.name!r} has no model of {', '.join(ms)} on "
            f"{', '.join(ds)}. Its datasets: {', '.join(prof.datasets)}."
        )
    return dataclasses.replace(prof, datasets=plans, attacks=tuple(atk))


def _attacks_for(profile: Profile, data: StudyData, tm: TrainedModel) -> list[str]:
    out = [a for a in profile.attacks if data.image or a != "simba-dct"]
    if tm.name == "cnn":
        out.append(WHITE_BOX)
    return out


def forests_study(
    profile: str | Profile = "full",
    *,
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    attacks: Sequence[str] | None = None,
    n: int | None = None,
    seed: int = 0,
    per_sample: bool = True,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Attack non-differentiable and differentiable models with every black-box attack.

    Parameters
    ----------
    profile : {"full", "quick"} or Profile, default "full"
        What to run (:data:`PROFILES`): ``"full"`` is the committed record
        (three datasets, one eps per norm, query budgets 100, 1,000 and
        10,000 in L∞ and up to 1,000 in L2), ``"quick"`` a few inputs of the
        8x8 digits at budget 100.
    datasets : list of str, optional
        Run only these of the profile's datasets.
    models : list of str, optional
        Run only these models ("forest", "boosting", "svm", "knn", "logistic",
        "cnn").
    attacks : list of str, optional
        Run only these black-box attacks (registry names of :data:`ATTACKS`).
    n : int >= 1, optional
        Inputs per model, replacing the profile's counts.
    seed : int >= 0, default 0
        Seeds the models' training, the attacks and the probes.
    per_sample : bool, default True
        Keep per-input success, queries and norms in each cell.
    progress : callable, optional
        ``progress(done, total, message)`` after each model is trained and each
        cell is attacked.

    Returns
    -------
    dict
        The record (schema :data:`SCHEMA`): plain data only, see the module
        docstring for every definition.

    Raises
    ------
    ConfigError
        An unknown profile, dataset, model or attack, or an invalid ``n`` or seed.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    report = as_callback(progress)
    seed = check_seed("forests.run", "seed", seed)
    if not isinstance(per_sample, bool):
        raise ConfigError(f"The 'per_sample' parameter of forests.run must be True or False. "
                          f"Got {per_sample!r}.")
    prof = _resolve(profile, datasets, models, attacks, n)
    work: list[tuple[str, str, list[tuple[str, str, float]]]] = []
    loaded: dict[str, StudyData] = {}
    for dname, plan in prof.datasets.items():
        loaded[dname] = load_data(dname)
        for mname in plan.n:
            if mname == "cnn" and dname != "mnist":
                continue
            cells = [(a, norm, float(e))
                     for a in prof.attacks + ((WHITE_BOX,) if mname == "cnn" else ())
                     if loaded[dname].image or a != "simba-dct"
                     for norm, es in plan.eps.items() for e in es]
            work.append((dname, mname, cells))
    total = sum(1 + len(c) for _, _, c in work)
    done = 0
    report(0, total, "loading data")
    dataset_out: list[dict[str, Any]] = []
    model_out: list[dict[str, Any]] = []
    cells_out: list[dict[str, Any]] = []
    probes_out: list[dict[str, Any]] = []
    by_dataset: dict[str, list[TrainedModel]] = {}
    options = {"trees": prof.trees, "boosting_rounds": prof.boosting_rounds}
    for dname, mname, _ in work:
        plan = prof.datasets[dname]
        tm = train_model(loaded[dname], mname, seed=seed,
                         train_limit=plan.train_limit.get(mname), options=options)
        by_dataset.setdefault(dname, []).append(tm)
        done += 1
        report(done, total, f"trained {mname} on {dname}")
    for dname, plan in prof.datasets.items():
        data = loaded[dname]
        trained = by_dataset.get(dname, [])
        if not trained:
            continue
        pool = common_pool(trained, max(plan.n[m.name] for m in trained))
        info = data.summary()
        info["pool"] = int(pool.numel())
        info["eps"] = {k: list(v) for k, v in plan.eps.items()}
        dataset_out.append(info)
        for tm in trained:
            k = min(plan.n[tm.name], int(pool.numel()))
            idx = pool[:k]
            x, y = data.x_test[idx], data.y_test[idx]
            summary = tm.summary()
            summary["n_attacked"] = k
            t_model = time.perf_counter()
            probes_out.extend(_probe(data, tm, x, prof.nes_samples, seed))
            cells = next(c for d, m, c in work if d == dname and m == tm.name)
            for attack, norm, eps in cells:
                what = f"{attack} {norm} eps={eps:g} on {tm.name} ({dname})"
                _log.info("forests: %s", what)
                cells_out.append(_cell(data, tm, attack, norm, eps, x, y, prof, seed,
                                       per_sample))
                done += 1
                report(done, total, what)
            summary["attack_s"] = round(time.perf_counter() - t_model, 3)
            model_out.append(summary)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "profile": prof.name,
        "config": {**prof.to_dict(), "seed": seed, "nes_step": _NES_STEP,
                   "per_sample": per_sample},
        "definitions": dict(DEFINITIONS),
        "datasets": dataset_out,
        "models": model_out,
        "probes": probes_out,
        "cells": cells_out,
        "notes": [
            "White-box PGD runs on the ConvNet only: the scikit-learn models give no input "
            "gradients (PGD on the logistic regression would need its weights in torch; it "
            "is skipped).",
            "SimBA's DCT basis runs on image data only (the 8x8 digits and MNIST).",
        ],
        "time_s": round(time.perf_counter() - t_start, 3),
        # CPU time of this process: what one core spent, whatever else the machine ran.
        "cpu_s": round(time.process_time() - cpu_start, 3),
    }
    from hoodwink.studies.forests.report import verdict

    record["verdict"] = verdict(record)
    return record


def run(
    profile: str | Profile = "full",
    *,
    progress: ProgressCallback | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Run :func:`forests_study` and return its record (checked to be plain JSON data).

    Parameters
    ----------
    profile : {"full", "quick"} or Profile, default "full"
    progress : callable, optional
    **params
        Any keyword of :func:`forests_study`: datasets, models, attacks, n,
        seed, per_sample.

    Returns
    -------
    dict
        ``json.loads(json.dumps(record)) == record``; :func:`report` renders it.
    """
    record = forests_study(profile, progress=progress, **params)
    return check_record(record, "forests.run")
