"""Generators for the black-box attacks: construction with generated parameter values, and
generated calls on small Torch, scikit-learn and callable models that count every row.

Guarantees checked on top of :func:`fuzz._gen_attacks.check_attack_result` (bounds, eps-ball,
grid, dtype, success from a fresh prediction): ``queries.max() <= max_queries``, ``queries``
adds up to exactly the rows the model saw, no :class:`~hoodwink.errors.StochasticModelWarning`
on a deterministic model (the attack returned a point it never queried), and a score attack
on a label-only model is a :class:`~hoodwink.errors.CapabilityError`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from hoodwink import (
    FGSM,
    PGD,
    BoundaryWalk,
    CallableClassifier,
    EstimatedGradient,
    HopSkipJump,
    LocalSearch,
    SimBA,
    SklearnClassifier,
    Square,
    Substitute,
    TorchClassifier,
)
from hoodwink.errors import CapabilityError, ConfigError, HoodwinkError, StochasticModelWarning

from ._gen_attacks import _as_container, _short, check_attack_result
from ._oracle import Case
from ._values import TinyNet, module_state, module_unchanged, odd, snapshot, unchanged

BLACK_BOX: dict[str, type] = {
    "Square": Square, "SimBA": SimBA, "HopSkipJump": HopSkipJump, "BoundaryWalk": BoundaryWalk,
    "EstimatedGradient": EstimatedGradient, "LocalSearch": LocalSearch, "Substitute": Substitute,
}
#: Score attacks: refused (CapabilityError) on a model that gives labels only.
SCORE_ATTACKS = {"Square", "SimBA", "EstimatedGradient", "LocalSearch"}


def _surrogate(shape: tuple[int, ...], c: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), c))


def _not_a_module(shape: tuple[int, ...], c: int) -> Any:
    return "not a module"


def _raising(shape: tuple[int, ...], c: int) -> nn.Module:
    raise ValueError("the factory failed")


#: Surrogate factories, good and broken (a user's factory can do anything).
_SURROGATES: dict[str, Any] = {
    "linear": _surrogate, "bad_fn": _not_a_module, "raising_fn": _raising,
    "wrong_out": lambda s, c: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), c + 1)),
    "no_flatten": lambda s, c: nn.Linear(math.prod(s), c),
    "no_params": lambda s, c: nn.Flatten(),
    "float64": lambda s, c: _surrogate(s, c).double(),
}


#: Parameter values that must all be accepted (field -> strategy), per attack.
_COMMON: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.one_of(st.integers(0, 2**64 - 1), st.none()),
    "max_queries": st.one_of(st.integers(2, 60), st.sampled_from([10**9, np.int64(40)])),
    "loss": st.sampled_from(["ce", "margin"]),
}
_VALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "Square": {"norm": st.sampled_from(["linf", "l2"]),
               "p_init": st.one_of(st.none(), st.floats(1e-6, 1), st.just(1))},
    "SimBA": {"norm": st.sampled_from(["l2", "linf"]), "basis": st.sampled_from(["pixel", "dct"]),
              "step": st.one_of(st.floats(1e-6, 2), st.just(1)),
              "freq_dims": st.one_of(st.none(), st.integers(1, 10**6))},
    "HopSkipJump": {"norm": st.sampled_from(["l2", "linf"]), "init_evals": st.integers(1, 30),
                    "max_evals": st.integers(30, 10**7), "gamma": st.floats(1e-6, 1e6),
                    "batch_starts": st.booleans(), "probe_scale": st.integers(1, 64),
                    "coarse_iterations": st.integers(1, 10**9),
                    "momentum": st.floats(0, 0.999), "stop_at_eps": st.booleans()},
    "BoundaryWalk": {"norm": st.sampled_from(["l2", "linf"]),
                     "spherical_step": st.floats(1e-9, 1), "source_step": st.floats(1e-9, 0.5),
                     "step_adaptation": st.floats(1.0001, 10), "batch_starts": st.booleans(),
                     "stop_at_eps": st.booleans()},
    "EstimatedGradient": {
        "attack": st.sampled_from([None, "pgd", "pgd_l2", "fgsm"]),
        "estimator": st.sampled_from(["nes", "fd"]),
        "samples": st.sampled_from([2, 4, 6, 10]),
        "sigma": st.one_of(st.none(), st.floats(1e-6, 1)),
        "norm": st.sampled_from([None, "linf", "l2", "l1"])},
    "LocalSearch": {"norm": st.sampled_from(["linf", "l2"]),
                    "stepsize": st.one_of(st.none(), st.floats(1e-6, 10)),
                    "fraction": st.floats(1e-6, 1), "patience": st.integers(1, 10**6)},
    "Substitute": {"attack": st.sampled_from([None, "pgd", "pgd_l2", "fgsm"]),
                   "surrogate": st.sampled_from([None, "linear"]),
                   "rounds": st.integers(1, 3), "epochs": st.integers(1, 3),
                   "augment_step": st.floats(1e-6, 1), "restarts": st.integers(1, 3),
                   "norm": st.sampled_from([None, "linf", "l2", "l1"])},
}
#: Odd values aimed at a field: beyond :data:`odd`, the edges of each range.
_EDGES: list[Any] = [0, 1, -1, 2, 10**9, 10**9 + 1, 2**63, 2**64, 10**30, 0.5, 1.0, 1.5, 0.0,
                     -0.0, 1e-300, 1e300, float("nan"), float("inf"), -float("inf"), True,
                     False, "1", "nes", "fd", "pixel", "dct", "l2", None, np.float64("nan"),
                     np.int64(2**62), np.float32(0.5), Square(), "pgd", "pgd_class", *_SURROGATES]
_FIELDS = {name: tuple(_VALID[name]) + tuple(_COMMON) for name in _VALID}
_FIELDS["HopSkipJump"] = tuple(k for k in _FIELDS["HopSkipJump"] if k != "loss")
_FIELDS["BoundaryWalk"] = tuple(k for k in _FIELDS["BoundaryWalk"] if k != "loss")
_FIELDS["Substitute"] = tuple(k for k in _FIELDS["Substitute"] if k != "loss")


def _resolve(name: str, key: str, v: Any) -> Any:
    """Stand-ins for values a strategy cannot hold directly (attacks, factories)."""
    if key in ("attack", "surrogate") and isinstance(v, str):
        return {"pgd": PGD(steps=2), "pgd_l2": PGD(norm="l2", steps=1), "fgsm": FGSM(),
                "pgd_class": PGD, **_SURROGATES}.get(v, v)
    return v


# ---------------------------------------------------------------------- field checks
def _int(v: Any, lo: int, hi: float = math.inf) -> bool:
    return type(v) is int and lo <= v <= hi


def _float(v: Any, lo: float, hi: float, *, lo_open: bool = False,
           hi_open: bool = False) -> bool:
    return (type(v) is float and math.isfinite(v) and (lo < v if lo_open else lo <= v)
            and (v < hi if hi_open else v <= hi))


def _opt(v: Any, ok: bool) -> bool:
    return v is None or ok


def check_bb_fields(a: Any) -> list[str]:
    """A constructed black-box attack holds normalised values of the documented types."""
    from hoodwink.attacks.base import GradientAttack

    name = type(a).__name__
    ok: dict[str, bool] = {
        "norm": type(a.norm) is str and a.norm in type(a).supported_norms,
        "seed": a.seed is None or _int(a.seed, 0, 2**64 - 1),
        "max_queries": _int(a.max_queries, 2, 10**9),
    }
    if hasattr(a, "loss"):
        ok["loss"] = a.loss in ("ce", "margin") and type(a.loss) is str
    if name == "Square":
        ok["p_init"] = _opt(a.p_init, _float(a.p_init, 0, 1, lo_open=True))
    elif name == "SimBA":
        ok["basis"] = a.basis in ("pixel", "dct") and type(a.basis) is str
        ok["step"] = _float(a.step, 0, math.inf, lo_open=True)
        ok["freq_dims"] = _opt(a.freq_dims, _int(a.freq_dims, 1))
    elif name == "HopSkipJump":
        ok.update(init_evals=_int(a.init_evals, 1, 10**7),
                  max_evals=_int(a.max_evals, 1, 10**7) and a.max_evals >= a.init_evals,
                  gamma=_float(a.gamma, 0, math.inf, lo_open=True),
                  batch_starts=type(a.batch_starts) is bool,
                  probe_scale=_int(a.probe_scale, 1, 64),
                  coarse_iterations=_int(a.coarse_iterations, 1),
                  momentum=_float(a.momentum, 0, 1, hi_open=True),
                  stop_at_eps=type(a.stop_at_eps) is bool)
    elif name == "BoundaryWalk":
        ok.update(spherical_step=_float(a.spherical_step, 0, 1, lo_open=True),
                  source_step=_float(a.source_step, 0, 0.5, lo_open=True),
                  step_adaptation=_float(a.step_adaptation, 1, 10, lo_open=True),
                  batch_starts=type(a.batch_starts) is bool,
                  stop_at_eps=type(a.stop_at_eps) is bool)
    elif name == "EstimatedGradient":
        ok.update(attack=isinstance(a.attack, GradientAttack) and a.attack.norm == a.norm,
                  estimator=a.estimator in ("nes", "fd"),
                  samples=_int(a.samples, 2, 100_000) and a.samples % 2 == 0,
                  sigma=_opt(a.sigma, _float(a.sigma, 0, math.inf, lo_open=True)))
        ok["max_queries"] = ok["max_queries"] and _int(a.samples, 2) and (
            a.max_queries >= a.samples + 3)
    elif name == "LocalSearch":
        ok.update(stepsize=_opt(a.stepsize, _float(a.stepsize, 0, math.inf, lo_open=True)),
                  fraction=_float(a.fraction, 0, 1, lo_open=True),
                  patience=_int(a.patience, 1, 10**6))
    elif name == "Substitute":
        ok.update(attack=isinstance(a.attack, GradientAttack) and a.attack.norm == a.norm,
                  surrogate=a.surrogate is None or callable(a.surrogate),
                  rounds=_int(a.rounds, 1, 20), epochs=_int(a.epochs, 1, 10_000),
                  augment_step=_float(a.augment_step, 0, 1, lo_open=True),
                  restarts=_int(a.restarts, 1, 10_000))
    return [f"accepted bad {k}: {name}.{k}={getattr(a, k)!r}" for k, good in ok.items()
            if not good]


# ---------------------------------------------------------------------- counting models
class Counted(nn.Module):
    """Wraps a network and counts every row it is asked about."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows = 0
        self.train(inner.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += int(x.shape[0])
        out: torch.Tensor = self.inner(x)
        return out


def quirk_logits(z: Any, flat: Any, quirk: str, hi0: float) -> Any:
    """Logits ``z`` (NumPy or torch) of inputs ``flat`` changed as ``quirk`` says.

    "constant": the same for every input; "tied": all classes equal (argmax 0);
    "steep": times 1e4; "nan_far": NaN for inputs whose first feature sits at its
    upper bound ``hi0`` (a model that breaks at the edge of its domain).
    """
    np_ = isinstance(z, np.ndarray)
    if quirk == "constant":
        return z * 0 + (np.arange(z.shape[1]) if np_ else torch.arange(z.shape[1]).to(z.dtype))
    if quirk == "tied":
        return z * 0
    if quirk == "steep":
        return z * 1e4
    if quirk == "nan_far":
        at = flat[:, :1] == hi0
        return np.where(at, np.nan, z) if np_ else torch.where(at, torch.nan, z)
    return z


class Quirked(nn.Module):
    """A network whose logits are changed by :func:`quirk_logits`."""

    def __init__(self, inner: nn.Module, quirk: str, hi0: float) -> None:
        super().__init__()
        self.inner, self.quirk, self.hi0 = inner, quirk, hi0
        self.train(inner.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = quirk_logits(self.inner(x), x.flatten(1), self.quirk, self.hi0)
        return out


def _global_state() -> tuple[torch.Tensor, Any, int]:
    legacy = np.random.get_state()[1].copy()  # noqa: NPY002 - watching it, not drawing
    return torch.random.get_rng_state(), legacy, torch.get_num_threads()


def _global_changes(before: tuple[torch.Tensor, Any, int]) -> list[str]:
    """Side effects on global state: torch's and NumPy's global RNG, torch's threads."""
    now = _global_state()
    p = []
    if not torch.equal(before[0], now[0]):
        p.append("global state: torch's global RNG was drawn from")
    if not np.array_equal(before[1], now[1]):
        p.append("global state: NumPy's global RNG was drawn from")
    if before[2] != now[2]:
        p.append(f"global state: torch threads changed from {before[2]} to {now[2]}")
    return p


def check_progress(calls: list[tuple[Any, ...]]) -> list[str]:
    """``progress(done, total, message)``: ints, one total, done in [0, total], ending at total."""
    if not calls:
        return []
    for c in calls:
        if (len(c) != 3 or not all(type(v) is int for v in c[:2]) or not isinstance(c[2], str)
                or not 0 <= c[0] <= c[1]):
            return [f"progress: bad call progress{c!r}"]
    totals = {c[1] for c in calls}
    if len(totals) != 1:
        return [f"progress: total changed within a call: {sorted(totals)}"]
    if calls[-1][0] != calls[-1][1]:
        return [f"progress: ended at {calls[-1][:2]}, not done == total"]
    return []


class TinyConv(nn.Module):
    """A small ConvNet on (C, H, W) images, seeded from a local generator."""

    def __init__(self, shape: tuple[int, ...], c: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        ch, h, w = shape
        self.conv = nn.Conv2d(ch, 2, 3, padding=1)
        self.fc = nn.Linear(2 * h * w, c)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.tanh(self.conv(x)).flatten(1))
        return out


class RowCounter:
    """``fn(X) -> X`` that counts rows: the first step of a scikit-learn Pipeline."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, a: Any) -> Any:
        self.rows += int(np.shape(a)[0])
        return a


_SKLEARN_CACHE: dict[tuple[Any, ...], tuple[Any, RowCounter]] = {}


def sklearn_model(kind: str, d: int, c: int, strings: bool, seed: int) -> tuple[Any, RowCounter]:
    """A tiny fitted scikit-learn Pipeline (row counter, estimator), built once per key."""
    key = (kind, d, c, strings, seed)
    if key not in _SKLEARN_CACHE:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer
        from sklearn.svm import SVC
        from sklearn.tree import DecisionTreeClassifier

        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1, (30, d))
        y = np.argmax(x @ rng.normal(size=(d, c)) + rng.normal(0, 0.1, c), axis=1)
        y[:c] = np.arange(c)
        labels: Any = np.array([f"class-{k}" for k in range(c)])[y] if strings else y
        est = {"logreg": lambda: LogisticRegression(C=10.0),
               "logreg_df": lambda: LogisticRegression(C=10.0),
               "xgb": lambda: _xgb(seed), "lgbm": lambda: _lgbm(seed),
               "tree": lambda: DecisionTreeClassifier(max_depth=4, random_state=seed),
               "knn": lambda: KNeighborsClassifier(n_neighbors=3),
               "svc": lambda: SVC(C=10.0)}[kind]()
        counter = RowCounter()
        pipe = make_pipeline(FunctionTransformer(counter, check_inverse=False), est)
        if kind == "logreg_df":  # fitted on a DataFrame: the adapter hands it one back
            import pandas as pd

            pipe.fit(pd.DataFrame(x, columns=[f"f{j}" for j in range(d)]), labels)
        elif kind in ("xgb", "lgbm") and strings:  # they take class indices only
            pipe.fit(x, y)
        else:
            pipe.fit(x, labels)
        _SKLEARN_CACHE[key] = (pipe, counter)
    pipe, counter = _SKLEARN_CACHE[key]
    counter.rows = 0
    return pipe, counter


def _xgb(seed: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=5, max_depth=2, random_state=seed, n_jobs=1)


def _lgbm(seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=5, num_leaves=4, min_child_samples=2,
                          random_state=seed, n_jobs=1, verbose=-1)


class LinearFn:
    """A NumPy function model: logits, probabilities or labels of a fixed linear map."""

    def __init__(self, d: int, c: int, seed: int, output: str, *, quirk: str = "plain",
                 hi0: float = 1.0) -> None:
        g = np.random.default_rng(seed)
        self.w = g.normal(size=(d, c)) * 3
        self.b = g.normal(size=c) * 0.1
        self.output = output
        self.quirk = quirk
        self.hi0 = hi0
        self.rows = 0
        self.__qualname__ = f"LinearFn_{output}"

    def __call__(self, a: np.ndarray) -> Any:
        self.rows += int(a.shape[0])
        flat = a.reshape(a.shape[0], -1).astype(np.float64)
        z = quirk_logits(flat @ self.w + self.b, flat, self.quirk, self.hi0)
        if self.output == "probabilities":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        if self.output == "labels":
            return z.argmax(axis=1)
        return z


# ---------------------------------------------------------------------- the fixed problem
def _fixed_problem() -> tuple[TorchClassifier, Counted, torch.Tensor, torch.Tensor]:
    net = Counted(TinyNet(16, 3, seed=1, scale=3.0))
    clf = TorchClassifier(net, bounds=(0, 1), num_classes=3)
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return clf, net, x, torch.tensor([0, 2])


def _names_a_field(msg: str, given: list[str], fields: list[str]) -> bool:
    """Whether a ConfigError message names the parameter at fault (one given, else any field)."""
    return any(f"'{k}'" in msg or f"{k}=" in msg for k in given) or any(
        f"'{k}'" in msg for k in fields)


@st.composite
def blackbox_constructions(draw: Any, name: str | None = None) -> Case:
    """A black-box attack (``name``, else any) with generated values for up to four fields."""
    name = name or draw(st.sampled_from(sorted(BLACK_BOX)))
    cls = BLACK_BOX[name]
    keys = draw(st.lists(st.sampled_from(_FIELDS[name]), unique=True, max_size=4))
    valid = {**_COMMON, **_VALID[name]}
    kwargs = {k: draw(st.sampled_from([0, 0, 0, 1, 2]).flatmap(
        lambda r, k=k: valid[k] if r == 0 else odd if r == 1 else st.sampled_from(_EDGES)))
        for k in keys}
    fields = [f.name for f in dataclasses.fields(cls)]

    def call() -> Any:
        kw = {k: _resolve(name, k, v) for k, v in kwargs.items()}
        try:
            a = cls(**kw)
        except ConfigError as exc:
            if not _names_a_field(str(exc), list(kw), fields):
                return {"problems": [f"message: ConfigError names no parameter: {exc}"]}
            raise
        except HoodwinkError as exc:
            return {"problems": [f"error type: construction raised {type(exc).__name__}, not "
                                 f"ConfigError: {exc}"]}
        problems = check_bb_fields(a)
        repr(a)
        if not problems:
            a.replace()  # validated again: must not fail on its own values
        if not problems and a.max_queries <= 60:
            clf, net, x, y = _fixed_problem()
            net.rows = 0
            r = a(clf, x, y, eps=0.2)
            rows = net.rows
            problems = check_attack_result(r, clf=clf, x=x, eps=0.2, norm=a.norm, targeted=False)
            problems += check_queries(r, a.max_queries, rows)
        return {"problems": problems}

    return Case("blackbox_construction", call, lambda out: out["problems"],
                repro=f"hoodwink.{name}(**{kwargs!r})  # then attack(model, x, y, eps=0.2)")


def check_queries(r: Any, max_queries: int, rows: int | None) -> list[str]:
    """``queries`` never above the budget, and adding up to the rows the model saw."""
    q = r.queries
    if q.dtype != torch.int64:
        return [f"queries: dtype {q.dtype}, not int64"]
    p = []
    if int(q.max()) > max_queries:
        p.append(f"budget: queries {q.tolist()} exceed max_queries={max_queries}")
    if int(q.min()) < 1:
        p.append(f"queries: {q.tolist()} (the verification pass alone is one per sample)")
    if rows is not None and int(q.sum()) != rows:
        p.append(f"queries: sum {int(q.sum())} of {q.tolist()}, but the model saw {rows} rows")
    return p


# ---------------------------------------------------------------------- calls
@st.composite
def _attack_kwargs(draw: Any, name: str, image: bool) -> dict[str, Any]:
    # Mostly the small budgets of the brief; sometimes enough for several iterations.
    mq = draw(st.integers(2, 60)) if draw(st.integers(0, 5)) else draw(st.integers(61, 300))
    kw: dict[str, Any] = {"max_queries": mq, "seed": draw(st.sampled_from([0, 1, None]))}
    if name == "Square":
        kw.update(norm=draw(st.sampled_from(["linf", "l2"])),
                  p_init=draw(st.sampled_from([None, 0.05, 0.5, 1.0])),
                  loss=draw(st.sampled_from(["ce", "margin"])))
    elif name == "SimBA":
        kw.update(norm=draw(st.sampled_from(["l2", "linf"])),
                  basis=draw(st.sampled_from(["pixel", "pixel", "dct" if image else "pixel",
                                              "dct"])),
                  step=draw(st.sampled_from([0.2, 0.01, 1.0, 1e-6, 50.0])),
                  freq_dims=draw(st.sampled_from([None, 1, 3])),
                  loss=draw(st.sampled_from(["ce", "margin"])))
    elif name in ("HopSkipJump", "BoundaryWalk"):
        kw.update(norm=draw(st.sampled_from(["l2", "linf"])),
                  batch_starts=draw(st.booleans()), stop_at_eps=draw(st.booleans()))
        if name == "HopSkipJump":
            kw.update(init_evals=draw(st.sampled_from([1, 5, 20])),
                      gamma=draw(st.sampled_from([1.0, 0.01, 100.0])),
                      probe_scale=draw(st.sampled_from([1, 2])),
                      momentum=draw(st.sampled_from([0.0, 0.3])))
        else:
            kw.update(spherical_step=draw(st.sampled_from([0.01, 1.0, 1e-9])),
                      source_step=draw(st.sampled_from([0.01, 0.5])),
                      step_adaptation=draw(st.sampled_from([1.5, 10.0])))
    elif name == "EstimatedGradient":
        samples = draw(st.sampled_from([2, 4, 6]))
        kw.update(estimator=draw(st.sampled_from(["nes", "fd"])), samples=samples,
                  sigma=draw(st.sampled_from([None, 1e-3, 0.1, 1e-9])),
                  loss=draw(st.sampled_from(["ce", "margin"])),
                  attack=draw(st.sampled_from(["pgd", "pgd_l2", "fgsm", None])))
        kw["max_queries"] = draw(st.integers(samples + 4, max(60, mq))) if draw(
            st.integers(0, 5)) else mq
    elif name == "LocalSearch":
        kw.update(norm=draw(st.sampled_from(["linf", "l2"])),
                  stepsize=draw(st.sampled_from([None, 0.05, 1e-6, 100.0])),
                  fraction=draw(st.sampled_from([0.05, 1.0, 0.5])),
                  patience=draw(st.sampled_from([1, 10])),
                  loss=draw(st.sampled_from(["ce", "margin"])))
    else:
        kw.update(rounds=draw(st.integers(1, 2)), epochs=draw(st.integers(1, 2)),
                  restarts=draw(st.integers(1, 2)),
                  augment_step=draw(st.sampled_from([0.1, 1.0])),
                  attack=draw(st.sampled_from(["pgd", "pgd_l2", "fgsm", None])),
                  surrogate=draw(st.sampled_from([None, None, "linear", "linear",
                                                  *sorted(_SURROGATES)])))
    return kw


def _bb_bounds(kind: str, shape: tuple[int, ...]) -> tuple[Any, Any]:
    g = np.random.default_rng(len(shape))
    if kind == "01":
        return 0.0, 1.0
    if kind == "pm1":
        return -1.0, 1.0
    if kind == "0_255":
        return 0, 255
    if kind == "tiny_span":
        return 0.5, 0.5 + 1e-5
    if kind == "huge":
        return -1e30, 1e30
    if kind == "odd_scalar":  # lower + (upper - lower) rounds above upper in float32
        return -0.43312692642211914, 0.6486794352531433
    lo = -g.uniform(0, 1, shape)
    if kind == "per_feature_tiny":  # one feature with a sliver of a range
        span = g.uniform(0.1, 2, shape)
        span.flat[0] = 1e-6
        return lo, lo + span
    return lo, lo + g.uniform(0.1, 2, shape)


@st.composite
def _labels(draw: Any, n: int, c: int, base: np.ndarray) -> Any:
    kind = draw(st.sampled_from(["tensor"] * 6 + ["int", "numpy", "list", "out_of_range",
                                                  "wrong_shape", "float", "odd"]))
    if kind == "tensor":
        return torch.from_numpy(base)
    if kind == "int":
        return int(base[0])
    if kind == "numpy":
        return base
    if kind == "list":
        return base.tolist()
    if kind == "out_of_range":
        v = draw(st.sampled_from([-1, c, 2**63, 10**30]))
        return v if draw(st.booleans()) else [v] + base.tolist()[1:]
    if kind == "wrong_shape":
        return torch.from_numpy(np.stack([base, base], axis=1)) if draw(st.booleans()) \
            else torch.from_numpy(np.concatenate([base, base]))
    if kind == "float":
        return torch.from_numpy(base.astype(np.float32))
    return draw(odd)


@st.composite
def blackbox_calls(draw: Any, name: str | None = None) -> Case:
    """A black-box attack (``name``, else any) with a small budget on a small model."""
    kind = draw(st.sampled_from(["torch_linear", "torch_linear", "torch_conv", "sklearn",
                                 "sklearn", "callable", "callable"]))
    if kind == "torch_conv":
        shape: tuple[int, ...] = draw(st.sampled_from([(1, 4, 4), (2, 3, 5), (1, 8, 8), (1, 1, 5),
                                                       (3, 1, 1), (1, 2, 2)]))
    else:
        shape = draw(st.sampled_from([(3,), (2, 3), (1, 4, 4), (6,), (1, 3, 2), (1,), (2,),
                                      (1, 1, 3)]))
    d = math.prod(shape)
    c = draw(st.sampled_from([2, 3, 4]))
    seed = draw(st.integers(0, 3))
    bounds_kind = draw(st.sampled_from(["01"] * 6 + ["pm1", "0_255", "per_feature", "per_feature",
                                                     "tiny_span", "huge", "per_feature_tiny",
                                                     "odd_scalar"]))
    quirk = draw(st.sampled_from(["plain"] * 8 + ["constant", "tied", "steep", "nan_far"]))
    batch_size = draw(st.sampled_from([None, None, 1, 2]))
    want_progress = draw(st.booleans())
    levels = draw(st.sampled_from([None] * 4 + [256, 2, 17]))
    est_kind = draw(st.sampled_from(["logreg", "logreg", "tree", "knn", "svc", "xgb", "lgbm",
                                     "logreg_df"]))
    strings = draw(st.booleans())
    output = draw(st.sampled_from([None, None, "probabilities", "logits", "labels"]))
    fn_output = draw(st.sampled_from(["logits", "probabilities", "labels"]))
    give_nc = draw(st.booleans())
    name = name or draw(st.sampled_from(sorted(BLACK_BOX)))
    akw = draw(_attack_kwargs(name, len(shape) == 3))
    lo, hi = _bb_bounds(bounds_kind, shape)
    lo1, hi1 = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    n = draw(st.integers(1, 5))
    u = draw(hnp.arrays(np.float64, (n, *shape), elements=st.floats(0, 1)))
    if levels:
        u = np.round(u * (levels - 1)) / (levels - 1)
    xv = lo1 + u * (hi1 - lo1)
    spoil = draw(st.sampled_from(["none"] * 12 + ["at_lower", "at_upper", "offgrid_tiny",
                                                  "out_of_bounds", "nan", "empty", "unbatched",
                                                  "wrong_features"]))
    if spoil == "at_lower":
        xv = np.broadcast_to(lo1, xv.shape).copy()
    elif spoil == "at_upper":
        xv = np.broadcast_to(hi1, xv.shape).copy()
    elif spoil == "offgrid_tiny":
        xv = xv + 1e-7
    elif spoil == "out_of_bounds":
        xv = xv + 2 * (hi1 - lo1)
    elif spoil == "nan":
        xv.flat[0] = np.nan
    elif spoil == "empty":
        xv = xv[:0]
    elif spoil == "unbatched":
        xv = xv[0]
    elif spoil == "wrong_features":
        xv = np.concatenate([xv.reshape(n, -1), xv.reshape(n, -1)[:, :1]], axis=1)
    dtype = draw(st.sampled_from(["float32"] * 5 + ["float64", "float64", "float16", "int64"]))
    layout = draw(st.sampled_from(["torch"] * 6 + ["numpy"] * 2 + [
        "numpy_flip", "numpy_bigendian", "numpy_fortran", "torch_noncontig",
        "torch_requires_grad"]))
    x: Any = _as_container(xv, dtype, layout)
    base = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)),
                      dtype=np.int64)
    mode = draw(st.sampled_from(["y"] * 4 + ["none", "target", "target", "both"]))
    y = draw(_labels(n, c, base)) if mode in ("y", "both") else None
    target = draw(_labels(n, c, (base + draw(st.integers(1, c - 1))) % c)) if mode in (
        "target", "both") else None
    eps = draw(st.one_of(st.floats(0, 1), st.sampled_from(
        [0.0, 1e-12, 8 / 255, 0.3, 1.0, 5.0, 1e3, 1e39, float("inf"), -0.1, float("nan"),
         np.float32(0.1), "0.1", None])))
    sweep = draw(st.integers(0, 9)) == 0
    again = draw(st.integers(0, 3)) == 0
    x_before = snapshot(x)
    state: dict[str, Any] = {}

    hi0 = float(np.broadcast_to(hi1, shape).flat[0])
    bs = {} if batch_size is None else {"batch_size": batch_size}

    def model() -> tuple[Any, Any, str]:
        """(classifier, the object counting rows, the classifier's output kind)."""
        if kind.startswith("torch"):
            inner = TinyConv(shape, c, seed) if kind == "torch_conv" else TinyNet(d, c, seed=seed,
                                                                               scale=3.0)
            net = Counted(Quirked(inner, quirk, hi0))
            state["net"], state["before"] = net, module_state(net)
            clf = TorchClassifier(net, bounds=(lo, hi), levels=levels,
                                  num_classes=c if give_nc else None, **bs)
            return clf, net, "logits"
        if kind == "sklearn":
            pipe, counter = sklearn_model(est_kind, d, c, strings, seed)
            clf = SklearnClassifier(pipe, bounds=(lo, hi), levels=levels, output=output, **bs)
            return clf, counter, clf.output
        fn = LinearFn(d, c, seed, fn_output, quirk=quirk, hi0=hi0)
        clf = CallableClassifier(fn, num_classes=c, bounds=(lo, hi), output=fn_output,
                                 levels=levels, **bs)
        return clf, fn, fn_output

    def call() -> Any:
        clf, counter, out_kind = model()
        state["clf"] = clf
        kw = {k: _resolve(name, k, v) for k, v in akw.items()}
        attack = BLACK_BOX[name](**kw)
        state["attack"] = attack
        clean = (spoil in ("none", "at_lower", "at_upper") and dtype != "int64"
                 and isinstance(y, torch.Tensor | type(None))
                 and isinstance(target, torch.Tensor | type(None)) and isinstance(eps, float)
                 and 0 <= eps < math.inf and not (y is not None and target is not None))
        label_only = name in SCORE_ATTACKS and out_kind == "labels"
        state["want_capability"] = label_only and clean
        counter.rows = 0
        calls: list[tuple[Any, ...]] = []
        state["progress"] = calls
        prog = (lambda *a: calls.append(a)) if want_progress else None
        before = _global_state()

        def run() -> Any:
            if sweep:
                return attack.sweep(clf, x, y, target=target, eps=[eps, 0.05], progress=prog)
            return attack(clf, x, y, target=target, eps=eps, progress=prog)

        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                r = run()
            except CapabilityError:
                if label_only:
                    return "capability"
                raise
            except HoodwinkError as exc:
                if state["want_capability"]:
                    return f"capability: {type(exc).__name__} instead: {exc}"
                raise
        state["rows"] = counter.rows
        state["stochastic"] = [str(w.message) for w in seen
                               if issubclass(w.category, StochasticModelWarning)]
        state["global"] = _global_changes(before)
        if again and attack.seed is not None:  # a fixed seed reproduces, queries and all
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state["again"] = run()
        return r

    def check(r: Any) -> list[str]:
        if isinstance(r, str):
            return [] if r == "capability" else [r]
        if state.get("want_capability"):
            return [f"capability: {name} ran on a label-only model"]
        attack, clf = state["attack"], state["clf"]
        targeted = target is not None
        results = list(r) if sweep else [r]
        epss = [eps, 0.05] if sweep else [eps]
        p: list[str] = []
        for res, e in zip(results, epss, strict=True):
            p += check_attack_result(res, clf=clf, x=x, eps=e, norm=attack.norm,
                                     targeted=targeted)
            p += check_queries(res, attack.max_queries, None)
        total = sum(int(res.queries.sum()) for res in results)
        if total != state["rows"]:
            p.append(f"queries: they add up to {total}, but the model saw {state['rows']} rows")
        p += check_progress(state["progress"]) if want_progress else []
        p += state["global"]
        if "again" in state:
            for res, res2 in zip(results, list(state["again"]) if sweep else [state["again"]],
                                 strict=True):
                if not (torch.equal(res.x_adv, res2.x_adv)
                        and torch.equal(res.queries, res2.queries)):
                    p.append("seed: the same seed gave another x_adv or other queries")
                    break
        if state["stochastic"]:
            p.append(f"stochastic: a deterministic model got a StochasticModelWarning "
                     f"({state['stochastic'][0][:80]}...): the attack returned a point it did "
                     "not query")
        return p

    def after_module() -> list[str]:
        if "net" not in state:
            return []
        return module_unchanged(state["net"], state["before"])

    model_desc = {
        "torch_linear": f"TorchClassifier(Counted(TinyNet({d}, {c}, seed={seed})))",
        "torch_conv": f"TorchClassifier(Counted(TinyConv({shape}, {c}, seed={seed})))",
        "sklearn": f"SklearnClassifier(pipeline({est_kind}, strings={strings}), "
                   f"output={output!r})",
        "callable": f"CallableClassifier(LinearFn({d}, {c}, {seed}, {fn_output!r}))",
    }[kind]
    desc = (f"clf={model_desc[:-1]}, bounds={bounds_kind}, levels={levels}, quirk={quirk}, "
            f"batch_size={batch_size}, progress={want_progress}"
            f"{', num_classes=' + str(c) if give_nc and kind.startswith('torch') else ''}); "
            f"x: {dtype} {layout} shape {tuple(np.shape(xv))} spoil={spoil}; "
            f"hoodwink.{name}(**{akw!r}){'.sweep' if sweep else ''}(clf, x, y={_short(y)}, "
            f"{'[twice] ' if again else ''}"
            f"target={_short(target)}, eps={_short(eps)})")
    return Case("blackbox_call", call, check, repro=desc, timeout=30,
                after=[after_module, lambda: unchanged(x, x_before)])

