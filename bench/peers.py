"""hoodwink's strong evaluation side by side with torchattacks, foolbox 3 and IBM ART.

Three parts, each selectable with ``--only``:

``robust``
    Robust accuracy at a fixed L∞ eps (mnist-cnn 0.1, mnist-linear 0.1,
    mnist-cnn-adv 0.3, EfficientNet-Lite0 1/255): hoodwink's
    ``evaluate(attacks="standard")`` against torchattacks'
    ``AutoAttack(version="standard")``, ART's ``AutoAttack`` (a standard-like
    set, configured: see ``config`` in the record) and foolbox's strongest fit
    (it has no AutoAttack: ``LinfPGD`` with 100 steps, then its L∞ FMN on what
    PGD left). Also APGD-CE alone, 100 steps and one restart in each library:
    hoodwink's ``APGD`` against torchattacks' ``APGD`` and ART's
    ``AutoProjectedGradientDescent``.
``minnorm``
    Minimum-norm attacks on mnist-cnn: the median L2 (and L∞ for DeepFool and
    FMN) of the adversarials each library says it found *and* that are real,
    with success rates: Carlini-Wagner L2 (all four libraries), DeepFool L2
    (all four) and L∞ (hoodwink, foolbox), FMN L2 and L∞ (hoodwink, foolbox).
``grad``
    Whether each library's CW, DeepFool and APGD (foolbox: PGD) leave
    ``.grad`` filled on the user's model parameters, or change the module's
    mode or ``requires_grad`` flags.

Every case (one library, one attack, one model) runs in a fresh subprocess,
so that its peak memory (``VmHWM`` after a ``/proc/self/clear_refs`` reset,
as in ``bench/overhead.py``) is its own, with one torch thread by default.
Every library calls the same network through ``CountingModule``
(``bench/blackbox.py``), which counts the rows (per-sample forward passes)
and times the network's forward pass. Every library's adversarials are then
checked by the bench itself, outside the library: re-classified by the bare
network, and checked to lie in [0, 1] and (for ``robust``) in the eps-ball.
A success counts only when it is real; the library's own claim is recorded
next to it.

Usage::

    python bench/peers.py [--n 100] [--only robust,minnorm,grad] [--threads 1]
                          [--cw-steps 100] [--out bench/results/peers.json]

Writes ``bench/results/peers.json`` and prints a summary table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blackbox import (  # noqa: E402
    CountingModule,
    _jsonable,
    seeded,
    versions,
)
from overhead import _peak_rss, _reset_peak_rss, machine_facts  # noqa: E402

from hoodwink import TorchClassifier, zoo  # noqa: E402
from hoodwink.data import load_mnist  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "peers.json"
SEED = 0
PARTS = ("robust", "minnorm", "grad")
LIBRARIES = ("hoodwink", "torchattacks", "foolbox", "art")
#: L∞ budget per model for the ``robust`` part, on the 8-bit grid: the usual MNIST budgets
#: 0.1 and 0.3 rounded down to whole 1/255 steps (25/255 and 76/255). hoodwink keeps its results
#: on the models' 8-bit grid, so at eps 0.1 it attacks the grid points within 25/255 while
#: the peers attack the whole continuous ball of radius 0.1; at a grid eps both balls have the
#: same radius and the grid costs nothing at the ball's corners, where L∞ attacks end.
ROBUST_EPS: dict[str, float] = {
    "mnist-cnn": 25 / 255, "mnist-linear": 25 / 255, "mnist-cnn-adv": 76 / 255,
    "efficientnet-lite0": 1 / 255,
}
IMAGENET = "efficientnet-lite0"
MINNORM_MODEL = "mnist-cnn"
#: Steps of APGD in the APGD-CE comparison (the reference AutoAttack's).
APGD_STEPS = 100
#: Steps of foolbox's LinfPGD and FMN in its "strongest fit".
FB_STEPS = 100
#: Square's query budget in the standard AutoAttack set (as the reference).
SQUARE_QUERIES = 5000
CW_BINARY_STEPS = 9
CW_STEPS = 100
CW_LR = 0.01
DEEPFOOL_STEPS = 50
DEEPFOOL_OVERSHOOT = 0.02
FMN_STEPS = 100
#: A perturbation counts as inside the eps-ball up to this much float32 rounding.
EPS_TOL = 1e-6
#: Seconds one case may run before it is stopped and recorded as timed out.
CHILD_TIMEOUT = 1200
#: hoodwink on the model without its 8-bit grid: the same ball as the peers';
#: informative, not counted in the targets.
HW_NO_GRID = "hoodwink (no grid)"
TIME_TARGET = 0.5


@dataclass(frozen=True)
class Case:
    """One measured run: a library's attack (``method``) on one model."""

    part: str
    model: str
    method: str
    library: str

    @property
    def key(self) -> str:
        return f"{self.part}/{self.model}/{self.method}/{self.library}"


def cases(parts: list[str], no_grid: bool, models: list[str] | None = None,
          imagenet_apgd: bool = False) -> list[Case]:
    """Every case of the selected parts (``robust``: of ``models``), in the order they run.

    APGD-CE alone runs on EfficientNet-Lite0 only with ``imagenet_apgd`` (2 minutes
    more, and every library breaks every photo at 1/255).
    """
    out: list[Case] = []
    if "robust" in parts:
        for model in models or list(ROBUST_EPS):
            libs = ["hoodwink", "torchattacks", "art", "foolbox"]
            if no_grid and model != IMAGENET:
                libs.insert(1, HW_NO_GRID)
            out += [Case("robust", model, "standard", lib) for lib in libs]
            if model != IMAGENET or imagenet_apgd:
                out += [Case("robust", model, "apgd-ce", lib)
                        for lib in ("hoodwink", "torchattacks", "art")]
    if "minnorm" in parts:
        m = MINNORM_MODEL
        for lib in LIBRARIES:
            out.append(Case("minnorm", m, "cw-l2", lib))
        for lib in LIBRARIES:
            out.append(Case("minnorm", m, "deepfool-l2", lib))
        for method in ("deepfool-linf", "fmn-l2", "fmn-linf"):
            out += [Case("minnorm", m, method, lib) for lib in ("hoodwink", "foolbox")]
        if no_grid:
            out += [Case("minnorm", m, method, HW_NO_GRID)
                    for method in ("cw-l2", "deepfool-l2", "deepfool-linf", "fmn-l2", "fmn-linf")]
    if "grad" in parts:
        out.append(Case("grad", MINNORM_MODEL, "all", "all"))
    return out


class Skip(Exception):
    """A case that cannot run here (a piece of hoodwink or a peer is missing)."""


# --------------------------------------------------------------------------- set-up
@dataclass
class Setting:
    """A model with its data: the zoo classifier, the bare network, the batches."""

    clf: TorchClassifier
    net: nn.Module
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    names: list[str]
    labels: str


