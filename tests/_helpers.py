"""Helpers shared by test modules (fixtures live in conftest.py).

Import them as ``from _helpers import ...``: pytest puts ``tests/`` on the path
for its conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hoodwink import AttackResult, CallableClassifier, TorchClassifier
from hoodwink.models.base import Capabilities, OutputKind

#: A user's model file: a 3-class linear model on 2x3 inputs where class c scores
#: 4 * x[0, c], so the true class of an input is the argmax of its first row
#: (see :func:`uint8_samples`). ``factory()`` returns the network.
LINEAR_NET_SRC = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            for c in range(3):
                self.fc.weight[c, c] = 4.0

    def forward(self, x):
        return self.fc(x.flatten(1))


def factory():
    return Net()
'''


def uint8_samples(n: int = 12, seed: int = 0) -> np.ndarray:
    """``n`` uint8 inputs of shape (2, 3) for :data:`LINEAR_NET_SRC`.

    The first row of each holds distinct values, so its argmax (the true class)
    has no ties.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 2, 3), dtype=np.uint8)
    for i in range(n):
        x[i, 0] = rng.choice(256, 3, replace=False)
    return x


#: Shapes of the tiny linear model of :func:`linear_net`: N samples, D features, C classes.
N, D, C = 4, 6, 3


def linear_net() -> nn.Module:
    """A seeded ``nn.Linear(D, C)`` in eval mode."""
    torch.manual_seed(0)
    return nn.Linear(D, C).eval()


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """N seeded inputs in [0, 1) of D features, with labels 0, 1, 2, 0."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(N, D, generator=g), torch.tensor([0, 1, 2, 0])


# ====================================================================== black-box attacks
# Models that watch what an attack asks, small linear models with closed-form answers,
# and the checks every black-box attack test makes (budgets, seeds, grids, progress).


# ---------------------------------------------------------------------- watching models
class Recorder(nn.Module):
    """Wraps a network; keeps a copy of every non-empty batch it is called on.

    Each row of a batch is one query, so :attr:`rows` is what the model was asked.

    Parameters
    ----------
    inner : nn.Module
        The network that answers.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[torch.Tensor] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Record ``x`` (when it has rows) and answer with ``inner(x)``."""
        if x.shape[0]:
            self.calls.append(x.detach().clone())
        out: torch.Tensor = self.inner(x)
        return out

    @property
    def rows(self) -> int:
        """Rows of every batch seen so far."""
        return sum(c.shape[0] for c in self.calls)


class Counting:
    """A hoodwink model that answers like ``inner`` and counts every input row it is asked about.

    Parameters
    ----------
    inner : hoodwink model
        The model that answers (a ``TorchClassifier``, ``CallableClassifier``, ...).
    output : {"logits", "probabilities", "labels"} or None
        None: the capabilities of ``inner``. Otherwise a black box that gives this
        output and no gradients (``"labels"``: a decision-based model).
    record : bool
        Keep a copy of every non-empty batch in :attr:`seen` and of its answer in
        :attr:`answers`.
    """

    def __init__(self, inner: Any, *, output: OutputKind | None = None,
                 record: bool = False) -> None:
        self.inner = inner
        self.rows = 0
        self.record = record
        self.seen: list[torch.Tensor] = []
        self.answers: list[torch.Tensor] = []
        self._caps = None if output is None else Capabilities(differentiable=False,
                                                              output=output)

    @property
    def capabilities(self) -> Capabilities:
        """Those of ``inner``, or the black box given by ``output``."""
        caps: Capabilities = self.inner.capabilities if self._caps is None else self._caps
        return caps

    @property
    def num_classes(self) -> int:
        """The number of classes of ``inner``."""
        return int(self.inner.num_classes)

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bounds of ``inner``."""
        bounds: tuple[torch.Tensor, torch.Tensor] = self.inner.bounds
        return bounds

    @property
    def levels(self) -> int | None:
        """The quantisation levels of ``inner``."""
        levels: int | None = self.inner.levels
        return levels

    def _answer(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        if self.record and x.shape[0] > 0:
            self.seen.append(x.detach().clone())
            self.answers.append(out.detach().clone())
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The labels of ``inner``; ``x.shape[0]`` queries."""
        out: torch.Tensor = self.inner.predict(x)
        return self._answer(x, out)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The scores of ``inner``; ``x.shape[0]`` queries."""
        out: torch.Tensor = self.inner.scores(x)
        return self._answer(x, out)


class LabelsOnly:
    """A 2-class model in [0, 1] that answers with labels only: class 1 where the sum exceeds 1."""

    capabilities = Capabilities(differentiable=False, output="labels")
    num_classes = 2
    bounds = (torch.tensor(0.0), torch.tensor(1.0))
    levels = None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class 1 where the features of a row add up to more than 1."""
        return (x.flatten(1).sum(1) > 1).long()


def threshold_labels() -> CallableClassifier:
    """A label-only ``CallableClassifier`` in [0, 1]: class 1 where feature 0 exceeds 0.5."""
    return CallableClassifier(lambda b: (b[:, 0] > 0.5).astype(np.int64), num_classes=2,
                              bounds=(0, 1), output="labels")


def probability_model(net: nn.Module, num_classes: int) -> CallableClassifier:
    """``net`` in [0, 1] behind a ``CallableClassifier`` that answers with softmax probabilities."""
    def fn(batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = torch.softmax(net(torch.from_numpy(batch)).detach(), dim=1).numpy()
        return out

    return CallableClassifier(fn, num_classes=num_classes, bounds=(0, 1), output="probabilities")


# ---------------------------------------------------------------------- binary linear models
def binary_linear(d: int, seed: int = 0) -> tuple[nn.Linear, torch.Tensor]:
    """A 2-class float64 linear model whose score difference is ``w . x`` (class 1 when > 0).

    Returns
    -------
    net : nn.Linear
        The model, in eval mode, without bias.
    w : torch.Tensor, shape (d,)
        Its direction.
    """
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    lin = nn.Linear(d, 2, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-w / 2, w / 2]))
    return lin.eval(), w


def binary_distance(w: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Smallest perturbation of each (flattened) row of ``x`` that reaches ``w . x = 0``.

    ``|w . x| / ||w||_1`` for ``norm="linf"``, ``|w . x| / ||w||_2`` for ``norm="l2"``
    (the dual norms), in the box-free case.
    """
    return (x.flatten(1) @ w).abs() / (w.abs().sum() if norm == "linf" else w.norm())


def best_target_margin(net: nn.Linear, x: torch.Tensor, target: torch.Tensor, eps: float,
                       lo: float, hi: float) -> torch.Tensor:
    """Per sample, the largest ``min_j z_t - z_j`` over the L∞ ball within the bounds (an LP).

    Positive where the target can be reached, negative where it cannot.
    """
    from scipy.optimize import linprog

    w, b = net.weight.detach().double().numpy(), net.bias.detach().double().numpy()
    out = []
    for xi, t in zip(x.double().numpy(), target.tolist(), strict=True):
        others = [j for j in range(w.shape[0]) if j != t]
        # Variables (x', s); maximise s subject to (w_j - w_t) x' + s <= b_t - b_j.
        a_ub = [list(w[j] - w[t]) + [1.0] for j in others]
        b_ub = [b[t] - b[j] for j in others]
        bounds = [(max(lo, v - eps), min(hi, v + eps)) for v in xi] + [(None, None)]
        res = linprog([0.0] * len(xi) + [-1.0], A_ub=a_ub, b_ub=b_ub, bounds=bounds)
        out.append(-res.fun)
    return torch.tensor(out)


# ---------------------------------------------------------------------- multi-class linear models
#: Features and classes of :func:`gaussian_linear` and :func:`interior_inputs` by default.
WIDE_D, WIDE_C = 20, 3


def gaussian_linear(seed: int = 0, d: int = WIDE_D, c: int = WIDE_C) -> nn.Linear:
    """A linear model with standard normal weights from a local seed, no bias, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Linear(d, c)
    with torch.no_grad():
        net.weight.copy_(torch.randn(c, d, generator=g))
        net.bias.zero_()
    return net.eval()


def interior_inputs(n: int, d: int = WIDE_D, seed: int = 1) -> torch.Tensor:
    """Inputs in [0.3, 0.7]: an L∞ ball of radius up to 0.3 never meets the bounds (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, d, generator=g)


def _label_change_distance(net: nn.Linear, x: torch.Tensor, norm: str) -> torch.Tensor:
    w = net.weight.detach().double()
    out: torch.Tensor = net(x)
    z = out.detach().double()
    y = z.argmax(dim=1)
    dw = w[y][:, None, :] - w[None]
    gaps = (z.gather(1, y[:, None]) - z) / (dw.abs().sum(dim=2) if norm == "linf"
                                           else dw.norm(dim=2))
    gaps[torch.arange(len(y)), y] = torch.inf
    return gaps.min(dim=1).values


def linf_distance(net: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Closed form: the smallest L∞ perturbation that changes a linear model's label."""
    return _label_change_distance(net, x, "linf")


def l2_distance(net: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Closed form: the smallest L2 perturbation that changes a linear model's label."""
    return _label_change_distance(net, x, "l2")


# ---------------------------------------------------------------------- minimum-norm cases
#: The box of the minimum-norm cases; their inputs (:func:`labelled_inputs`) lie in [-1, 1].
LOWER, UPPER = -4.0, 4.0
#: Larger than any distance inside the box: "report the norm reached".
BIG = 100.0


def seeded_linear(seed: int = 0, d: int = WIDE_D, c: int = 2) -> nn.Linear:
    """``nn.Linear(d, c)`` in eval mode, initialised by torch after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return nn.Linear(d, c).eval()


def labelled_inputs(net: nn.Linear, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs in [-1, 1]^d and the model's own labels (so all are classified "correctly")."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, net.in_features, generator=g) * 2 - 1
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    return x, y


def pairwise_l2_bound(net: nn.Linear, x: torch.Tensor, y: torch.Tensor,
                      target: torch.Tensor) -> torch.Tensor:
    """L2 distance from each input to the hyperplane where its target ties with its label.

    ``margin(y, t) / ||w_y - w_t||_2``: no targeted perturbation can be shorter.
    """
    w, b = net.weight.detach().double(), net.bias.detach().double()
    s = x.double() @ w.T + b
    margin = s.gather(1, y[:, None])[:, 0] - s.gather(1, target[:, None])[:, 0]
    bound: torch.Tensor = margin / (w[y] - w[target]).norm(dim=1)
    return bound


# ---------------------------------------------------------------------- grids and boxes
def on_grid(x: torch.Tensor, lo: Any, hi: Any, levels: int, tol: float = 1e-4) -> bool:
    """Whether every value of ``x`` is within ``tol`` grid steps of one of ``levels`` points."""
    k = (x - lo) / (hi - lo) * (levels - 1)
    return bool(((k - k.round()).abs() < tol).all())


def assert_within_eps(result: AttackResult, eps: float) -> None:
    """No perturbation of ``result`` above ``eps`` (up to 1e-5)."""
    assert bool((result.perturbation_norm <= eps + 1e-5).all()), \
        f"a perturbation above eps={eps}: {result.perturbation_norm.max()}"


@dataclass(frozen=True)
class GridCase:
    """A model with per-feature bounds ``[lower, upper]`` on a grid, and inputs ``x`` on it."""

    model: TorchClassifier
    x: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor

    def assert_in_box(self, points: torch.Tensor) -> None:
        """Every value of ``points`` within the bounds."""
        assert bool(((points >= self.lower) & (points <= self.upper)).all()), "out of the box"


@dataclass(frozen=True)
class TabularGrid(GridCase):
    """Tabular data on a 17-level grid with per-feature bounds, before a recording 3-class net.

    Build it with :func:`tabular_grid`.
    """

    y: torch.Tensor
    rec: Recorder

    def check(self, result: AttackResult, eps: float) -> None:
        """Every query and the result on the grid and in the bounds, within eps; one success."""
        for call in self.rec.calls:
            assert on_grid(call, self.lower, self.upper, 17), "a query off the grid"
            self.assert_in_box(call)
        assert on_grid(result.x_adv, self.lower, self.upper, 17), "a result off the grid"
        assert_within_eps(result, eps)
        assert int(result.success.sum()) >= 1, "no sample fooled"


def tabular_grid(d: int) -> TabularGrid:
    """9 inputs of ``d`` features on a 17-level grid in per-feature bounds, labelled by the net."""
    torch.manual_seed(0)
    lo = torch.linspace(-2.0, 0.0, d)
    hi = lo + torch.linspace(1.0, 16.0, d)
    net = nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    rec = Recorder(net)
    model = TorchClassifier(rec, bounds=(lo.numpy(), hi.numpy()), levels=17)
    g = torch.Generator().manual_seed(0)
    x = lo + torch.round(torch.rand(9, d, generator=g) * 16) / 16 * (hi - lo)
    with torch.no_grad():
        y = net(x).argmax(1)
    return TabularGrid(model, x, lo, hi, y, rec)


@dataclass(frozen=True)
class LabelGrid(GridCase):
    """Per-feature bounds and an 8-bit grid on 6 features, before a bias-free 3-class linear model.

    Build it with :func:`label_grid`.
    """

    y: torch.Tensor

    def check(self, result: AttackResult) -> None:
        """All fooled, on the grid, in the box, and the reported predictions are the model's."""
        assert bool(result.success.all()), "a sample not fooled"
        assert on_grid(result.x_adv, self.lower, self.upper, 256, tol=1e-3), "off the grid"
        self.assert_in_box(result.x_adv)
        # What the attack saw at its points is what the verification pass sees.
        assert torch.equal(result.pred_adv, self.model.predict(result.x_adv))


def label_grid(n: int) -> LabelGrid:
    """``n`` grid inputs (seed 5) labelled by :func:`seeded_linear` ``(2, 6, 3)``, bias zeroed."""
    net = seeded_linear(seed=2, d=6, c=3)
    with torch.no_grad():
        net.bias.zero_()
    lower = torch.linspace(-2.0, -0.5, 6)
    upper = lower + torch.linspace(2.5, 4.0, 6)
    model = TorchClassifier(net, bounds=(lower, upper), levels=256)
    g = torch.Generator().manual_seed(5)
    x = lower + torch.round(torch.rand(n, 6, generator=g) * 255) / 255 * (upper - lower)
    return LabelGrid(model, x, lower, upper, model.predict(x))


@dataclass(frozen=True)
class ScoreGrid(GridCase):
    """Per-feature bounds, an 8-bit grid on :data:`WIDE_D` features, :func:`gaussian_linear` behind.

    Build it with :func:`score_grid`.
    """

    step: torch.Tensor

    def check(self, result: AttackResult, eps: float) -> None:
        """The result on the grid (whole steps from ``lower``), in the box and within eps."""
        k = (result.x_adv - self.lower) / self.step
        assert torch.allclose(k, k.round(), atol=1e-3), "off the grid"
        self.assert_in_box(result.x_adv)
        assert_within_eps(result, eps)


def score_grid() -> ScoreGrid:
    """6 inputs (seed 2) on the grid of per-feature bounds in [-1, 3]."""
    lower = torch.linspace(-1.0, 0.0, WIDE_D)
    upper = lower + torch.linspace(1.0, 3.0, WIDE_D)
    model = TorchClassifier(gaussian_linear(), bounds=(lower, upper), levels=256)
    step = (upper - lower) / 255
    g = torch.Generator().manual_seed(2)
    x = lower + torch.round(torch.rand(6, WIDE_D, generator=g) * 255) * step
    return ScoreGrid(model, x, lower, upper, step)


# ---------------------------------------------------------------------- small cases
def tiny_case() -> tuple[TorchClassifier, torch.Tensor]:
    """A 5-feature, 2-class linear model in [0, 1] (after ``manual_seed(0)``) and 3 inputs."""
    torch.manual_seed(0)
    model = TorchClassifier(nn.Linear(5, 2).eval(), bounds=(0, 1))
    return model, torch.rand(3, 5, generator=torch.Generator().manual_seed(0))


def mislabelled_batch() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    """A 6-feature, 3-class linear model in [0, 1], 8 inputs, and labels wrong for the first 3."""
    torch.manual_seed(0)
    net = nn.Linear(6, 3).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(8, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = net(x).argmax(1)
    y = pred.clone()
    y[:3] = (pred[:3] + 1) % 3  # wrong at x
    return model, x, y


# ---------------------------------------------------------------------- checks
def assert_within_budget(result: AttackResult, rows: int, budget: int, *,
                         spent: bool = False) -> None:
    """No sample above ``budget`` queries, and the counts add up to the ``rows`` the model saw.

    Parameters
    ----------
    result : AttackResult
        What the attack returned.
    rows : int
        Input rows the model was asked about (a :class:`Counting` or :class:`Recorder` count).
    budget : int
        The attack's ``max_queries``.
    spent : bool
        Also check that samples wrong at x cost the clean and the verification pass only
        (2 queries), and that a correctly classified sample still not fooled used its whole
        budget.
    """
    top, total = int(result.queries.max()), int(result.queries.sum())
    assert top <= budget, f"a sample used {top} queries, above max_queries={budget}"
    assert total == rows, f"{total} queries reported, {rows} rows asked"
    if spent:
        assert bool((result.queries[~result.clean_correct] == 2).all()), \
            f"a sample wrong at x cost other than 2: {result.queries.tolist()}"
        robust = result.clean_correct & ~result.success
        assert bool((result.queries[robust] == budget).all()), \
            f"a sample never fooled stopped short of {budget}: {result.queries.tolist()}"


def assert_seed_reproduces(run: Callable[[int], AttackResult], seed: int) -> None:
    """``run(seed)`` twice gives the same points and counts; ``run(seed + 1)`` other points."""
    a, b, c = run(seed), run(seed), run(seed + 1)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries), \
        f"seed {seed} did not reproduce"
    assert not torch.equal(a.x_adv, c.x_adv), f"seeds {seed} and {seed + 1} gave the same points"


def progress_of(attack: Callable[..., AttackResult], model: Any, *args: Any,
                **kwargs: Any) -> list[tuple[int, int]]:
    """The ``(done, total)`` pairs one call ``attack(model, *args, **kwargs)`` reports."""
    seen: list[tuple[int, int]] = []
    attack(model, *args, progress=lambda d, t, m: seen.append((d, t)), **kwargs)
    return seen


def rows_asked(attack: Callable[..., AttackResult], model: Any, *args: Any,
               output: OutputKind | None = None, **kwargs: Any) -> torch.Tensor:
    """Every input row one call ``attack(model, *args, **kwargs)`` asks about, in order.

    The base class's clean and verification passes included; ``output`` as for
    :class:`Counting`.
    """
    counting = Counting(model, output=output, record=True)
    attack(counting, *args, **kwargs)
    return torch.cat(counting.seen)


def first_rows(seen: Sequence[torch.Tensor]) -> torch.Tensor:
    """The recorded batches, less the last (the base class's verification pass), as one tensor."""
    return torch.cat(list(seen[:-1]))


def load_bench(name: str) -> Any:
    """The benchmark script ``bench/<name>.py`` as a module (its tables render the docs)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
