"""hoodwink's black-box attacks side by side with torchattacks, foolbox 3 and IBM ART.

Everything runs in one process, on the same MNIST images and the bundled
ConvNet (``hoodwink.zoo.load("mnist-cnn")``), with one torch thread by default:

``square``
    Square L∞ at eps 0.1 and 0.2 with a budget of 1,000 queries per image:
    hoodwink's ``Square`` against ``torchattacks.Square`` and ART's
    ``SquareAttack`` (foolbox 3 has no Square attack, nor any other score-based
    random-search attack). Robust accuracy, mean and median queries per image,
    time per query and the overhead ratio: wall time over the time spent inside
    the network's forward passes, measured in the same run.
``hsj``
    HopSkipJump L2, untargeted: the median L2 of the adversarials at 1,000 and
    at 5,000 queries, hoodwink's ``HopSkipJump`` against foolbox's
    ``HopSkipJumpAttack`` and ART's ``HopSkipJump``.
``imagenet``
    hoodwink's Square L∞ at eps 0.05 with 10,000 queries on EfficientNet-Lite0
    and the bundled photos (untargeted, against the model's own clean label):
    failures and mean/median queries, next to the 73 mean queries the Square
    paper reports for ResNet-50 (Andriushchenko et al., ECCV 2020).

Every model call is counted by :class:`CountingModule`, a wrapper around the
torch network that every library calls: rows (per-sample queries) and calls,
and the seconds spent inside the network's forward pass. Its own bookkeeping
(attributing rows to images, tracing distances) is timed separately and taken
off the wall time, so it burdens no library. hoodwink's ``result.queries`` is
checked against it, sample by sample.

How each peer is configured, and why, is in bench/README.md and in the JSON
record (``config``), parameter by parameter.

Usage::

    python bench/blackbox.py [--n 100] [--repeats 3] [--only square,hsj] [--imagenet]
                             [--threads 1] [--out bench/results/blackbox.json]

Writes ``bench/results/blackbox.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import _peak_rss, _reset_peak_rss, machine_facts  # noqa: E402

from hoodwink import TorchClassifier, zoo  # noqa: E402
from hoodwink.data import load_mnist  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "blackbox.json"
SEED = 0
SQUARE_EPS = (0.1, 0.2)
SQUARE_BUDGET = 1000
HSJ_BUDGETS = (1000, 5000)
IMAGENET_MODEL = "efficientnet-lite0"
IMAGENET_EPS = 0.05
IMAGENET_BUDGET = 10_000
#: Square paper (Andriushchenko et al., ECCV 2020), untargeted L∞ eps 0.05 on ImageNet,
#: ResNet-50, 10,000-query limit: average queries over the successful points.
PAPER_MEAN_QUERIES = 73
OVERHEAD_TARGET = 1.2
#: Whether the default run (no --only) includes the ImageNet part: it does only if it
#: took under 5 minutes on the reference machine (see bench/README.md).
IMAGENET_IN_DEFAULT = True
PARTS = ("square", "hsj", "imagenet")
#: An informative configuration, not counted as a peer in the targets.
TA_P005 = "torchattacks(p_init=0.05)"
TA_GRID = "torchattacks(eps on 8-bit grid)"
INFORMATIVE = (TA_P005, TA_GRID)
LIBRARIES = ("hoodwink", "torchattacks", "foolbox", "art")


class BudgetSpent(Exception):
    """Raised by :class:`CountingModule` when a traced run has used its query limit."""


# --------------------------------------------------------------------------- counting
class CountingModule(nn.Module):
    """Wraps a network: counts rows and calls, times its forward, attributes rows.

    Parameters
    ----------
    inner : nn.Module
        The network every library calls (through its own adapter).

    Notes
    -----
    After :meth:`reset` with ``refs`` and ``radius``, each input row is attributed
    to the reference (original image) within L∞ ``radius`` of it, so per-image
    queries can be read off for libraries that do not report them. After
    :meth:`reset` with ``trace_label``, one image is attacked: every row's L2
    distance to ``refs[0]`` and whether the network misclassifies it are kept,
    so the best adversarial the attack has queried within its first Q queries can
    be read off for any Q; ``limit`` stops the attack (``BudgetSpent``) once
    that many rows have been evaluated.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.reset()

    def reset(self, *, refs: torch.Tensor | None = None, radius: float | None = None,
              trace_label: int | None = None, limit: int | None = None) -> None:
        """Zero the counters and set what to attribute or trace for the next run."""
        self.calls = 0
        self.rows = 0
        self.forward_s = 0.0
        self.bookkeeping_s = 0.0
        self.limit = limit
        self.radius = radius
        self.trace_label = trace_label
        self._refs = refs.detach().flatten(1).float() if refs is not None else None
        self._ref_sq = (self._refs ** 2).sum(1) if self._refs is not None else None
        n = 0 if refs is None else refs.shape[0]
        self.per_sample = torch.zeros(n, dtype=torch.int64)
        self._dist: list[torch.Tensor] = []
        self._adv: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.limit is not None and self.rows >= self.limit:
            raise BudgetSpent(f"{self.rows} queries used (limit {self.limit})")
        if x.dtype != torch.float32:
            # ART's HopSkipJump sends float64 batches at times, which the float32 network
            # refuses; the cast is charged to the caller, outside the timed forward.
            x = x.float()
        t0 = time.perf_counter()
        if x.requires_grad:
            out: torch.Tensor = self.inner(x)
        else:
            with torch.no_grad():
                out = self.inner(x)
        t1 = time.perf_counter()
        self.forward_s += t1 - t0
        self.calls += 1
        self.rows += int(x.shape[0])
        if x.shape[0] and (self.radius is not None or self.trace_label is not None):
            with torch.no_grad():
                self._book(x.detach(), out.detach())
            self.bookkeeping_s += time.perf_counter() - t1
        return out

    def _book(self, x: torch.Tensor, out: torch.Tensor) -> None:
        if self._refs is None or self._ref_sq is None:
            raise RuntimeError("reset(refs=...) first")
        flat = x.flatten(1).float()
        if self.trace_label is not None:
            self._dist.append((flat - self._refs[0]).norm(dim=1))
            self._adv.append(out.argmax(1) != self.trace_label)
            self.per_sample[0] += flat.shape[0]
            return
        # Nearest references in L2 (one matmul), confirmed in L∞: a query of an
        # L∞ attack lies within radius of its own original and of no other.
        assert self.radius is not None
        d2 = (flat ** 2).sum(1, keepdim=True) + self._ref_sq[None] - 2 * flat @ self._refs.T
        k = min(3, self._refs.shape[0])
        cand = d2.topk(k, dim=1, largest=False).indices
        linf = (flat[:, None, :] - self._refs[cand]).abs().amax(2)
        inside = linf <= self.radius + 1e-5
        first = inside.float().argmax(1)
        owner = cand.gather(1, first[:, None])[:, 0]
        lost = ~inside.any(1)
        for r in lost.nonzero()[:, 0].tolist():  # rare: search every reference
            full = (flat[r] - self._refs).abs().amax(1)
            if float(full.min()) > self.radius + 1e-5:
                raise RuntimeError(
                    f"a query lies outside every eps-ball (L∞ {float(full.min()):.4g} > "
                    f"{self.radius}); cannot attribute it to an image"
                )
            owner[r] = full.argmin()
        self.per_sample += torch.bincount(owner, minlength=self.per_sample.numel())

    def best_within(self, budget: int) -> float:
        """Least L2 distance of an adversarial row among the first ``budget`` rows (inf if none)."""
        if not self._dist:
            return math.inf
        dist = torch.cat(self._dist)[:budget]
        adv = torch.cat(self._adv)[:budget]
        return float(dist[adv].min()) if bool(adv.any()) else math.inf


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators, which the peers draw from; restore after."""
    # ART draws from numpy's legacy global generator, so that is what must be seeded.
    np_state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002


# --------------------------------------------------------------------------- data
def mnist_subset(n: int) -> tuple[torch.Tensor, torch.Tensor, list[int], nn.Module, Any]:
    """The first ``n`` bundled MNIST test images the ConvNet classifies correctly."""
    clf = zoo.load("mnist-cnn")
    net = clf.module
    x_all, y_all = load_mnist("test")
    with torch.no_grad():
        pred = torch.cat([net(c) for c in x_all.split(250)]).argmax(1)
    idx = (pred == y_all).nonzero()[:, 0][:n]
    if idx.numel() < n:
        raise SystemExit(f"only {idx.numel()} test images are classified correctly; use --n")
    return x_all[idx].contiguous(), y_all[idx].contiguous(), idx.tolist(), net, clf


def hoodwink_model(counting: CountingModule, clf: TorchClassifier) -> TorchClassifier:
    """A TorchClassifier around ``counting`` with the zoo model's domain."""
    return TorchClassifier(counting, bounds=clf.bounds, preprocessing=clf.preprocessing,
                           levels=clf.levels, batch_size=clf.batch_size,
                           class_names=clf.class_names, input_shape=clf.input_shape)