def load_model(name: str) -> tuple[TorchClassifier, nn.Module]:
    """The zoo classifier and the bare network from raw [0, 1] inputs to logits."""
    if name not in zoo.available():
        raise Skip(f"zoo model {name!r} not available yet")
    clf = zoo.load(name)
    net: nn.Module = clf.module
    if clf.preprocessing is not None:
        net = nn.Sequential(clf.preprocessing, clf.module)  # type: ignore[arg-type]
    return clf, net.eval()


def load_setting(name: str, n: int) -> Setting:
    """MNIST: the first ``n`` held-out digits, one batch. ImageNet: the photos, one each."""
    clf, net = load_model(name)
    if name == IMAGENET:
        from hoodwink.data.photos import natural_photos

        photos = natural_photos()
        batches = []
        with torch.no_grad():
            for img in photos.values():
                batches.append((img, net(img).argmax(1)))
        return Setting(clf, net, batches, list(photos),
                       "each photo's own clean prediction (clean accuracy 1 by construction)")
    x, y = load_mnist("test")
    return Setting(clf, net, [(x[:n].contiguous(), y[:n].contiguous())],
                   [str(i) for i in range(min(n, x.shape[0]))],
                   "load_mnist('test')[:n], the true labels")


def hoodwink_model(counting: CountingModule, clf: TorchClassifier, *, grid: bool,
                   shape: tuple[int, ...]) -> TorchClassifier:
    """``counting`` (the network from raw inputs) as a TorchClassifier with the zoo domain."""
    return TorchClassifier(counting, bounds=clf.bounds, levels=clf.levels if grid else None,
                           batch_size=clf.batch_size, class_names=clf.class_names,
                           input_shape=shape)


def art_estimator(counting: nn.Module, shape: tuple[int, ...], classes: int) -> Any:
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=counting, loss=nn.CrossEntropyLoss(), input_shape=shape,
                             nb_classes=classes, clip_values=(0.0, 1.0), device_type="cpu")


def _sub_attacks(attacks: list[Any]) -> list[dict[str, Any]]:
    """What a peer's cascade really runs, read off the objects themselves."""
    keys = ("steps", "n_restarts", "n_queries", "n_target_classes", "loss", "multi_targeted",
            "max_iter", "nb_random_init", "loss_type", "eps_step", "nb_restarts", "p_init",
            "epsilon", "nb_grads", "eps", "norm", "rho", "alpha_max", "eta", "beta")
    out = []
    for a in attacks:
        d: dict[str, Any] = {"class": f"{type(a).__module__}.{type(a).__name__}"}
        for k in keys:
            v = getattr(a, k, None)
            if isinstance(v, int | float | str | bool) and not isinstance(v, np.generic):
                d[k] = v
            elif isinstance(v, np.generic):
                d[k] = v.item()
        out.append(d)
    return out


# --------------------------------------------------------------------------- runners
# A runner attacks one batch: (x, y) -> (x_adv, claims), where claims holds the library's
# own per-sample statement where it makes one ("claimed": bool tensor), and anything else
# worth keeping. Runners are built once per case; the set-up is not timed.
Runner = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, Any]]]


def _need(name: str, module: str) -> Any:
    """A public name of hoodwink: from ``hoodwink.attacks`` when re-exported, else ``module``."""
    import importlib

    found = getattr(importlib.import_module("hoodwink.attacks"), name, None)
    if found is None:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
    if found is None:
        raise Skip(f"hoodwink {module}.{name} not available yet")
    return found


