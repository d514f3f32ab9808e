"""HopSkipJump: closed-form distances on linear models, budgets, grids, starts, validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
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
    label_grid,
    labelled_inputs,
    pairwise_l2_bound,
    progress_of,
    rows_asked,
    seeded_linear,
)
from hoodwink import TorchClassifier
from hoodwink.attacks.hopskipjump import HopSkipJump
from hoodwink.errors import ConfigError

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")]

D, C = 20, 3


def closed_form(net: nn.Linear, x: torch.Tensor, y: torch.Tensor,
                norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest untargeted distance (margin / ‖w_y - w_k‖ dual norm), and whether the
    nearest point of it lies inside the box (only then is it the answer)."""
    w, b = net.weight.detach().double(), net.bias.detach().double()
    xd = x.double()
    s = xd @ w.T + b
    best = torch.full((x.shape[0],), math.inf, dtype=torch.float64)
    inside = torch.zeros(x.shape[0], dtype=torch.bool)
    for k in range(w.shape[0]):
        dw = w[y] - w[k]
        margin = s.gather(1, y[:, None])[:, 0] - s[:, k]
        if norm == "l2":
            dist = margin / dw.norm(dim=1)
            foot = xd - (margin / dw.norm(dim=1) ** 2)[:, None] * dw
        else:
            dist = margin / dw.abs().sum(dim=1)
            foot = xd - dist[:, None] * dw.sign()
        dist = torch.where(y == k, torch.full_like(dist, math.inf), dist)
        ok = ((foot >= LOWER) & (foot <= UPPER)).all(dim=1)
        closer = dist < best
        best = torch.where(closer, dist, best)
        inside = torch.where(closer, ok, inside)
    return best, inside


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize(("norm", "median_tol", "max_tol"), [("l2", 1.015, 1.03),
                                                             ("linf", 1.03, 1.08)])
def test_reaches_the_closed_form_distance_on_a_linear_model(norm: str, median_tol: float,
                                                            max_tol: float) -> None:
    """Within a few percent of margin / ‖Δw‖ (two classes: one hyperplane), never below it
    (that would be a false success)."""
    net = seeded_linear()
    x, y = labelled_inputs(net, 16)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = HopSkipJump(norm=norm, max_queries=3000)(model, x, y, eps=BIG)
    best, inside = closed_form(net, x, y, norm)
    assert bool(r.success.all())
    ratio = (r.perturbation_norm.double() / best)[inside]
    assert int(inside.sum()) >= 12
    assert float(ratio.min()) >= 1 - 1e-5
    assert float(ratio.median()) <= median_tol
    assert float(ratio.max()) <= max_tol


def test_success_at_a_budget_just_above_the_closed_form_and_not_below() -> None:
    """At eps = 1.1 x the smallest distance nearly every sample falls; at 0.95 x none can."""
    net = seeded_linear()
    x, y = labelled_inputs(net, 16)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    best, inside = closed_form(net, x, y, "l2")
    x, y, best = x[inside], y[inside], best[inside]
    attack = HopSkipJump(max_queries=2000)
    above = [attack(model, x[i:i + 1], y[i:i + 1], eps=1.1 * float(best[i])).success
             for i in range(x.shape[0])]
    assert float(torch.cat(above).float().mean()) >= 0.9
    below = [attack(model, x[i:i + 1], y[i:i + 1], eps=0.95 * float(best[i])).success
             for i in range(4)]
    assert not bool(torch.cat(below).any())


def test_targeted_success_and_norms_above_the_pairwise_bound() -> None:
    """Every sample reaches its target; no norm is below margin(y, t) / ‖w_y - w_t‖."""
    net = seeded_linear(c=4)
    x, y = labelled_inputs(net, 12)
    target = (y + 1) % 4
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = HopSkipJump(max_queries=1500)(model, x, y, target=target, eps=BIG)
    assert bool(r.success.all())
    assert torch.equal(r.pred_adv, target)
    bound = pairwise_l2_bound(net, x, y, target)
    assert bool((r.perturbation_norm.double() >= bound * (1 - 1e-5)).all())
    # A no-op attack (x itself) succeeds on none of them: the attack did the work.
    assert not bool((model.predict(x) == target).any())