#: SHA-256 of each hoodwink attack module's file when the bench first loaded it.
LOADED_SOURCES: dict[str, str] = {}


def _hoodwink_attack(name: str) -> Any:
    """A hoodwink attack class by name: re-exported, else from its module; None if absent.

    Records the SHA-256 of the file it comes from, so that the record says which
    code its figures belong to.
    """
    found = getattr(importlib.import_module("hoodwink.attacks"), name, None)
    if found is None:
        with contextlib.suppress(ImportError):
            found = getattr(importlib.import_module(f"hoodwink.attacks.{name.lower()}"), name,
                            None)
    if found is not None:
        path = Path(sys.modules[found.__module__].__file__ or "")
        if path.is_file() and path.name not in LOADED_SOURCES:
            LOADED_SOURCES[path.name] = _sha256(path)
    return found


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_torchattacks_square() -> Any:
    """torchattacks' Square class.

    ``import torchattacks`` imports every attack module; 3.5.1 does so without
    torchvision. Should a version need torchvision at import, the package and
    its ``attacks`` subpackage are registered as bare namespaces, so that only
    ``attack.py`` and ``attacks/square.py`` are executed.
    """
    try:
        from torchattacks.attacks.square import Square as TaSquare
    except ImportError:
        spec = importlib.util.find_spec("torchattacks")
        if spec is None or spec.origin is None:
            raise
        root = Path(spec.origin).parent
        for name, path in (("torchattacks", root), ("torchattacks.attacks", root / "attacks")):
            mod = types.ModuleType(name)
            mod.__path__ = [str(path)]
            sys.modules[name] = mod
        TaSquare = importlib.import_module("torchattacks.attacks.square").Square  # noqa: N806
    return TaSquare


