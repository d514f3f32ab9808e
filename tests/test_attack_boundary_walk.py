"""BoundaryWalk: closed-form distances on linear models, budgets, the anytime prefix, grids."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from hoodwink import TorchClassifier
from hoodwink.attacks.boundary_walk import BoundaryWalk
from hoodwink.errors import ConfigError
from hoodwink.models.base import Capabilities

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")]

D = 20
LOWER, UPPER = -4.0, 4.0
#: Larger than any distance inside the box: "report the norm reached".
BIG = 100.0


class LabelOnly:
    """A label-only model over a TorchClassifier; counts (and can log) what it is asked."""

    def __init__(self, inner: TorchClassifier) -> None:
        self.inner = inner
        self.rows = 0
        self.keep_log = False
        self.log: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(differentiable=False, output="labels")

    @property
    def num_classes(self) -> int:
        return self.inner.num_classes

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.bounds

    @property
    def levels(self) -> int | None:
        return self.inner.levels

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        pred = self.inner.predict(x)
        if self.keep_log:
            self.log.append((x.clone(), pred.clone()))
        return pred


def linear(seed: int = 0, d: int = D, c: int = 2) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, c).eval()


def data(net: nn.Linear, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs in [-1, 1]^d with the model's own labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, net.in_features, generator=g) * 2 - 1
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    return x, y


def two_class_distance(net: nn.Linear, x: torch.Tensor, norm: str) -> torch.Tensor:
    """|margin| / ‖w_0 - w_1‖ (dual norm): the distance to the one decision hyperplane."""
    w, b = net.weight.detach().double(), net.bias.detach().double()
    dw = w[0] - w[1]
    margin = (x.double() @ dw + (b[0] - b[1])).abs()
    return margin / (dw.norm() if norm == "l2" else dw.abs().sum())


# ---------------------------------------------------------------------- efficacy
def test_l2_reaches_the_closed_form_distance() -> None:
    """On one hyperplane the walk ends within 0.1 % of margin / ‖Δw‖₂, never below it."""
    net = linear()
    x, y = data(net, 8)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = BoundaryWalk(max_queries=2000)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    ratio = r.perturbation_norm.double() / two_class_distance(net, x, "l2")
    assert float(ratio.min()) >= 1 - 1e-5
    assert float(ratio.max()) <= 1.001


def test_linf_tracks_the_linf_norm_within_a_baseline_margin() -> None:
    """L∞: never below margin / ‖Δw‖₁, and well below where the walk started."""
    net = linear()
    x, y = data(net, 8)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    exact = two_class_distance(net, x, "linf")
    short = BoundaryWalk(norm="linf", max_queries=40)(model, x, y, eps=BIG)
    long = BoundaryWalk(norm="linf", max_queries=1500)(model, x, y, eps=BIG)
    assert bool(long.success.all())
    ratio = long.perturbation_norm.double() / exact
    assert float(ratio.min()) >= 1 - 1e-5
    assert float(ratio.median()) <= 1.4
    assert bool((long.perturbation_norm <= short.perturbation_norm).all())
    assert float(long.perturbation_norm.median()) < 0.5 * float(short.perturbation_norm.median())


def test_targeted_success_with_three_classes() -> None:
    net = linear(c=3)
    x, y = data(net, 8)
    target = (y + 1) % 3
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = BoundaryWalk(max_queries=800)(model, x, y, target=target, eps=BIG)
    assert bool(r.success.all()) and torch.equal(r.pred_adv, target)
    w, b = net.weight.detach().double(), net.bias.detach().double()
    s = x.double() @ w.T + b
    margin = s.gather(1, y[:, None])[:, 0] - s.gather(1, target[:, None])[:, 0]
    bound = margin / (w[y] - w[target]).norm(dim=1)
    assert bool((r.perturbation_norm.double() >= bound * (1 - 1e-5)).all())
    assert not bool((model.predict(x) == target).any())  # a no-op succeeds on none


def test_success_at_eps_just_above_the_closed_form_and_not_below() -> None:
    net = linear()
    x, y = data(net, 8)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    exact = two_class_distance(net, x, "l2")
    attack = BoundaryWalk(max_queries=800)
    above = [attack(model, x[i:i + 1], y[i:i + 1], eps=1.05 * float(exact[i])).success
             for i in range(5)]
    assert bool(torch.cat(above).all())
    below = [attack(model, x[i:i + 1], y[i:i + 1], eps=0.98 * float(exact[i])).success
             for i in range(2)]
    assert not bool(torch.cat(below).any())


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("n", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_budget_never_exceeded_and_queries_exact(n: int, budget: int, norm: str) -> None:
    net = linear(c=3)
    x, y = data(net, n)
    model = LabelOnly(TorchClassifier(net, bounds=(LOWER, UPPER)))
    r = BoundaryWalk(norm=norm, max_queries=budget)(model, x, y, eps=BIG)
    assert int(r.queries.max()) <= budget
    assert int(r.queries.sum()) == model.rows
    if budget >= 101:  # it walks until fewer than the two queries of a step are left
        assert int(r.queries.min()) >= budget - 1


def test_anytime_a_small_budget_is_exactly_a_prefix_of_a_larger_one() -> None:
    """A run of budget B asks the first B - 1 questions of a run of 4B (the last query is
    the base class's verification), and returns the nearest adversarial point among them."""
    net = linear()
    x, y = data(net, 1)
    logs = []
    results = []
    for budget in (120, 480):
        model = LabelOnly(TorchClassifier(net, bounds=(LOWER, UPPER)))
        model.keep_log = True
        results.append(BoundaryWalk(max_queries=budget)(model, x, y, eps=BIG))
        logs.append((torch.cat([p for p, _ in model.log[:-1]]),
                     torch.cat([q for _, q in model.log[:-1]])))
    (ps, ls), (pl, ll) = logs
    k = ps.shape[0]
    assert k in (118, 119) and pl.shape[0] in (478, 479)  # two queries a step
    assert torch.equal(ps, pl[:k]) and torch.equal(ls, ll[:k])
    dist = (ps[ls != y[0]] - x[0]).norm(dim=1)
    assert math.isclose(float(dist.min()), float(results[0].perturbation_norm[0]),
                        rel_tol=1e-5)
    assert float(results[1].perturbation_norm[0]) <= float(dist.min())


def test_stop_at_eps_saves_queries() -> None:
    net = linear()
    x, y = data(net, 6)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    eps = float(two_class_distance(net, x, "l2").max()) * 2
    full = BoundaryWalk(max_queries=600)(model, x, y, eps=eps)
    early = BoundaryWalk(max_queries=600, stop_at_eps=True)(model, x, y, eps=eps)
    assert bool(full.success.all()) and bool(early.success.all())
    assert int(early.queries.max()) < 300 < int(full.queries.min())


# ---------------------------------------------------------------------- grids and models
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_grid_and_per_feature_bounds(norm: str) -> None:
    """levels=256 and per-feature bounds: on the grid, in the box; steps far below a grid
    step still move (random rounding), so the walk gets well below its start."""
    torch.manual_seed(2)
    net = nn.Linear(6, 3).eval()
    with torch.no_grad():
        net.bias.zero_()
    lower = torch.linspace(-2.0, -0.5, 6)
    upper = lower + torch.linspace(2.5, 4.0, 6)
    model = TorchClassifier(net, bounds=(lower, upper), levels=256)
    g = torch.Generator().manual_seed(5)
    x = lower + torch.round(torch.rand(12, 6, generator=g) * 255) / 255 * (upper - lower)
    y = model.predict(x)
    assert len(set(y.tolist())) == 3
    short = BoundaryWalk(norm=norm, max_queries=30)(model, x, y, eps=BIG)
    r = BoundaryWalk(norm=norm, max_queries=800)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    k = (r.x_adv - lower) / (upper - lower) * 255
    assert float((k - k.round()).abs().max()) < 1e-3
    assert bool(((r.x_adv >= lower) & (r.x_adv <= upper)).all())
    assert torch.equal(r.pred_adv, model.predict(r.x_adv))
    assert float(r.perturbation_norm.median()) < 0.7 * float(short.perturbation_norm.median())


def test_runs_on_a_label_only_model() -> None:
    net = linear(c=3)
    x, y = data(net, 5)
    model = LabelOnly(TorchClassifier(net, bounds=(LOWER, UPPER)))
    r = BoundaryWalk(max_queries=300)(model, x, y, eps=BIG)
    assert bool(r.success.all())


def test_eps_zero_and_already_misclassified() -> None:
    net = linear(c=3)
    x, y = data(net, 4)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r0 = BoundaryWalk(max_queries=100)(model, x, y, eps=0.0)
    assert torch.equal(r0.x_adv, x) and r0.queries.tolist() == [2] * 4
    wrong = y.clone()
    wrong[0] = (y[0] + 1) % 3
    r = BoundaryWalk(max_queries=100)(model, x, wrong, eps=BIG)
    assert torch.equal(r.x_adv[0], x[0]) and int(r.queries[0]) == 2


def test_fixed_seed_reproduces_and_seeds_differ() -> None:
    net = linear()
    x, y = data(net, 4)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    a = BoundaryWalk(max_queries=200, seed=5)(model, x, y, eps=BIG)
    b = BoundaryWalk(max_queries=200, seed=5)(model, x, y, eps=BIG)
    c = BoundaryWalk(max_queries=200, seed=6)(model, x, y, eps=BIG)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    assert not torch.equal(a.x_adv, c.x_adv)


def test_progress_ends_at_the_budget() -> None:
    net = linear()
    x, y = data(net, 2)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    seen: list[tuple[int, int]] = []
    BoundaryWalk(max_queries=60)(model, x, y, eps=BIG,
                                 progress=lambda d, t, m: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (60, 60)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("name", "value"), [
    ("spherical_step", 0.0), ("spherical_step", 1.5), ("spherical_step", math.nan),
    ("source_step", 0.0), ("source_step", 0.6), ("step_adaptation", 1.0),
    ("step_adaptation", 11.0), ("stop_at_eps", "no"), ("batch_starts", 0), ("norm", "l1"),
    ("max_queries", 1),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of BoundaryWalk"):
        BoundaryWalk(**{name: value})


def test_declares_its_threat_model() -> None:
    assert BoundaryWalk.threat == "labels"
    assert BoundaryWalk.minimum_norm
    assert BoundaryWalk.supports_targeted
    assert set(BoundaryWalk.supported_norms) == {"l2", "linf"}