def hoodwink_sources() -> dict[str, str]:
    """SHA-256 of every hoodwink attack and evaluation file this process has imported."""
    import hashlib

    out = {}
    for name, mod in sorted(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if path and name.startswith(("hoodwink.attacks", "hoodwink.evaluation")):
            f = Path(path)
            out[str(f.relative_to(f.parents[2]))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _hoodwink_minnorm_eps(norm: str, x: torch.Tensor) -> float:
    """eps for a minimum-norm attack: the box's diameter (every point of it counts)."""
    return float(math.sqrt(x[0].numel())) if norm == "l2" else 1.0


def build_runner(case: Case, st: Setting, counting: CountingModule,
                 args: argparse.Namespace) -> tuple[Runner, dict[str, Any]]:
    """The case's runner and its configuration (every parameter the library was given)."""
    lib, method = case.library, case.method
    eps = ROBUST_EPS.get(case.model, 0.0)
    classes = len(st.clf.class_names) if st.clf.class_names else 10
    if lib in ("hoodwink", HW_NO_GRID):
        return _hoodwink_runner(case, st, counting, args, grid=lib == "hoodwink", eps=eps)
    if lib == "torchattacks":
        return _torchattacks_runner(method, counting, args, eps, classes)
    if lib == "foolbox":
        return _foolbox_runner(method, counting, args, eps)
    if lib == "art":
        return _art_runner(method, counting, args, eps, classes)
    raise Skip(f"unknown library {lib}")


def _hoodwink_runner(case: Case, st: Setting, counting: CountingModule,
                     args: argparse.Namespace, *, grid: bool,
                     eps: float) -> tuple[Runner, dict[str, Any]]:
    method = case.method
    shapes = {tuple(x.shape[1:]) for x, _ in st.batches}
    models = {s: hoodwink_model(counting, st.clf, grid=grid, shape=s) for s in shapes}
    grid_note = (f"levels={st.clf.levels} (the zoo model as loaded: results on the 8-bit grid, "
                 f"so the L∞ ball holds the grid points within eps: radius "
                 f"{math.floor(eps * 255 + 1e-9) / 255 if eps else None})" if grid
                 else "levels=None: the same continuous eps-ball as the peers")
    if method == "standard":
        evaluate = _need("evaluate", "hoodwink.evaluation")
        params = {"call": f"hoodwink.evaluation.evaluate(model, x, y, norm='linf', eps={eps}, "
                          f"attacks='standard', seed={SEED}, examples=len(x))",
                  "examples": "examples=len(x) keeps every sample's best x_adv in the record, "
                              "so that the bench can check them all; the rest are defaults "
                              "(sanity checks on, max_queries 5000)",
                  "model": grid_note}

        def run_eval(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
            ev = evaluate(models[tuple(x.shape[1:])], x, y, norm="linf", eps=eps,
                          attacks="standard", seed=SEED, examples=x.shape[0])
            return _evaluation_adv(ev, x)
        return run_eval, params
    if method == "apgd-ce":
        apgd = _need("APGD", "hoodwink.attacks.apgd")
        attack = apgd(norm="linf", steps=APGD_STEPS, seed=SEED, **_apgd_ce_kwargs(apgd))
        params = {"attack": repr(attack), "eps": eps, "model": grid_note}

        def run_apgd(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
            res = attack(models[tuple(x.shape[1:])], x, y, eps=eps)
            return res.x_adv.detach(), {"claimed": res.success.cpu(),
                                        "queries": res.queries.cpu().tolist()}
        return run_apgd, params
    family, norm = method.split("-")
    if family == "cw":
        cw = _need("CarliniWagner", "hoodwink.attacks.cw")
        attack = cw(**_cw_kwargs(cw, args.cw_steps))
    elif family == "deepfool":
        df = _need("DeepFool", "hoodwink.attacks.deepfool")
        attack = df(norm=norm, **_fields(df, steps=DEEPFOOL_STEPS,
                                         overshoot=DEEPFOOL_OVERSHOOT))
    elif family == "fmn":
        fmn = _need("FMN", "hoodwink.attacks.fmn")
        attack = fmn(norm=norm, **_fields(fmn, steps=FMN_STEPS, seed=SEED))
    else:
        raise Skip(f"unknown method {method}")

    def run_min(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        res = attack(models[tuple(x.shape[1:])], x, y, eps=_hoodwink_minnorm_eps(norm, x))
        return res.x_adv.detach(), {"claimed": res.success.cpu(),
                                    "queries": res.queries.cpu().tolist()}
    return run_min, {"attack": repr(attack), "model": grid_note,
                     "eps": "the diameter of the input box in the attack's norm (a "
                            "minimum-norm attack: eps only bounds what counts as success)"}


def _fields(cls: Any, **wanted: Any) -> dict[str, Any]:
    """The keyword arguments of ``wanted`` that ``cls`` (a dataclass) has as fields."""
    names = set(getattr(cls, "__dataclass_fields__", {}))
    return {k: v for k, v in wanted.items() if k in names}


def _apgd_ce_kwargs(cls: Any) -> dict[str, Any]:
    return _fields(cls, loss="ce", restarts=1)


def _cw_kwargs(cls: Any, steps: int) -> dict[str, Any]:
    return {"norm": "l2", **_fields(cls, binary_search_steps=CW_BINARY_STEPS, steps=steps,
                                    stepsize=CW_LR, confidence=0.0, seed=SEED)}


def _evaluation_adv(ev: Any, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """The adversarials of a hoodwink ``Evaluation`` (kept with ``examples=n``) and its verdict.

    A sample the evaluation did not break comes back as ``x`` (``x_adv_examples``
    holds x itself there); the claim is the record's own per-sample ``robust``
    flag at the (single) grid eps.
    """
    adv = x.clone()
    if ev.x_adv_examples is None or len(ev.examples) != x.shape[0]:
        raise RuntimeError(f"the evaluation kept {len(ev.examples)} of {x.shape[0]} "
                           "adversarials; the bench needs them all (examples=n)")
    idx = torch.as_tensor(ev.examples, dtype=torch.int64)
    adv[idx] = ev.x_adv_examples.to(adv.dtype)
    claimed = torch.zeros(x.shape[0], dtype=torch.bool)
    for s in ev.samples:
        claimed[int(s["index"])] = bool(s["clean_correct"]) and not bool(s["robust"][0])
    extra = {"claimed": claimed, "robust_accuracy_reported": ev.robust_accuracy,
             "stages": ev.attacks, "flags": ev.flag_codes, "timings": ev.timings}
    return adv.detach(), extra


def _torchattacks_runner(method: str, counting: nn.Module, args: argparse.Namespace,
                         eps: float, classes: int) -> tuple[Runner, dict[str, Any]]:
    import torchattacks as ta

    if method == "standard":
        atk = ta.AutoAttack(counting, norm="Linf", eps=eps, version="standard",
                            n_classes=classes, seed=SEED)
        params = {"class": "torchattacks.AutoAttack", "norm": "Linf", "eps": eps,
                  "version": "standard", "n_classes": classes, "seed": SEED,
                  "runs": _sub_attacks(atk._autoattack.attacks),
                  "note": "read off the object: its APGD and APGD-T run 10 steps (the "
                          "reference AutoAttack runs 100) and FAB-T 10 steps; defaults kept, "
                          "as a user gets them"}
    elif method == "apgd-ce":
        atk = ta.APGD(counting, norm="Linf", eps=eps, steps=APGD_STEPS, n_restarts=1,
                      seed=SEED, loss="ce", rho=0.75)
        params = {"class": "torchattacks.APGD", "norm": "Linf", "eps": eps,
                  "steps": APGD_STEPS, "n_restarts": 1, "loss": "ce", "rho": 0.75,
                  "seed": SEED, "note": "steps raised from its default 10 to the reference 100"}
    elif method == "cw-l2":
        steps = CW_BINARY_STEPS * args.cw_steps
        atk = ta.CW(counting, c=1, kappa=0, steps=steps, lr=CW_LR)
        params = {"class": "torchattacks.CW", "c": 1, "kappa": 0, "steps": steps, "lr": CW_LR,
                  "note": f"no binary search over c (fixed c=1, its default): given "
                          f"{CW_BINARY_STEPS} x {args.cw_steps} = {steps} Adam steps, the "
                          "others' whole budget; it returns x where it found nothing"}
    elif method == "deepfool-l2":
        atk = ta.DeepFool(counting, steps=DEEPFOOL_STEPS, overshoot=DEEPFOOL_OVERSHOOT)
        params = {"class": "torchattacks.DeepFool", "steps": DEEPFOOL_STEPS,
                  "overshoot": DEEPFOOL_OVERSHOOT}
    else:
        raise Skip(f"torchattacks has no {method}")

    def run(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        with seeded(SEED):
            adv = atk(x, y)
        return adv.detach(), {}
    return run, params


def _foolbox_runner(method: str, counting: nn.Module, args: argparse.Namespace,
                    eps: float) -> tuple[Runner, dict[str, Any]]:
    import foolbox as fb

    fmodel = fb.PyTorchModel(counting, bounds=(0.0, 1.0))
    if method == "standard":
        pgd = fb.attacks.LinfPGD(steps=FB_STEPS, random_start=True)
        fmn = fb.attacks.LInfFMNAttack(steps=FB_STEPS)
        params = {"cascade": "LinfPGD on every image, then LInfFMNAttack (clipped to eps) on "
                             "the images PGD did not fool, by foolbox's own success flags",
                  "LinfPGD": {"steps": FB_STEPS, "rel_stepsize": pgd.rel_stepsize,
                              "abs_stepsize": pgd.abs_stepsize, "random_start": True},
                  "LInfFMNAttack": {"steps": FB_STEPS, "max_stepsize": fmn.max_stepsize,
                                    "gamma": fmn.gamma,
                                    "binary_search_steps": fmn.binary_search_steps},
                  "eps": eps, "seed": f"torch global, {SEED}",
                  "note": "foolbox 3 has no AutoAttack, APGD, FAB or Square"}

        def run_std(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
            with seeded(SEED):
                _, adv, ok = pgd(fmodel, x, y, epsilons=eps)
                rest = (~ok).nonzero()[:, 0]
                by_fmn = 0
                if rest.numel():
                    _, adv2, ok2 = fmn(fmodel, x[rest], y[rest], epsilons=eps)
                    adv = adv.clone()
                    take = rest[ok2]
                    adv[take] = adv2[ok2]
                    ok = ok.clone()
                    ok[take] = True
                    by_fmn = int(ok2.sum())
            return adv.detach(), {"claimed": ok.cpu(), "fooled_by_pgd": int(ok.sum()) - by_fmn,
                                  "fooled_by_fmn": by_fmn}
        return run_std, params
    table: dict[str, tuple[Any, dict[str, Any]]] = {
        "cw-l2": (fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=CW_BINARY_STEPS, steps=args.cw_steps, stepsize=CW_LR,
            confidence=0, initial_const=1e-3, abort_early=True),
            {"class": "foolbox.attacks.L2CarliniWagnerAttack",
             "binary_search_steps": CW_BINARY_STEPS, "steps": args.cw_steps,
             "stepsize": CW_LR, "confidence": 0, "initial_const": 1e-3, "abort_early": True}),
        "deepfool-l2": (fb.attacks.L2DeepFoolAttack(
            steps=DEEPFOOL_STEPS, candidates=10, overshoot=DEEPFOOL_OVERSHOOT),
            {"class": "foolbox.attacks.L2DeepFoolAttack", "steps": DEEPFOOL_STEPS,
             "candidates": 10, "overshoot": DEEPFOOL_OVERSHOOT, "loss": "logits"}),
        "deepfool-linf": (fb.attacks.LinfDeepFoolAttack(
            steps=DEEPFOOL_STEPS, candidates=10, overshoot=DEEPFOOL_OVERSHOOT),
            {"class": "foolbox.attacks.LinfDeepFoolAttack", "steps": DEEPFOOL_STEPS,
             "candidates": 10, "overshoot": DEEPFOOL_OVERSHOOT, "loss": "logits"}),
        "fmn-l2": (fb.attacks.L2FMNAttack(steps=FMN_STEPS),
                   {"class": "foolbox.attacks.L2FMNAttack", "steps": FMN_STEPS,
                    "other": "defaults (max_stepsize 1, gamma 0.05, binary_search_steps 10)"}),
        "fmn-linf": (fb.attacks.LInfFMNAttack(steps=FMN_STEPS),
                     {"class": "foolbox.attacks.LInfFMNAttack", "steps": FMN_STEPS,
                      "other": "defaults (max_stepsize 1, gamma 0.05, "
                               "binary_search_steps 10)"}),
    }
    if method not in table:
        raise Skip(f"foolbox has no {method}")
    attack, params = table[method]
    params = {**params, "call": "attack(fmodel, x, y, epsilons=None): unbounded",
              "seed": f"torch global, {SEED}"}

    def run(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        with seeded(SEED):
            _, adv, ok = attack(fmodel, x, y, epsilons=None)
        return adv.detach(), {"claimed": ok.cpu()}
    return run, params


def _art_runner(method: str, counting: nn.Module, args: argparse.Namespace, eps: float,
                classes: int) -> tuple[Runner, dict[str, Any]]:
    from art.attacks.evasion import (
        AutoAttack,
        AutoProjectedGradientDescent,
        CarliniL2Method,
        DeepFool,
        SquareAttack,
    )

    made: dict[tuple[int, ...], Any] = {}
    params: dict[str, Any]
    stubbed = _stub_multiprocess() if method == "standard" else False

    def apgd(est: Any, loss: str, bs: int) -> Any:
        return AutoProjectedGradientDescent(
            est, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=APGD_STEPS, targeted=False,
            nb_random_init=1, batch_size=bs, loss_type=loss, verbose=False)

    if method == "standard":
        def make(est: Any, bs: int) -> Any:
            attacks = [apgd(est, "cross_entropy", bs), apgd(est, "difference_logits_ratio", bs),
                       SquareAttack(est, norm=np.inf, eps=eps, max_iter=SQUARE_QUERIES,
                                    p_init=0.8, nb_restarts=1, batch_size=bs, verbose=False)]
            return AutoAttack(est, norm=np.inf, eps=eps, eps_step=2 * eps, attacks=attacks,
                              batch_size=bs, targeted=False)
        params = {"class": "art.attacks.evasion.AutoAttack", "norm": "inf", "eps": eps,
                  "eps_step": 2 * eps, "targeted": False,
                  "attacks": "APGD-CE and APGD-DLR (100 iterations, 1 random start, initial "
                             "step 2 eps as in the reference), Square (5,000 iterations, "
                             "p_init 0.8, 1 restart)",
                  "why_not_default": "ART's default set is APGD-CE and APGD-DLR with 5 random "
                                     "starts each, DeepFool and Square with 5 restarts of "
                                     "5,000 iterations: about 5x the work. ART has no FAB, "
                                     "and its targeted mode runs every attack of the set "
                                     "against each of the C-1 targets, so the standard "
                                     "APGD-T is not expressible; APGD-DLR untargeted "
                                     "stands in for it (AutoAttack's 'plus' and 'rand' use it)",
                  "seed": f"numpy global, {SEED}",
                  "multiprocess": ("AutoAttack.generate imports the 'multiprocess' package, "
                                   "which is not installed and which it uses only with "
                                   "parallel_pool_size > 0 (here 0): the bench registered an "
                                   "empty module under that name" if stubbed
                                   else "installed")}
    elif method == "apgd-ce":
        def make(est: Any, bs: int) -> Any:
            return apgd(est, "cross_entropy", bs)
        params = {"class": "art.attacks.evasion.AutoProjectedGradientDescent", "norm": "inf",
                  "eps": eps, "eps_step": 2 * eps, "max_iter": APGD_STEPS,
                  "nb_random_init": 1, "loss_type": "cross_entropy",
                  "note": "nb_random_init 1 (default 5) and eps_step 2 eps (default 0.1) to "
                          "match the reference APGD-CE", "seed": f"numpy global, {SEED}"}
    elif method == "cw-l2":
        def make(est: Any, bs: int) -> Any:
            return CarliniL2Method(est, confidence=0.0, targeted=False, learning_rate=CW_LR,
                                   binary_search_steps=CW_BINARY_STEPS, max_iter=args.cw_steps,
                                   initial_const=0.01, batch_size=bs, verbose=False)
        params = {"class": "art.attacks.evasion.CarliniL2Method",
                  "binary_search_steps": CW_BINARY_STEPS, "max_iter": args.cw_steps,
                  "learning_rate": CW_LR, "initial_const": 0.01, "confidence": 0,
                  "max_halving": 5, "max_doubling": 5, "batch_size": "n (all at once)",
                  "note": "gradient descent with a line search (up to 5 halvings and 5 "
                          "doublings per step), not Adam; it returns x where it found nothing"}
    elif method == "deepfool-l2":
        def make(est: Any, bs: int) -> Any:
            return DeepFool(est, max_iter=DEEPFOOL_STEPS, epsilon=DEEPFOOL_OVERSHOOT,
                            nb_grads=10, batch_size=bs, verbose=False)
        params = {"class": "art.attacks.evasion.DeepFool", "max_iter": DEEPFOOL_STEPS,
                  "epsilon": DEEPFOOL_OVERSHOOT, "nb_grads": 10, "batch_size": "n",
                  "note": "epsilon is its overshoot (default 1e-6, here 0.02 as the others)"}
    else:
        raise Skip(f"ART has no {method} in this bench")

    def run(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        shape = tuple(x.shape[1:])
        if shape not in made:
            made[shape] = make(art_estimator(counting, shape, classes), min(x.shape[0], 128))
        with seeded(SEED):
            adv = made[shape].generate(x.numpy(), y=y.numpy())
        return torch.from_numpy(adv).float(), {}
    return run, params


def _stub_multiprocess() -> bool:
    """Register an empty ``multiprocess`` module if the package is missing; True if so."""
    import importlib.util
    import types

    if importlib.util.find_spec("multiprocess") is not None:
        return False
    sys.modules["multiprocess"] = types.ModuleType("multiprocess")
    return True


# --------------------------------------------------------------------------- one case
def verify(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
           advs: list[torch.Tensor]) -> dict[str, list[Any]]:
    """Per-sample facts about ``advs``, from the bench itself: predictions, norms, box."""
    out: dict[str, list[Any]] = {k: [] for k in (
        "y", "clean_correct", "pred_adv", "linf", "l2", "in_box", "finite", "constant")}
    with torch.no_grad():
        for (x, y), adv in zip(batches, advs, strict=True):
            adv = adv.to(torch.float32)
            if adv.shape != x.shape:
                raise RuntimeError(f"x_adv has shape {tuple(adv.shape)}, x {tuple(x.shape)}")
            pred_clean = torch.cat([net(c).argmax(1) for c in x.split(256)])
            finite = torch.isfinite(adv.flatten(1)).all(1)
            safe = torch.where(finite.view(-1, *[1] * (adv.dim() - 1)), adv, x)
            pred = torch.cat([net(c).argmax(1) for c in safe.split(256)])
            d = (adv.double() - x.double()).flatten(1)
            out["y"] += y.tolist()
            out["clean_correct"] += (pred_clean == y).tolist()
            out["pred_adv"] += pred.tolist()
            out["linf"] += d.abs().amax(1).tolist()
            out["l2"] += d.norm(dim=1).tolist()
            out["in_box"] += ((adv >= 0) & (adv <= 1)).flatten(1).all(1).tolist()
            out["finite"] += finite.tolist()
            # An image with every value equal (foolbox's CW returns all-zero images where it
            # found nothing) is a placeholder, not a perturbation the search found.
            flat = adv.flatten(1)
            x_flat = x.flatten(1)
            out["constant"] += ((flat.amax(1) == flat.amin(1))
                                & (x_flat.amax(1) > x_flat.amin(1))).tolist()
    return out


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in this (fresh) process: time, peak memory, verified per-sample facts."""
    st = load_setting(case.model, args.n)
    counting = CountingModule(st.net).eval()
    runner, params = build_runner(case, st, counting, args)
    # Warm the network (one forward+backward on two samples) so that one-off kernel
    # set-up lands in the baseline; each library's own lazy set-up stays in its run.
    x0 = st.batches[0][0][:2].clone().requires_grad_(True)
    torch.autograd.grad(st.net(x0).sum(), x0)
    counting.reset()
    rss_ok = _reset_peak_rss()
    base = _peak_rss() if rss_ok else 0
    advs: list[torch.Tensor] = []
    claims: list[dict[str, Any]] = []
    wall: list[float] = []
    t_all = time.perf_counter()
    for x, y in st.batches:
        t0 = time.perf_counter()
        adv, extra = runner(x, y)
        wall.append(time.perf_counter() - t0)
        advs.append(adv.detach().cpu())
        claims.append(extra)
    total = time.perf_counter() - t_all
    peak = _peak_rss() - base if rss_ok else None
    facts = verify(st.net, st.batches, advs)
    claimed: list[bool | None] = []
    for (x, _), extra in zip(st.batches, claims, strict=True):
        c = extra.get("claimed")
        claimed += c.tolist() if isinstance(c, torch.Tensor) else [None] * x.shape[0]
    rec: dict[str, Any] = {
        **asdict(case), "params": params, "wall_s": total, "wall_s_per_batch": wall,
        "forward_s": counting.forward_s, "rows": counting.rows, "calls": counting.calls,
        "peak_rss_growth_bytes": peak, "samples": st.names, "labels": st.labels,
        "claimed": claimed, **facts,
        "extra": [{k: v for k, v in e.items() if k != "claimed"} for e in claims],
    }
    if case.part == "robust":
        rec["eps"] = ROBUST_EPS[case.model]
    return rec


# --------------------------------------------------------------------------- grad part
def grad_part(args: argparse.Namespace) -> dict[str, Any]:
    """Which attacks leave ``.grad`` on the user's parameters or change the module's flags."""
    clf, net = load_model(MINNORM_MODEL)
    x, y = load_mnist("test")
    x, y = x[:4], y[:4]
    rows: list[dict[str, Any]] = []

    def probe(lib: str, attack: str, fn: Callable[[nn.Module], None]) -> None:
        fresh, _ = load_model(MINNORM_MODEL)
        fresh = fresh.module.eval()  # the user's module: parameters require grad (as loaded)
        for p in fresh.parameters():
            p.grad = None
        flags = [p.requires_grad for p in fresh.parameters()]
        row: dict[str, Any] = {"library": lib, "attack": attack}
        try:
            with seeded(SEED):
                fn(fresh)
        except Skip as exc:
            row["skipped"] = str(exc)
            rows.append(row)
            return
        except Exception as exc:  # recorded, not fatal: the other probes still run
            row["error"] = f"{type(exc).__name__}: {exc}"
        grads = [p.grad for p in fresh.parameters()]
        row.update({
            "grad_filled": any(g is not None for g in grads),
            "grad_nonzero": any(g is not None and bool(g.abs().sum() > 0) for g in grads),
            "requires_grad_unchanged": [p.requires_grad for p in fresh.parameters()] == flags,
            "training_unchanged": not fresh.training,
        })
        rows.append(row)

    def hw(name: str, module: str, norm: str = "l2", eps: float = math.sqrt(784.0),
           **kw: Any) -> Callable[[nn.Module], None]:
        def fn(m: nn.Module) -> None:
            cls = _need(name, module)
            cls(norm=norm, **_fields(cls, **kw))(TorchClassifier(m, bounds=(0.0, 1.0)), x, y,
                                                 eps=eps)
        return fn

    probe("hoodwink", "CarliniWagner", hw("CarliniWagner", "hoodwink.attacks.cw",
                                          binary_search_steps=1, steps=3))
    probe("hoodwink", "DeepFool", hw("DeepFool", "hoodwink.attacks.deepfool", steps=3))
    probe("hoodwink", "APGD", hw("APGD", "hoodwink.attacks.apgd", norm="linf", eps=0.1,
                                 steps=3))
    import torchattacks as ta

    def tarun(make: Callable[[nn.Module], Any]) -> Callable[[nn.Module], None]:
        def fn(m: nn.Module) -> None:
            make(m)(x, y)
        return fn
    probe("torchattacks", "CW", tarun(lambda m: ta.CW(m, steps=3)))
    probe("torchattacks", "DeepFool", tarun(lambda m: ta.DeepFool(m, steps=3)))
    probe("torchattacks", "APGD", tarun(lambda m: ta.APGD(m, eps=0.1, steps=3)))
    import foolbox as fb

    def fbrun(attack: Any, eps: float | None) -> Callable[[nn.Module], None]:
        def fn(m: nn.Module) -> None:
            attack(fb.PyTorchModel(m, bounds=(0.0, 1.0)), x, y, epsilons=eps)
        return fn
    probe("foolbox", "L2CarliniWagnerAttack",
          fbrun(fb.attacks.L2CarliniWagnerAttack(binary_search_steps=1, steps=3), None))
    probe("foolbox", "L2DeepFoolAttack", fbrun(fb.attacks.L2DeepFoolAttack(steps=3), None))
    probe("foolbox", "LinfPGD (no APGD in foolbox)", fbrun(fb.attacks.LinfPGD(steps=3), 0.1))
    from art.attacks.evasion import AutoProjectedGradientDescent, CarliniL2Method, DeepFool

    def artrun(make: Callable[[Any], Any]) -> Callable[[nn.Module], None]:
        def fn(m: nn.Module) -> None:
            make(art_estimator(m, (1, 28, 28), 10)).generate(x.numpy(), y=y.numpy())
        return fn
    probe("art", "CarliniL2Method", artrun(lambda e: CarliniL2Method(
        e, binary_search_steps=1, max_iter=3, batch_size=4, verbose=False)))
    probe("art", "DeepFool", artrun(lambda e: DeepFool(e, max_iter=3, batch_size=4,
                                                       verbose=False)))
    probe("art", "AutoProjectedGradientDescent", artrun(lambda e: AutoProjectedGradientDescent(
        e, eps=0.1, max_iter=3, nb_random_init=1, batch_size=4, verbose=False)))
    del clf, net
    return {"model": MINNORM_MODEL, "n": 4,
            "how": "a fresh module per probe, in eval mode, parameters requiring grad as "
                   "loaded, every .grad None; the attack runs a few steps on 4 digits; then "
                   "each parameter's .grad is read",
            "probes": rows}


# --------------------------------------------------------------------------- parent
def spawn(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``case`` in a fresh subprocess and return its record."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, __file__, "--child", json.dumps(asdict(case)), "--n", str(args.n),
           "--threads", str(args.threads), "--cw-steps", str(args.cw_steps)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              timeout=args.case_timeout)
    except subprocess.TimeoutExpired:
        return {**asdict(case), "error": f"timed out after {args.case_timeout} s",
                "process_s": time.perf_counter() - t0}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {**asdict(case), "error": f"exit {proc.returncode}: {proc.stderr[-2000:]}",
                "process_s": time.perf_counter() - t0}
    rec: dict[str, Any] = json.loads(lines[-1])
    rec["process_s"] = time.perf_counter() - t0
    return rec


def child_main(spec: str, args: argparse.Namespace) -> int:
    case = Case(**json.loads(spec))
    try:
        rec = grad_part(args) if case.part == "grad" else run_case(case, args)
    except Skip as exc:
        rec = {**asdict(case), "skipped": str(exc)}
    rec["hoodwink_sources"] = hoodwink_sources()
    print(json.dumps(_jsonable(rec), allow_nan=False))
    return 0


# --------------------------------------------------------------------------- figures
def robust_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """Verified and claimed robust accuracy of one ``robust`` case."""
    eps = rec["eps"]
    n = len(rec["y"])
    real = []
    bad_eps = bad_box = 0
    for i in range(n):
        fooled = rec["clean_correct"][i] and rec["pred_adv"][i] != rec["y"][i]
        ok_eps = rec["linf"][i] <= eps + EPS_TOL
        ok_box = rec["in_box"][i] and rec["finite"][i]
        bad_eps += fooled and not ok_eps
        bad_box += fooled and not ok_box
        real.append(fooled and ok_eps and ok_box)
    robust = [rec["clean_correct"][i] and not real[i] for i in range(n)]
    claimed = rec["claimed"]
    claimed_fooled = [
        (c if c is not None else rec["pred_adv"][i] != rec["y"][i]) and rec["clean_correct"][i]
        for i, c in enumerate(claimed)]
    out = {
        "robust_accuracy": sum(robust) / n,
        "clean_accuracy": sum(rec["clean_correct"]) / n,
        "fooled_verified": sum(real),
        "fooled_claimed": sum(claimed_fooled),
        "claim_source": ("the library's own per-sample flags" if any(c is not None
                                                                    for c in claimed)
                         else "the network's prediction on the returned x_adv (the library "
                              "reports no flags)"),
        # Misclassified but outside the ball: a false claim for a peer; for hoodwink the
        # evaluation's kept minimal-norm adversarial of a sample robust at eps (by design).
        "misclassified_outside_eps": bad_eps, "misclassified_outside_box": bad_box,
        "max_linf": max(rec["linf"]),
        "robust": robust,
    }
    for e in rec.get("extra", []):
        if "robust_accuracy_reported" in e:
            out["robust_accuracy_reported"] = e["robust_accuracy_reported"]
    return out


def minnorm_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """Success (claimed, verified) and norms of the verified adversarials of one case."""
    n = len(rec["y"])
    cc = rec["clean_correct"]
    claimed = [(c if c is not None else rec["pred_adv"][i] != rec["y"][i]) and cc[i]
               for i, c in enumerate(rec["claimed"])]
    real = [claimed[i] and rec["pred_adv"][i] != rec["y"][i] and rec["in_box"][i]
            and rec["finite"][i] and rec["l2"][i] > 0 and not rec["constant"][i]
            for i in range(n)]
    l2 = [rec["l2"][i] if real[i] else math.inf for i in range(n)]
    linf = [rec["linf"][i] if real[i] else math.inf for i in range(n)]
    own = [i for i in range(n) if real[i]]
    return {
        "clean_correct": sum(cc),
        "claimed": sum(claimed),
        "verified": sum(real),
        "claimed_not_real": sum(claimed[i] and not real[i] for i in range(n)),
        "claimed_constant_images": sum(claimed[i] and rec["constant"][i] for i in range(n)),
        "success_rate_verified": sum(real) / max(sum(cc), 1),
        "success_rate_claimed": sum(claimed) / max(sum(cc), 1),
        "median_l2": statistics.median(l2[i] for i in own) if own else None,
        "median_linf": statistics.median(linf[i] for i in own) if own else None,
        "per_sample_l2": l2, "per_sample_linf": linf, "real": real,
    }


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Group the case records into the ``robust`` and ``minnorm`` blocks."""
    robust: dict[str, Any] = {}
    minnorm: dict[str, Any] = {}
    for rec in results:
        if rec["part"] == "grad":
            continue
        block = robust if rec["part"] == "robust" else minnorm
        slot = block.setdefault(rec["model"], {}).setdefault(rec["method"], {})
        if "skipped" in rec or "error" in rec:
            slot[rec["library"]] = {k: rec[k] for k in ("skipped", "error") if k in rec}
            continue
        s = robust_summary(rec) if rec["part"] == "robust" else minnorm_summary(rec)
        slot[rec["library"]] = {
            **s, "wall_s": rec["wall_s"], "forward_s": rec["forward_s"], "rows": rec["rows"],
            "peak_rss_growth_mib": (rec["peak_rss_growth_bytes"] / 2**20
                                    if rec["peak_rss_growth_bytes"] is not None else None),
            "params": rec["params"],
        }
    # Medians over the images every library solved: the searches compared on equal ground.
    for methods in minnorm.values():
        for libs in methods.values():
            ok = {k: v for k, v in libs.items() if "real" in v}
            peers = [v for k, v in ok.items() if k in LIBRARIES]
            if not peers:
                continue
            n = len(peers[0]["real"])
            common = [i for i in range(n) if all(v["real"][i] for v in peers)]
            for v in ok.values():
                # The informative no-grid row: over the common images it also solved.
                mine = [i for i in common if v["real"][i]]
                v["common_images"] = len(mine)
                for norm in ("l2", "linf"):
                    v[f"median_{norm}_common"] = (statistics.median(
                        v[f"per_sample_{norm}"][i] for i in mine) if mine else None)
                    v[f"median_{norm}_all"] = statistics.median(v[f"per_sample_{norm}"])
    return {"robust": robust, "minnorm": minnorm}


def targets(record: dict[str, Any]) -> dict[str, Any]:
    """Pass/fail of each target, from the record alone."""
    out: dict[str, Any] = {}
    for model, methods in record.get("robust", {}).items():
        std = methods.get("standard", {})
        hw = std.get("hoodwink", {})
        peers = {k: v for k, v in std.items()
                 if k in LIBRARIES and k != "hoodwink" and "robust_accuracy" in v}
        if "robust_accuracy" not in hw or not peers:
            why = hw.get("skipped") or hw.get("error") or "no peer ran"
            out[f"robust_accuracy_{model}"] = {"pass": None, "why": why}
            out[f"time_{model}"] = {"pass": None, "why": why}
            continue
        best_name, best = min(peers.items(), key=lambda kv: kv[1]["robust_accuracy"])
        ng = std.get(HW_NO_GRID, {})
        out[f"robust_accuracy_{model}"] = {
            "target": "evaluate robust accuracy <= the strongest peer's",
            "hoodwink": hw["robust_accuracy"], "strongest_peer": best_name,
            "peer": best["robust_accuracy"],
            "pass": hw["robust_accuracy"] <= best["robust_accuracy"],
            **({"hoodwink_no_grid": ng["robust_accuracy"],
                "pass_no_grid": ng["robust_accuracy"] <= best["robust_accuracy"]}
               if "robust_accuracy" in ng else {}),
        }
        ta = std.get("torchattacks", {})
        if "wall_s" in ta:
            out[f"time_{model}"] = {
                "target": f"evaluate time <= {TIME_TARGET} x torchattacks AutoAttack's",
                "hoodwink_s": hw["wall_s"], "torchattacks_s": ta["wall_s"],
                "ratio": hw["wall_s"] / ta["wall_s"],
                "pass": hw["wall_s"] <= TIME_TARGET * ta["wall_s"],
            }
    for methods in record.get("minnorm", {}).values():
        for method, libs in methods.items():
            hw = libs.get("hoodwink", {})
            peers = {k: v for k, v in libs.items()
                     if k in LIBRARIES and k != "hoodwink" and "real" in v}
            norms = ("l2",) if method.endswith("l2") else ("linf",)
            for norm in norms:
                name = f"minnorm_{method}_{norm}"
                if "real" not in hw or not peers:
                    out[name] = {"pass": None,
                                 "why": hw.get("skipped") or hw.get("error") or "no peer ran"}
                    continue
                key = f"median_{norm}_common"
                mine = hw[key]
                others = {k: v[key] for k, v in peers.items()}
                all_key = f"median_{norm}_all"
                ng = libs.get(HW_NO_GRID, {})
                ng_med = ng.get(key)
                out[name] = {
                    "target": f"hoodwink's median {norm} <= each peer's, over the images "
                              "every library really solved",
                    "images": hw["common_images"], "hoodwink": mine, "peers": others,
                    "pass": mine is not None and all(v is None or mine <= v
                                                     for v in others.values()),
                    **({"hoodwink_no_grid": ng_med, "images_no_grid": ng["common_images"],
                        "pass_no_grid": all(v is None or ng_med <= v for v in others.values())}
                       if ng_med is not None else {}),
                    "median_all_images": {"hoodwink": hw[all_key],
                                          **{k: v[all_key] for k, v in peers.items()}},
                    "pass_all_images": all(hw[all_key] <= v[all_key] for v in peers.values()),
                }
    return out


def checks(record: dict[str, Any]) -> dict[str, Any]:
    """Known facts about the peers, checked against this run."""
    out: dict[str, Any] = {}
    mn = record.get("minnorm", {}).get(MINNORM_MODEL, {})
    df = mn.get("deepfool-l2", {}).get("torchattacks", {})
    if "success_rate_verified" in df:
        rate = df["success_rate_verified"]
        out["torchattacks_deepfool_fools_about_45_percent"] = {
            "success_rate": rate, "expected": 0.45, "holds": abs(rate - 0.45) <= 0.1,
            "why": "its overshoot multiplies each step, not the total perturbation (the "
                   "DeepFool paper's), and the clamp to [0, 1] after each step cuts the step "
                   "short: traced on a failing digit, the iterates approach the boundary "
                   "from the correct side, the margin shrinking about 6x per step, and never "
                   "cross"}
    cw = mn.get("cw-l2", {}).get("foolbox", {})
    if "claimed" in cw:
        out["foolbox_cw_counts_placeholders_as_successes"] = {
            "claimed": cw["claimed"], "verified": cw["verified"],
            "claimed_constant_images": cw["claimed_constant_images"],
            "holds": cw["claimed_constant_images"] > 0}
    steps = [r.get("steps") for r in record.get("robust", {}).get("mnist-cnn", {})
             .get("standard", {}).get("torchattacks", {}).get("params", {}).get("runs", [])
             if "APGD" in r.get("class", "")]
    if steps:
        out["torchattacks_autoattack_apgd_steps"] = {
            "steps": steps, "reference": 100, "holds": all(s == 10 for s in steps)}
    return out


# --------------------------------------------------------------------------- output
def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def summary(record: dict[str, Any]) -> None:
    rob = record.get("robust", {})
    if rob:
        print("\nrobust: robust accuracy at fixed L∞ eps (verified by the bench; claimed in "
              "brackets)")
        print(f"{'model':20} {'method':9} {'library':19} {'robust acc':>15} {'time s':>8} "
              f"{'peak MiB':>9} {'rows':>9}")
        for model, methods in rob.items():
            for method, libs in methods.items():
                for lib, r in libs.items():
                    if "robust_accuracy" not in r:
                        print(f"{model:20} {method:9} {lib:19} "
                              f"{(r.get('skipped') or r.get('error', ''))[:60]}")
                        continue
                    n = len(r["robust"])
                    claimed = r["clean_accuracy"] - r["fooled_claimed"] / n
                    print(f"{model:20} {method:9} {lib:19} {r['robust_accuracy']:6.2f} "
                          f"({claimed:5.2f}) {r['wall_s']:8.1f} "
                          f"{_fmt(r['peak_rss_growth_mib'], '.1f'):>9} {r['rows']:9d}")
    mn = record.get("minnorm", {})
    if mn:
        print("\nminnorm: success verified/claimed (of clean-correct), median norm over the "
              "images all solved / each library's own")
        print(f"{'method':14} {'library':19} {'success':>13} {'median common':>14} "
              f"{'median own':>11} {'time s':>8} {'peak MiB':>9}")
        for _model, methods in mn.items():
            for method, libs in methods.items():
                norm = "l2" if method.endswith("l2") else "linf"
                for lib, r in libs.items():
                    if "real" not in r:
                        print(f"{method:14} {lib:19} "
                              f"{(r.get('skipped') or r.get('error', ''))[:60]}")
                        continue
                    print(f"{method:14} {lib:19} {r['verified']:5d}/{r['claimed']:<5d}/"
                          f"{r['clean_correct']:<3d} {_fmt(r[f'median_{norm}_common']):>12} "
                          f"{_fmt(r[f'median_{norm}']):>11} {r['wall_s']:8.1f} "
                          f"{_fmt(r['peak_rss_growth_mib'], '.1f'):>9}")
    gr = record.get("grad")
    if gr and "probes" in gr:
        print("\ngrad: .grad left on the user's parameters")
        for p in gr["probes"]:
            state = (p.get("skipped") or p.get("error")
                     or ("FILLED" if p["grad_filled"] else "clean"))
            print(f"  {p['library']:13} {p['attack']:32} {state}")
    for name, t in record.get("targets", {}).items():
        verdict = "pass" if t["pass"] else "MISSED" if t["pass"] is False else "-"
        extra = "" if "pass_no_grid" not in t else (
            f" (without the grid: {'pass' if t['pass_no_grid'] else 'MISSED'})")
        print(f"target {name}: {verdict}{extra}")
    for name, c in record.get("checks", {}).items():
        print(f"check {name}: {'holds' if c['holds'] else 'does NOT hold'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="MNIST digits (default 100)")
    p.add_argument("--only", default=None, help="comma-separated subset of: " + ", ".join(PARTS))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--cw-steps", type=int, default=CW_STEPS,
                   help=f"CW steps per binary-search step (default {CW_STEPS})")
    p.add_argument("--no-grid-variant", action=argparse.BooleanOptionalAction, default=True,
                   help="also run hoodwink without the 8-bit grid (informative)")
    p.add_argument("--models", default=None,
                   help="robust part only on these (comma-separated) of: "
                        + ", ".join(ROBUST_EPS))
    p.add_argument("--imagenet-apgd", action="store_true",
                   help="also run APGD-CE alone on EfficientNet-Lite0 (about 2 min)")
    p.add_argument("--case-timeout", type=int, default=CHILD_TIMEOUT,
                   help="seconds one case may run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON record to write")
    p.add_argument("--rescore", type=Path, default=None,
                   help="recompute the targets of an existing record, rewrite it, print it")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.n < 1 or args.threads < 1 or args.cw_steps < 1:
        p.error("--n, --threads and --cw-steps must be positive")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # the peers' deprecation and training-mode warnings
    logging.getLogger("art").setLevel(logging.ERROR)
    if args.child:
        return child_main(args.child, args)
    if args.rescore is not None:
        record = json.loads(args.rescore.read_text(encoding="utf-8"))
        record.update(summarise(record["cases"]))
        record["targets"] = targets(record)
        record["checks"] = checks(record)
        args.rescore.write_text(json.dumps(_jsonable(record), indent=1, allow_nan=False) + "\n",
                                encoding="utf-8")
        summary(record)
        return 0
    parts = list(PARTS)
    if args.only:
        parts = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in parts if s not in PARTS]
        if bad:
            p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    models = None
    if args.models:
        models = [s.strip() for s in args.models.split(",") if s.strip()]
        bad = [m for m in models if m not in ROBUST_EPS]
        if bad:
            p.error(f"--models: unknown model(s) {bad}; choose from {', '.join(ROBUST_EPS)}")

    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "format_version": 1,
        "benchmark": "peers",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/peers.py", *(argv or sys.argv[1:])]),
        "config": {
            "parts": parts, "robust_models": models or list(ROBUST_EPS), "n": args.n,
            "imagenet_apgd": args.imagenet_apgd, "no_grid_variant": args.no_grid_variant,
            "seed": SEED, "threads": args.threads,
            "robust_eps": ROBUST_EPS, "apgd_steps": APGD_STEPS, "foolbox_steps": FB_STEPS,
            "square_queries": SQUARE_QUERIES, "minnorm_model": MINNORM_MODEL,
            "cw": {"binary_search_steps": CW_BINARY_STEPS, "steps": args.cw_steps,
                   "stepsize": CW_LR},
            "deepfool": {"steps": DEEPFOOL_STEPS, "overshoot": DEEPFOOL_OVERSHOOT},
            "fmn": {"steps": FMN_STEPS}, "eps_tolerance": EPS_TOL,
            "data": {"mnist": "load_mnist('test')[:n] with their true labels",
                     IMAGENET: "the bundled photos (hoodwink.data.photos), each at its own "
                               "size, labelled with the model's own clean prediction"},
            "verification": "x_adv re-classified by the bare network (no library code), "
                            "checked for finite values in [0, 1] and, for robust, L∞ within "
                            f"eps + {EPS_TOL}; a success counts only when all hold",
            "memory": "fresh subprocess per case; VmHWM growth after a /proc/self/clear_refs "
                      "reset once model and data are loaded and warmed. glibc's malloc is "
                      "left as it is (overhead.py pins its mmap threshold, which made ART's "
                      "numpy-heavy CW spend 60 % of its time in the kernel, so timings in "
                      "the same process would be unfair): the figures include glibc's "
                      "cached heap and are approximate",
            "counting": "every library calls the network through CountingModule "
                        "(bench/blackbox.py): rows = per-sample forward passes",
            "targets": {"time_ratio": TIME_TARGET},
        },
        "machine": {**machine_facts(args, torch.device("cpu")), "versions": versions()},
    }
    results: list[dict[str, Any]] = []
    for case in cases(parts, args.no_grid_variant, models, args.imagenet_apgd):
        rec = spawn(case, args)
        if case.part == "grad":
            record["grad"] = rec
        else:
            results.append(rec)
        state = rec.get("skipped") or rec.get("error", "")[-300:] or (
            f"{rec['wall_s']:.1f} s in the attack" if "wall_s" in rec else "done")
        print(f"{case.key:48s} {state} ({rec.get('process_s', 0):.0f} s)", flush=True)
    record.update(summarise(results))
    record["cases"] = results
    record["machine"]["load_average_end"] = os.getloadavg()
    record["total_s"] = time.perf_counter() - t0
    record["targets"] = targets(record)
    record["checks"] = checks(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(record), indent=1, allow_nan=False) + "\n",
                        encoding="utf-8")
    summary(record)
    print(f"wrote {args.out} ({record['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