def attack_sources() -> dict[str, Any]:
    """The attack files' SHA-256 as loaded, and whether each is still the same on disk."""
    root = Path(__file__).resolve().parents[1] / "src" / "hoodwink" / "attacks"
    return {name: {"sha256_loaded": digest,
                   "unchanged_since": (root / name).is_file()
                   and _sha256(root / name) == digest}
            for name, digest in sorted(LOADED_SOURCES.items())}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("torch", "numpy", "scipy", "hoodwink", "torchattacks", "foolbox", "eagerpy",
                 "adversarial-robustness-toolbox"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------- square
Runner = Callable[[], tuple[torch.Tensor, dict[str, Any]]]


def square_runners(counting: CountingModule, clf: TorchClassifier, x: torch.Tensor,
                   y: torch.Tensor, eps: float) -> tuple[dict[str, Runner], dict[str, Any],
                                                         dict[str, str]]:
    """One prepared, untimed-set-up run per library, their parameters, and what is skipped."""
    runs: dict[str, Runner] = {}
    params: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    budget = SQUARE_BUDGET

    square_cls = _hoodwink_attack("Square")
    if square_cls is None:
        skipped["hoodwink"] = "hoodwink.attacks.Square not available yet"
    else:
        attack = square_cls(norm="linf", max_queries=budget, seed=SEED)
        model = hoodwink_model(counting, clf)
        params["hoodwink"] = {"attack": repr(attack), "eps": eps,
                              "call": "attack(model, x, y, eps=eps)",
                              "queries": "max_queries counts every model call per image, "
                                         "clean and verification passes included"}

        def run_hw() -> tuple[torch.Tensor, dict[str, Any]]:
            res = attack(model, x, y, eps=eps)
            return res.x_adv, {"queries": res.queries.cpu(), "pred_adv": res.pred_adv.cpu(),
                               "robust_accuracy": res.robust_accuracy()}
        runs["hoodwink"] = run_hw

    try:
        ta_square = load_torchattacks_square()
    except Exception as exc:  # any import failure: record it and go on
        skipped["torchattacks"] = f"import failed: {type(exc).__name__}: {exc}"
    else:
        # Its loop makes at most n_queries calls per image after the initial stripes; with
        # the clean pass before and the check after, that is n_queries + 3 in all.
        ta = ta_square(counting, norm="Linf", eps=eps, n_queries=budget - 3, n_restarts=1,
                       p_init=0.8, loss="margin", resc_schedule=True, seed=SEED, verbose=False)
        params["torchattacks"] = {
            "class": "torchattacks.Square", "norm": "Linf", "eps": eps,
            "n_queries": budget - 3, "n_restarts": 1, "p_init": 0.8, "loss": "margin",
            "resc_schedule": True, "seed": SEED,
            "queries": f"n_queries = {budget} - 3: its clean pass, its initial stripes and its "
                       "final check are model calls too, so at most "
                       f"{budget} per image in all",
        }

        # Informative only (not a peer in the targets): torchattacks with hoodwink's
        # default p_init, which separates the default from the implementation.
        ta05 = ta_square(counting, norm="Linf", eps=eps, n_queries=budget - 3, n_restarts=1,
                         p_init=0.05, loss="margin", resc_schedule=True, seed=SEED,
                         verbose=False)
        params[TA_P005] = {**params["torchattacks"], "p_init": 0.05,
                           "note": "not a documented default: the Square paper's ImageNet "
                                   "value, near hoodwink's small default, for comparison; "
                                   "excluded from the targets"}

        # Informative only: on an 8-bit grid hoodwink's L∞ ball is the grid points within
        # eps of x, i.e. radius floor(255 eps) / 255 (0.098 for eps 0.1); torchattacks at
        # that radius compares the search itself.
        on_grid = math.floor(eps * 255 + 1e-9) / 255
        if clf.levels == 256 and on_grid != eps:
            ta_grid = ta_square(counting, norm="Linf", eps=on_grid, n_queries=budget - 3,
                                n_restarts=1, p_init=0.8, loss="margin", resc_schedule=True,
                                seed=SEED, verbose=False)
            params[TA_GRID] = {**params["torchattacks"], "eps": on_grid,
                               "note": "the radius of hoodwink's ball on the 8-bit grid; "
                                       "excluded from the targets"}

        def runner(a: Any) -> Runner:
            def run_ta() -> tuple[torch.Tensor, dict[str, Any]]:
                with seeded(SEED):  # it seeds torch's global generator; keep that local
                    adv = a(x, y)
                return adv.detach(), {}
            return run_ta
        runs["torchattacks"] = runner(ta)
        runs[TA_P005] = runner(ta05)
        if TA_GRID in params:
            runs[TA_GRID] = runner(ta_grid)

    try:
        from art.attacks.evasion import SquareAttack
        from art.estimators.classification import PyTorchClassifier
    except ImportError as exc:
        skipped["art"] = f"import failed: {exc}"
    else:
        est = PyTorchClassifier(model=counting, loss=nn.CrossEntropyLoss(),
                                input_shape=tuple(x.shape[1:]), nb_classes=10,
                                clip_values=(0.0, 1.0))
        # Each iteration costs up to 3 queries per image still robust (a predict on every
        # image, then the loss before and after the new square), and 3 come first.
        max_iter = (budget - 3) // 3
        art_sq = SquareAttack(est, norm=np.inf, eps=eps, max_iter=max_iter, p_init=0.8,
                              nb_restarts=1, batch_size=128, verbose=False)
        params["art"] = {
            "class": "art.attacks.evasion.SquareAttack", "estimator": "PyTorchClassifier",
            "norm": "inf", "eps": eps, "max_iter": max_iter, "p_init": 0.8, "nb_restarts": 1,
            "batch_size": 128, "loss": "default (logit difference)",
            "adv_criterion": "default (argmax != y)", "seed": f"numpy global, {SEED}",
            "queries": f"max_iter = ({budget} - 3) // 3: 3 queries per iteration per robust "
                       "image plus 3 at the start, so at most "
                       f"{3 + 3 * max_iter} per image",
        }
        x_np, y_np = x.numpy(), y.numpy()

        def run_art() -> tuple[torch.Tensor, dict[str, Any]]:
            with seeded(SEED):
                adv = art_sq.generate(x_np, y=y_np)
            return torch.from_numpy(adv), {}
        runs["art"] = run_art

    skipped["foolbox"] = ("foolbox 3 has no Square attack, nor any score-based random-search "
                          "attack; its black-box attacks are decision-based")
    return runs, params, skipped


def measure_square(lib: str, run: Runner, counting: CountingModule, net: nn.Module,
                   x: torch.Tensor, y: torch.Tensor, eps: float) -> dict[str, Any]:
    """One run: efficacy from a fresh bare forward pass, queries, times, memory."""
    counting.reset(refs=x, radius=eps)
    rss_ok = _reset_peak_rss()
    rss0 = _peak_rss() if rss_ok else 0
    t0 = time.perf_counter()
    x_adv, extra = run()
    wall = time.perf_counter() - t0 - counting.bookkeeping_s
    rss = _peak_rss() - rss0 if rss_ok else None
    x_adv = x_adv.float()
    with torch.no_grad():
        pred = net(x_adv).argmax(1)
    linf = float((x_adv - x).abs().flatten(1).amax(1).max())
    out_of_bounds = bool((x_adv < 0).any() or (x_adv > 1).any())
    q_wrapped = counting.per_sample.clone()
    q = extra.get("queries", q_wrapped)
    fooled = pred != y
    rec: dict[str, Any] = {
        "library": lib,
        "robust_accuracy": float((pred == y).float().mean()),
        "fooled": int(fooled.sum()),
        "queries_mean": float(q.float().mean()),
        "queries_median": float(q.float().median()),
        "queries_max": int(q.max()),
        "queries_mean_fooled": float(q[fooled].float().mean()) if bool(fooled.any()) else None,
        "queries_median_fooled": (float(q[fooled].float().median())
                                  if bool(fooled.any()) else None),
        "total_queries": counting.rows,
        "all_rows_attributed": int(q_wrapped.sum()) == counting.rows,
        "calls": counting.calls,
        "wall_s": wall,
        "forward_s": counting.forward_s,
        "bookkeeping_s_excluded": counting.bookkeeping_s,
        "time_per_query_ms": 1e3 * wall / max(counting.rows, 1),
        "overhead_ratio": wall / counting.forward_s if counting.forward_s else None,
        "peak_rss_growth_bytes": rss,
        "max_linf": linf,
        "within_eps": linf <= eps + 1e-6,
        "within_bounds": not out_of_bounds,
        "on_8bit_grid": bool(torch.equal(torch.round(x_adv * 255) / 255, x_adv)),
        "per_sample_queries": q.tolist(),
    }
    if lib == "hoodwink":
        rec["queries_match_wrapper"] = bool(torch.equal(q.to(torch.int64), q_wrapped))
        rec["total_matches_wrapper"] = int(q.sum()) == counting.rows
        rec["robust_accuracy_reported"] = extra["robust_accuracy"]
        rec["pred_adv_matches_bare_net"] = bool(torch.equal(extra["pred_adv"], pred))
    return rec


def bench_square(args: argparse.Namespace) -> dict[str, Any]:
    x, y, idx, net, clf = mnist_subset(args.n)
    counting = CountingModule(net).eval()
    out: dict[str, Any] = {"indices": idx, "per_eps": []}
    for eps in SQUARE_EPS:
        runs, params, skipped = square_runners(counting, clf, x, y, eps)
        names = list(runs)
        samples: dict[str, list[dict[str, Any]]] = {k: [] for k in names}
        for rep in range(args.repeats):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for lib in order:
                rec = measure_square(lib, runs[lib], counting, net, x, y, eps)
                samples[lib].append(rec)
                print(f"square eps {eps} {lib:26s} rep {rep}: robust acc "
                      f"{rec['robust_accuracy']:.2f}, mean queries {rec['queries_mean']:.1f}, "
                      f"{rec['time_per_query_ms']:.3f} ms/query, overhead "
                      f"{rec['overhead_ratio']:.3f}", flush=True)
        libs = {}
        for lib, recs in samples.items():
            first = recs[0]
            same = all(r["per_sample_queries"] == first["per_sample_queries"]
                       and r["robust_accuracy"] == first["robust_accuracy"] for r in recs)
            libs[lib] = {
                **{k: v for k, v in first.items() if k not in (
                    "wall_s", "forward_s", "time_per_query_ms", "overhead_ratio",
                    "peak_rss_growth_bytes", "bookkeeping_s_excluded")},
                "repeats_identical": same,
                "wall_s": [r["wall_s"] for r in recs],
                "forward_s": [r["forward_s"] for r in recs],
                "bookkeeping_s_excluded": [r["bookkeeping_s_excluded"] for r in recs],
                "time_per_query_ms": statistics.median(r["time_per_query_ms"] for r in recs),
                "overhead_ratio": statistics.median(r["overhead_ratio"] for r in recs),
                "overhead_ratios": [r["overhead_ratio"] for r in recs],
                "peak_rss_growth_bytes": [r["peak_rss_growth_bytes"] for r in recs],
            }
        out["per_eps"].append({"eps": eps, "budget": SQUARE_BUDGET, "params": params,
                               "skipped": skipped, "libraries": libs})
    return out


# --------------------------------------------------------------------------- hsj
def hsj_peer_runners(counting: CountingModule) -> tuple[
        dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None]],
        dict[str, Any], dict[str, str]]:
    """The peers' per-image runners (x of shape (1, ...), label), their parameters, skips.

    Peers have no exact query budget: they run with their documented defaults
    and :class:`CountingModule` stops them after the largest budget; their
    figure at budget Q is the best adversarial they queried within Q queries.
    """
    runs: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None]] = {}
    params: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    try:
        import foolbox as fb
    except ImportError as exc:
        skipped["foolbox"] = f"import failed: {exc}"
    else:
        fmodel = fb.PyTorchModel(counting, bounds=(0.0, 1.0))
        fb_hsj = fb.attacks.HopSkipJumpAttack(
            steps=64, initial_gradient_eval_steps=100, max_gradient_eval_steps=10000,
            stepsize_search="geometric_progression", gamma=1.0, constraint="l2")
        params["foolbox"] = {
            "class": "foolbox.attacks.HopSkipJumpAttack", "model": "PyTorchModel(bounds=(0, 1))",
            "init_attack": "default: LinearSearchBlendedUniformNoiseAttack(steps=50)",
            "steps": 64, "initial_gradient_eval_steps": 100, "max_gradient_eval_steps": 10000,
            "stepsize_search": "geometric_progression", "gamma": 1.0, "constraint": "l2",
            "criterion": "Misclassification(y)", "seed": f"torch global, {SEED}",
        }

        def run_fb(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor | None:
            with seeded(SEED):
                adv = fb_hsj.run(fmodel, xi, fb.criteria.Misclassification(yi))
            return adv.detach()
        runs["foolbox"] = run_fb

    try:
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import PyTorchClassifier
    except ImportError as exc:
        skipped["art"] = f"import failed: {exc}"
    else:
        est = PyTorchClassifier(model=counting, loss=nn.CrossEntropyLoss(),
                                input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0))
        art_hsj = HopSkipJump(est, batch_size=64, targeted=False, norm=2, max_iter=50,
                              max_eval=10000, init_eval=100, init_size=100, verbose=False)
        params["art"] = {
            "class": "art.attacks.evasion.HopSkipJump", "estimator": "PyTorchClassifier",
            "batch_size": 64, "targeted": False, "norm": 2, "max_iter": 50, "max_eval": 10000,
            "init_eval": 100, "init_size": 100, "seed": f"numpy global, {SEED}",
            "note": "its initialisation draws from an unseeded np.random.RandomState(), so "
                    "its figures vary a little from run to run",
        }

        def run_art(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor | None:
            with seeded(SEED):
                adv = art_hsj.generate(xi.numpy(), y=yi.numpy())
            return torch.from_numpy(adv)
        runs["art"] = run_art
    skipped["torchattacks"] = "torchattacks has no HopSkipJump (no decision-based attack)"
    return runs, params, skipped


def hsj_hoodwink(counting: CountingModule, clf: TorchClassifier, net: nn.Module,
                 x: torch.Tensor, y: torch.Tensor) -> dict[str, Any] | None:
    """hoodwink's HopSkipJump on the whole batch (as a user runs it), once per budget."""
    hsj_cls = _hoodwink_attack("HopSkipJump")
    if hsj_cls is None:
        return None
    model = hoodwink_model(counting, clf)
    # A minimum-norm attack: eps only bounds what counts as a success, so it is the
    # diameter of the input box and the result reports the norm reached.
    eps = float(math.sqrt(x[0].numel()))
    out: dict[str, Any] = {"eps": eps, "call": "attack(model, x, y, eps=eps), all images in "
                                               "one call", "runs": {}}
    for q in HSJ_BUDGETS:
        attack = hsj_cls(norm="l2", max_queries=q, seed=SEED)
        counting.reset()
        t0 = time.perf_counter()
        res = attack(model, x, y, eps=eps)
        wall = time.perf_counter() - t0
        x_adv = res.x_adv.float()
        with torch.no_grad():
            pred = net(x_adv).argmax(1)
        l2 = (x_adv - x).flatten(1).norm(dim=1)
        ok = res.success.cpu()
        per = torch.where(ok, res.perturbation_norm.cpu().double(),
                          torch.tensor(math.inf, dtype=torch.float64))
        out["runs"][str(q)] = {
            "attack": repr(attack),
            "median_l2": statistics.median(per.tolist()),
            "failures": int((~ok).sum()),
            "queries_mean": float(res.queries.float().mean()),
            "queries_max": int(res.queries.max()),
            "within_budget": int(res.queries.max()) <= q,
            "total_matches_wrapper": int(res.queries.sum()) == counting.rows,
            "calls": counting.calls,
            "success_matches_bare_net": bool(torch.equal(ok, pred != y)),
            "norm_matches_x_adv": bool(torch.allclose(l2, res.perturbation_norm.float(),
                                                      atol=1e-4)),
            "wall_s": wall, "forward_s": counting.forward_s,
            "overhead_ratio": wall / counting.forward_s if counting.forward_s else None,
            "per_sample_l2": per.tolist(),
            "per_sample_queries": res.queries.tolist(),
        }
        r = out["runs"][str(q)]
        print(f"hsj hoodwink     max_queries {q}: median L2 {r['median_l2']:.3f}, "
              f"{r['failures']} failures, mean queries {r['queries_mean']:.0f}, "
              f"{wall:.1f} s", flush=True)
    out["median_l2"] = {str(q): out["runs"][str(q)]["median_l2"] for q in HSJ_BUDGETS}
    return out


def bench_hsj(args: argparse.Namespace) -> dict[str, Any]:
    x, y, idx, net, clf = mnist_subset(args.n)
    counting = CountingModule(net).eval()
    libs: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    hw = hsj_hoodwink(counting, clf, net, x, y)
    if hw is None:
        skipped["hoodwink"] = "hoodwink.attacks.HopSkipJump not available yet"
    else:
        libs["hoodwink"] = hw
    runs, params, peer_skips = hsj_peer_runners(counting)
    skipped.update(peer_skips)
    top = max(HSJ_BUDGETS)
    for lib, run in runs.items():
        # Each image alone, stopped by the wrapper once it has used the largest budget.
        traced: dict[int, list[float]] = {q: [] for q in HSJ_BUDGETS}
        used: list[int] = []
        errors: list[str] = []
        wall = fwd = 0.0
        finished = 0
        for i in range(x.shape[0]):
            xi, yi = x[i:i + 1], y[i:i + 1]
            counting.reset(refs=xi, trace_label=int(yi), limit=top)
            t0 = time.perf_counter()
            try:
                run(xi, yi)
                finished += 1
            except BudgetSpent:
                pass
            except ValueError as exc:  # foolbox: "init_attack failed for 1.0 of 1 inputs"
                errors.append(f"image {i}: {exc}")
            wall += time.perf_counter() - t0 - counting.bookkeeping_s
            fwd += counting.forward_s
            used.append(counting.rows)
            for q in HSJ_BUDGETS:
                traced[q].append(counting.best_within(q))
        libs[lib] = {
            "median_l2": {str(q): statistics.median(v) for q, v in traced.items()},
            "failures": {str(q): sum(math.isinf(e) for e in v) for q, v in traced.items()},
            "finished_before_budget": finished,
            "errors": errors,
            "queries_mean": statistics.mean(used), "queries_max": max(used),
            "wall_s": wall, "forward_s": fwd, "overhead_ratio": wall / fwd if fwd else None,
            "per_sample_l2": {str(q): v for q, v in traced.items()},
            "per_sample_queries": used,
        }
        print(f"hsj {lib:12s} median L2 " + ", ".join(
            f"{q}: {v:.3f}" for q, v in libs[lib]["median_l2"].items())
            + f"; failures {libs[lib]['failures']}; {wall:.1f} s", flush=True)
    return {"indices": idx, "budgets": list(HSJ_BUDGETS), "params": params,
            "skipped": skipped, "libraries": libs,
            "figure_at_budget": {
                "hoodwink": "median over images of perturbation_norm (L2) of the result of "
                            "HopSkipJump(max_queries=Q), inf where it failed; hoodwink "
                            "returns the nearest adversarial point it queried",
                "peers": "each image attacked alone and stopped after Q model calls: median "
                         "over images of the least L2 of any input it queried within its "
                         "first Q calls that the network misclassifies (what the attack "
                         "could return at Q; inf where none)"}}


# --------------------------------------------------------------------------- imagenet
def bench_imagenet(args: argparse.Namespace) -> dict[str, Any]:
    from hoodwink.data.photos import natural_photos

    square_cls = _hoodwink_attack("Square")
    if square_cls is None:
        return {"skipped": "hoodwink.attacks.Square not available yet"}
    clf = zoo.load(IMAGENET_MODEL)
    full = nn.Sequential(clf.preprocessing, clf.module).eval()  # type: ignore[arg-type]
    counting = CountingModule(full).eval()
    model = TorchClassifier(counting, bounds=clf.bounds, levels=clf.levels,
                            batch_size=clf.batch_size, class_names=clf.class_names)
    attack = square_cls(norm="linf", max_queries=IMAGENET_BUDGET, seed=SEED)
    photos = natural_photos()
    rows = []
    t_all = time.perf_counter()
    for name, img in photos.items():
        with torch.no_grad():
            label = full(img).argmax(1)
        counting.reset()
        t0 = time.perf_counter()
        res = attack(model, img, label, eps=IMAGENET_EPS)
        wall = time.perf_counter() - t0
        rows.append({
            "photo": name, "shape": list(img.shape), "label": int(label),
            "label_name": clf.class_names[int(label)] if clf.class_names else None,
            "success": bool(res.success.all()), "queries": int(res.queries.sum()),
            "wrapper_rows": counting.rows, "pred_adv": int(res.pred_adv[0]),
            "linf": float(res.perturbation_norm[0]), "wall_s": wall,
            "forward_s": counting.forward_s,
        })
        print(f"imagenet {name:10s}: success {rows[-1]['success']}, queries "
              f"{rows[-1]['queries']}, {wall:.1f} s", flush=True)
    q = [r["queries"] for r in rows]
    ok = [r["queries"] for r in rows if r["success"]]
    return {
        "model": IMAGENET_MODEL, "eps": IMAGENET_EPS, "budget": IMAGENET_BUDGET,
        "attack": repr(attack), "labels": "the model's own clean prediction (untargeted)",
        "photos": rows,
        "failures": sum(not r["success"] for r in rows),
        "queries_mean": statistics.mean(q), "queries_median": statistics.median(q),
        "queries_mean_successful": statistics.mean(ok) if ok else None,
        "queries_match_wrapper": all(r["queries"] == r["wrapper_rows"] for r in rows),
        "paper_mean_queries": PAPER_MEAN_QUERIES,
        "paper": "Andriushchenko et al., Square Attack, ECCV 2020: ResNet-50, L∞ eps 0.05, "
                 "untargeted, 10,000 queries, failure rate 0.0%, 73 mean queries over 1,000 "
                 "ImageNet validation images (their count has no clean or verification pass)",
        "wall_s": time.perf_counter() - t_all,
    }


# --------------------------------------------------------------------------- targets
def targets(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sq = record.get("square")
    if sq:
        for block in sq["per_eps"]:
            libs = block["libraries"]
            hw = libs.get("hoodwink")
            peers = {k: v for k, v in libs.items() if k != "hoodwink" and k not in INFORMATIVE}
            key = f"eps_{block['eps']}"
            if hw is None or not peers:
                out[f"square_robust_accuracy_{key}"] = {"pass": None, "why": "not run"}
                continue
            best_name, best = min(peers.items(), key=lambda kv: (kv[1]["robust_accuracy"],
                                                                 kv[1]["queries_mean"]))
            out[f"square_robust_accuracy_{key}"] = {
                "target": "hoodwink robust accuracy <= best peer's, with no more mean queries",
                "hoodwink": [hw["robust_accuracy"], hw["queries_mean"]],
                "best_peer": best_name, "peer": [best["robust_accuracy"], best["queries_mean"]],
                "pass": (hw["robust_accuracy"] <= best["robust_accuracy"]
                         and hw["queries_mean"] <= best["queries_mean"]),
            }
            out[f"square_overhead_{key}"] = {
                "target": f"hoodwink wall / forward time <= {OVERHEAD_TARGET}",
                "hoodwink": hw["overhead_ratio"],
                "pass": hw["overhead_ratio"] <= OVERHEAD_TARGET,
            }
            out[f"square_queries_exact_{key}"] = {
                "target": "result.queries equals the wrapper's count for every image",
                "pass": hw["queries_match_wrapper"] and hw["total_matches_wrapper"],
            }
    hsj = record.get("hsj")
    if hsj:
        libs = hsj["libraries"]
        hw = libs.get("hoodwink")
        for q in hsj["budgets"]:
            name = f"hsj_median_l2_{q}"
            if hw is None:
                out[name] = {"pass": None, "why": "hoodwink HopSkipJump not run"}
                continue
            per = {lib: [_num(e) for e in (v["runs"][str(q)]["per_sample_l2"] if lib == "hoodwink"
                                          else v["per_sample_l2"][str(q)])]
                   for lib, v in libs.items()}
            # Where a library found no adversarial (no start: random noise that the network
            # never misclassifies), its distance is infinite; the images every library
            # solved compare the searches themselves.
            common = [i for i in range(len(per["hoodwink"]))
                      if all(math.isfinite(v[i]) for v in per.values())]
            med_all = {lib: statistics.median(v) for lib, v in per.items()}
            med_common = ({lib: statistics.median(v[i] for i in common) for lib, v in per.items()}
                          if common else {})
            mine = med_common.get("hoodwink", math.inf)
            out[name] = {
                "target": "hoodwink's median L2 < each peer's, at equal queries, over the "
                          "images every library solved",
                "images_solved_by_all": len(common),
                "failures": {lib: sum(not math.isfinite(e) for e in v) for lib, v in per.items()},
                "median_l2_common": med_common,
                "median_l2_all_images": med_all,
                "pass": bool(common) and all(mine < v for lib, v in med_common.items()
                                             if lib != "hoodwink"),
                "pass_all_images": all(med_all["hoodwink"] < v for lib, v in med_all.items()
                                       if lib != "hoodwink"),
            }
    im = record.get("imagenet")
    if im and "failures" in im:
        out["imagenet_no_failures"] = {"target": "0 failures", "failures": im["failures"],
                                       "pass": im["failures"] == 0}
    return out


def _num(v: Any) -> float:
    """A number of the record: the strings "inf", "-inf" and "nan" back as floats."""
    return float(v)


def summary(record: dict[str, Any]) -> None:
    sq = record.get("square")
    if sq:
        print("\nSquare L∞, 1,000 queries")
        print(f"{'eps':>5} {'library':32} {'robust acc':>10} {'mean q':>8} {'median q':>8} "
              f"{'ms/query':>9} {'overhead':>9}")
        for block in sq["per_eps"]:
            for lib, r in block["libraries"].items():
                print(f"{block['eps']:5} {lib:32} {r['robust_accuracy']:10.2f} "
                      f"{r['queries_mean']:8.1f} {r['queries_median']:8.1f} "
                      f"{r['time_per_query_ms']:9.3f} {r['overhead_ratio']:9.3f}")
    hsj = record.get("hsj")
    if hsj:
        print("\nHopSkipJump L2, median L2 at budget")
        for lib, r in hsj["libraries"].items():
            print(f"  {lib:13} all images: " + "  ".join(
                f"{q}: {_num(v):.3f}" for q, v in r["median_l2"].items()))
        for q in hsj["budgets"]:
            t = record["targets"].get(f"hsj_median_l2_{q}", {})
            if t.get("median_l2_common"):
                print(f"  at {q}, the {t['images_solved_by_all']} images all solved: " + "  ".join(
                    f"{lib} {v:.3f}" for lib, v in t["median_l2_common"].items()))
    im = record.get("imagenet")
    if im and "failures" in im:
        print(f"\nImageNet Square: {im['failures']} failures, mean queries "
              f"{im['queries_mean']:.1f}, median {im['queries_median']:.1f} "
              f"(paper: {PAPER_MEAN_QUERIES})")
    for name, t in record["targets"].items():
        print(f"target {name}: {'pass' if t['pass'] else 'FAIL' if t['pass'] is False else '-'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="MNIST images (default 100)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed Square runs per library and eps (median; default 3)")
    p.add_argument("--only", default=None,
                   help="comma-separated subset of: " + ", ".join(PARTS))
    p.add_argument("--imagenet", action="store_true", help="also run the ImageNet part")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON record to write")
    p.add_argument("--rescore", type=Path, default=None,
                   help="recompute the targets of an existing record, rewrite it, print it")
    args = p.parse_args(argv)
    if args.rescore is not None:
        record = json.loads(args.rescore.read_text(encoding="utf-8"))
        record["targets"] = targets(record)
        args.rescore.write_text(json.dumps(_jsonable(record), indent=1, allow_nan=False) + "\n",
                                encoding="utf-8")
        summary(record)
        return 0
    if args.only:
        parts = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in parts if s not in PARTS]
        if bad:
            p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    else:
        parts = ["square", "hsj"] + (["imagenet"] if args.imagenet or IMAGENET_IN_DEFAULT
                                     else [])
    if args.imagenet and "imagenet" not in parts:
        parts.append("imagenet")
    if args.n < 1 or args.repeats < 1 or args.threads < 1:
        p.error("--n, --repeats and --threads must be positive")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # the peers' deprecation and training-mode warnings
    # ART logs a warning for each image whose random start is not adversarial; the
    # record counts those failures.
    logging.getLogger("art").setLevel(logging.ERROR)

    facts = machine_facts(args, torch.device("cpu"))
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "format_version": 1,
        "benchmark": "blackbox",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/blackbox.py", *(argv or sys.argv[1:])]),
        "config": {
            "parts": parts, "n": args.n, "repeats": args.repeats, "seed": SEED,
            "model": "mnist-cnn", "data": "load_mnist('test'): the first n images the "
                                          "ConvNet classifies correctly",
            "square": {"norm": "linf", "eps": list(SQUARE_EPS), "budget": SQUARE_BUDGET},
            "hsj": {"norm": "l2", "budgets": list(HSJ_BUDGETS), "targeted": False},
            "imagenet": {"model": IMAGENET_MODEL, "eps": IMAGENET_EPS,
                         "budget": IMAGENET_BUDGET},
            "targets": {"overhead_ratio": OVERHEAD_TARGET},
            "counting": "CountingModule around the torch network: rows = per-sample "
                        "queries; forward_s = time inside the network's forward; its own "
                        "attribution and tracing time is subtracted from wall times",
            "memory": "peak RSS growth: VmHWM after a /proc/self/clear_refs reset, minus "
                      "the RSS at the reset (glibc's cached heap makes it approximate)",
        },
        "machine": {**facts, "versions": versions()},
    }
    if "square" in parts:
        record["square"] = bench_square(args)
    if "hsj" in parts:
        record["hsj"] = bench_hsj(args)
    if "imagenet" in parts:
        record["imagenet"] = bench_imagenet(args)
    record["machine"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    record["total_s"] = time.perf_counter() - t0
    # Which code the figures come from: each attack file as it was when first imported.
    record["attack_sources"] = attack_sources()
    record["targets"] = targets(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(record), indent=1, allow_nan=False) + "\n",
                        encoding="utf-8")
    summary(record)
    print(f"wrote {args.out} ({record['total_s']:.0f} s)")
    return 0


def _jsonable(v: Any) -> Any:
    """``v`` with numpy scalars as Python numbers and infinities as the string "inf"."""
    if isinstance(v, dict):
        return {k: _jsonable(e) for k, e in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(e) for e in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else "nan"
    return v


if __name__ == "__main__":
    sys.exit(main())
