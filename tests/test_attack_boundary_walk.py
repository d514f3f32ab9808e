"""BoundaryWalk: closed-form distances on linear models, budgets, the anytime prefix, grids."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from _helpers import (
    BIG,
    LOWER,
    UPPER,
    Counting,
    assert_seed_reproduces,
    assert_within_budget,
    first_rows,
    label_grid,
    labelled_inputs,
    pairwise_l2_bound,
    progress_of,
    seeded_linear,
)
from hoodwink import TorchClassifier
from hoodwink.attacks.boundary_walk import BoundaryWalk
from hoodwink.errors import ConfigError

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")]


def two_class_distance(net: nn.Linear, x: torch.Tensor, norm: str) -> torch.Tensor:
    """|margin| / ‖w_0 - w_1‖ (dual norm): the distance to the one decision hyperplane."""
    w, b = net.weight.detach().double(), net.bias.detach().double()
    dw = w[0] - w[1]
    margin = (x.double() @ dw + (b[0] - b[1])).abs()
    return margin / (dw.norm() if norm == "l2" else dw.abs().sum())


# ---------------------------------------------------------------------- efficacy
def test_l2_reaches_the_closed_form_distance() -> None:
    """On one hyperplane the walk ends within 0.1 % of margin / ‖Δw‖₂, never below it."""
    net = seeded_linear()
    x, y = labelled_inputs(net, 8)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = BoundaryWalk(max_queries=2000)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    ratio = r.perturbation_norm.double() / two_class_distance(net, x, "l2")
    assert float(ratio.min()) >= 1 - 1e-5
    assert float(ratio.max()) <= 1.001


def test_linf_tracks_the_linf_norm_within_a_baseline_margin() -> None:
    """L∞: never below margin / ‖Δw‖₁, and well below where the walk started."""
    net = seeded_linear()
    x, y = labelled_inputs(net, 8)
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
    net = seeded_linear(c=3)
    x, y = labelled_inputs(net, 8)
    target = (y + 1) % 3
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = BoundaryWalk(max_queries=800)(model, x, y, target=target, eps=BIG)
    assert bool(r.success.all()) and torch.equal(r.pred_adv, target)
    bound = pairwise_l2_bound(net, x, y, target)
    assert bool((r.perturbation_norm.double() >= bound * (1 - 1e-5)).all())
    assert not bool((model.predict(x) == target).any())  # a no-op succeeds on none


def test_success_at_eps_just_above_the_closed_form_and_not_below() -> None:
    net = seeded_linear()
    x, y = labelled_inputs(net, 8)
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
    net = seeded_linear(c=3)
    x, y = labelled_inputs(net, n)
    model = Counting(TorchClassifier(net, bounds=(LOWER, UPPER)), output="labels")
    r = BoundaryWalk(norm=norm, max_queries=budget)(model, x, y, eps=BIG)
    assert_within_budget(r, model.rows, budget)
    if budget >= 101:  # it walks until fewer than the two queries of a step are left
        assert int(r.queries.min()) >= budget - 1


def test_anytime_a_small_budget_is_exactly_a_prefix_of_a_larger_one() -> None:
    """A run of budget B asks the first B - 1 questions of a run of 4B (the last query is
    the base class's verification), and returns the nearest adversarial point among them."""
    net = seeded_linear()
    x, y = labelled_inputs(net, 1)
    logs = []
    results = []
    for budget in (120, 480):
        model = Counting(TorchClassifier(net, bounds=(LOWER, UPPER)), output="labels",
                         record=True)
        results.append(BoundaryWalk(max_queries=budget)(model, x, y, eps=BIG))
        logs.append((first_rows(model.seen), first_rows(model.answers)))
    (ps, ls), (pl, ll) = logs
    k = ps.shape[0]
    assert k in (118, 119) and pl.shape[0] in (478, 479)  # two queries a step
    assert torch.equal(ps, pl[:k]) and torch.equal(ls, ll[:k])
    dist = (ps[ls != y[0]] - x[0]).norm(dim=1)
    assert math.isclose(float(dist.min()), float(results[0].perturbation_norm[0]),
                        rel_tol=1e-5)
    assert float(results[1].perturbation_norm[0]) <= float(dist.min())


def test_stop_at_eps_saves_queries() -> None:
    net = seeded_linear()
    x, y = labelled_inputs(net, 6)
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
    case = label_grid(12)
    assert len(set(case.y.tolist())) == 3
    short = BoundaryWalk(norm=norm, max_queries=30)(case.model, case.x, case.y, eps=BIG)
    r = BoundaryWalk(norm=norm, max_queries=800)(case.model, case.x, case.y, eps=BIG)
    case.check(r)
    assert float(r.perturbation_norm.median()) < 0.7 * float(short.perturbation_norm.median())


def test_runs_on_a_label_only_model() -> None:
    net = seeded_linear(c=3)
    x, y = labelled_inputs(net, 5)
    model = Counting(TorchClassifier(net, bounds=(LOWER, UPPER)), output="labels")
    r = BoundaryWalk(max_queries=300)(model, x, y, eps=BIG)
    assert bool(r.success.all())


def test_eps_zero_and_already_misclassified() -> None:
    net = seeded_linear(c=3)
    x, y = labelled_inputs(net, 4)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r0 = BoundaryWalk(max_queries=100)(model, x, y, eps=0.0)
    assert torch.equal(r0.x_adv, x) and r0.queries.tolist() == [2] * 4
    wrong = y.clone()
    wrong[0] = (y[0] + 1) % 3
    r = BoundaryWalk(max_queries=100)(model, x, wrong, eps=BIG)
    assert torch.equal(r.x_adv[0], x[0]) and int(r.queries[0]) == 2


def test_fixed_seed_reproduces_and_seeds_differ() -> None:
    net = seeded_linear()
    x, y = labelled_inputs(net, 4)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    assert_seed_reproduces(
        lambda s: BoundaryWalk(max_queries=200, seed=s)(model, x, y, eps=BIG), 5)


def test_progress_ends_at_the_budget() -> None:
    net = seeded_linear()
    x, y = labelled_inputs(net, 2)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    seen = progress_of(BoundaryWalk(max_queries=60), model, x, y, eps=BIG)
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