def test_more_queries_give_smaller_perturbations_on_images() -> None:
    """On (1, 12, 12) inputs (coarse probes first), 4x the queries shrink the median norm."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(144, 3)).eval()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 12, 12, generator=g)
    model = TorchClassifier(net, bounds=(0, 1))
    y = model.predict(x)
    few = HopSkipJump(max_queries=300)(model, x, y, eps=BIG)
    many = HopSkipJump(max_queries=1200)(model, x, y, eps=BIG)
    assert bool(few.success.all()) and bool(many.success.all())
    assert float(many.perturbation_norm.median()) < 0.8 * float(few.perturbation_norm.median())
    w = net[1].weight.detach().double()
    s = net(x).detach().double()
    lower = torch.full((8,), math.inf, dtype=torch.float64)
    for k in range(3):
        m = s.gather(1, y[:, None])[:, 0] - s[:, k]
        dk = m / (w[y] - w[k]).norm(dim=1)
        lower = torch.minimum(lower, torch.where(y == k, math.inf, dk))
    assert bool((many.perturbation_norm.double() >= lower * (1 - 1e-5)).all())


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("n", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_budget_never_exceeded_and_queries_exact(n: int, budget: int, norm: str) -> None:
    """Per sample at most max_queries, and the reported count is every row the model saw."""
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, n)
    model = Counting(TorchClassifier(net, bounds=(LOWER, UPPER)), output="labels")
    r = HopSkipJump(norm=norm, max_queries=budget)(model, x, y, eps=BIG)
    assert_within_budget(r, model.rows, budget)
    if budget >= 101:  # minimum-norm: the budget is spent, up to a shortened last iteration
        assert int(r.queries.min()) >= budget - 25


def test_stop_at_eps_saves_queries() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 8)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    full = HopSkipJump(max_queries=1000)(model, x, y, eps=3.0)
    early = HopSkipJump(max_queries=1000, stop_at_eps=True)(model, x, y, eps=3.0)
    assert torch.equal(early.success, full.success) and bool(full.success.all())
    assert int(early.queries.max()) < 200 < int(full.queries.min())


def test_anytime_a_small_budget_is_a_prefix_of_a_larger_one() -> None:
    """Until its last (shortened) iteration, a run of budget B asks what a run of 3B asks."""
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 1)
    short, long = (rows_asked(HopSkipJump(max_queries=budget),
                              TorchClassifier(net, bounds=(LOWER, UPPER)), x, y, eps=BIG,
                              output="labels")
                   for budget in (300, 900))
    same = (short == long[:short.shape[0]]).all(dim=1)
    prefix = int(same.long().cumprod(0).sum())
    assert prefix >= 150  # the start, its binary search and the first iterations
    assert prefix < short.shape[0] - 1  # then the last iteration is cut to fit the budget


# ---------------------------------------------------------------------- grids, bounds, models
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_grid_and_per_feature_bounds(norm: str) -> None:
    """levels=256 and per-feature bounds: results on the grid, in the box, and adversarial."""
    case = label_grid(16)
    assert len(set(case.y.tolist())) == 3
    r = HopSkipJump(norm=norm, max_queries=600, gamma=0.1)(case.model, case.x, case.y, eps=BIG)
    case.check(r)
    # And it got somewhere: far nearer than the uniform noise it started from.
    side = case.upper - case.lower
    assert float(r.perturbation_norm.median()) < 0.5 * float(
        side.norm() if norm == "l2" else side.max())


def test_runs_on_a_label_only_model() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 6)
    model = Counting(TorchClassifier(net, bounds=(LOWER, UPPER)), output="labels")
    r = HopSkipJump(max_queries=500)(model, x, y, eps=BIG)
    assert bool(r.success.all())


def test_targets_that_noise_never_reaches_start_from_the_batch() -> None:
    """Class 2 is a slab |a.x| < 1e-5 that noise never hits; a batch input in it is the start."""
    a = torch.ones(D) / math.sqrt(D)
    net = nn.Linear(D, 3).eval()
    with torch.no_grad():
        net.weight.copy_(torch.stack([1000 * a, -1000 * a, torch.zeros(D)]))
        net.bias.copy_(torch.tensor([0.0, 0.0, 0.01]))
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, D, generator=g) * 2 - 1
    x[5] -= (x[5] @ a) * a  # on the hyperplane a.x = 0: class 2
    y = model.predict(x)
    assert y[:5].tolist() != [2] * 5 and int(y[5]) == 2 and 2 not in y[:5].tolist()
    target = torch.tensor([2, 2, 2, 2, 2, 0])
    r = HopSkipJump(max_queries=400)(model, x, y, target=target, eps=BIG)
    assert bool(r.success[:5].all())
    dist_to_start = (x[:5] - x[5]).norm(dim=1)
    assert bool((r.perturbation_norm[:5] <= dist_to_start + 1e-5).all())
    # Without the batch there is no start: those samples fail and come back as x.
    alone = HopSkipJump(max_queries=400, batch_starts=False)(
        model, x[:5], y[:5], target=2, eps=BIG)
    assert not bool(alone.success.any())
    assert torch.equal(alone.x_adv, x[:5])
    assert int(alone.queries.max()) <= 400


def test_samples_adversarial_at_x_cost_two_queries() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 5)
    wrong = y.clone()
    wrong[:2] = (y[:2] + 1) % C
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = HopSkipJump(max_queries=200)(model, x, wrong, eps=BIG)
    assert torch.equal(r.x_adv[:2], x[:2])
    assert r.queries[:2].tolist() == [2, 2]
    assert int(r.queries[2:].min()) > 100


def test_eps_zero_returns_x_without_searching() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 4)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    r = HopSkipJump(max_queries=200)(model, x, y, eps=0.0)
    assert torch.equal(r.x_adv, x)
    assert r.queries.tolist() == [2, 2, 2, 2]


# ---------------------------------------------------------------------- seeds and progress
def test_fixed_seed_reproduces_and_seeds_differ() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 6)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    assert_seed_reproduces(
        lambda s: HopSkipJump(max_queries=300, seed=s)(model, x, y, eps=BIG), 3)


def test_progress_counts_queries_up_to_the_budget() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 3)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    seen = progress_of(HopSkipJump(max_queries=150), model, x, y, eps=BIG)
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (150, 150)
    assert {t for _, t in seen} == {150}


def test_global_state_untouched() -> None:
    net = seeded_linear(c=C)
    x, y = labelled_inputs(net, 3)
    model = TorchClassifier(net, bounds=(LOWER, UPPER))
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 - the global state is what is under test
    HopSkipJump(max_queries=100)(model, x, y, eps=BIG)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("name", "value"), [
    ("init_evals", 0), ("init_evals", 2.5), ("max_evals", 0), ("gamma", 0.0),
    ("gamma", math.nan), ("gamma", math.inf), ("probe_scale", 0), ("probe_scale", 65),
    ("coarse_iterations", 0), ("momentum", 1.0), ("momentum", -0.1), ("stop_at_eps", "yes"),
    ("batch_starts", 1), ("norm", "l1"), ("max_queries", 1), ("seed", -1),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of HopSkipJump"):
        HopSkipJump(**{name: value})


def test_max_evals_below_init_evals_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'max_evals' parameter of HopSkipJump must be an "
                                          r"int >= init_evals \(100\)"):
        HopSkipJump(max_evals=50)


def test_declares_its_threat_model() -> None:
    assert HopSkipJump.threat == "labels"
    assert HopSkipJump.minimum_norm
    assert HopSkipJump.supports_targeted
    assert set(HopSkipJump.supported_norms) == {"l2", "linf"}
