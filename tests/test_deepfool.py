"""DeepFool: closed-form distances on linear models, failures, queries, grids, checks.

On a linear model ``z = W x + b`` the linearisation is exact, so from ``x`` one
step reaches the nearest pairwise boundary: the smallest untargeted
perturbation is ``min_j (z_y - z_j) / ||w_y - w_j||_*`` with the dual norm
(L2 for L2, L1 for L∞), and DeepFool returns ``(1 + overshoot)`` times the step
``(z_y - z_j + 1e-4) / ||w_y - w_j||_*``; with its refinement (the default) it
then bisects back to within ``2 ** -refine_steps`` of the boundary. Inputs lie in
[0.3, 0.7], bounds (0, 1), and each test checks that the box does not bind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import Recorder, gaussian_linear, interior_inputs, progress_of
from hoodwink import CallableClassifier, TorchClassifier
from hoodwink.attacks.deepfool import DeepFool
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")]

D = 20
BIG = 10.0  # beyond any distance in the unit box of D features
DUAL = {"l2": 2, "linf": 1}


def linear_case(c: int, n: int = 32, seed: int = 0, gains: list[float] | None = None,
                ) -> tuple[nn.Linear, TorchClassifier, torch.Tensor, torch.Tensor]:
    """``W (x - 0.5)`` with Gaussian W (row j times ``gains[j]``) in (0, 1), interior inputs
    and the model's own labels. Centred, so the boundaries are near every input and the box
    never binds."""
    net = gaussian_linear(seed, d=D, c=c)
    with torch.no_grad():
        if gains is not None:
            net.weight.mul_(torch.tensor(gains)[:, None])
        net.bias.copy_(-0.5 * net.weight.sum(dim=1))
    x = interior_inputs(n, d=D, seed=seed + 1)
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    return net, TorchClassifier(net, bounds=(0, 1)), x, y


def closed_form(net: nn.Linear, x: torch.Tensor, y: torch.Tensor, norm: str,
                classes: list[list[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: the smallest distance to a boundary ``z_j = z_y`` (j in ``classes``, all
    by default) and the dual norm of ``w_y - w_j`` for that j. Asserts the box does not bind."""
    w, b = net.weight.detach().double().numpy(), net.bias.detach().double().numpy()
    xd = x.double().numpy()
    z = xd @ w.T + b
    dist, dual = np.full(len(y), np.inf), np.zeros(len(y))
    for i, yi in enumerate(y.tolist()):
        for j in (classes[i] if classes is not None else range(w.shape[0])):
            if j == yi:
                continue
            dw = w[yi] - w[j]
            nd = np.linalg.norm(dw, ord=DUAL[norm])
            d = (z[i, yi] - z[i, j]) / nd
            if d < dist[i]:
                dist[i], dual[i] = d, nd
                step = dw / nd if norm == "l2" else np.sign(dw)
                foot = xd[i] - d * step
                assert ((foot > 0) & (foot < 1)).all(), "the box binds"
    return dist, dual


# ---------------------------------------------------------------------- known answers
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("c", [2, 5])
def test_one_step_lands_at_the_closed_form_times_the_overshoot(norm: str, c: int) -> None:
    net, model, x, y = linear_case(c)
    dist, dual = closed_form(net, x, y, norm)
    r = DeepFool(norm=norm, refine_steps=0)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    got = r.perturbation_norm.double().numpy()
    assert (got >= dist - 1e-6).all(), "nearer than the closed form: impossible"
    # Within 5% wherever the push 1e-4 / ||w|| is small next to the distance (all but the
    # few samples a hair's breadth from a boundary).
    fair = dist > 1e-3
    assert fair.sum() >= 24 and (got[fair] <= 1.05 * dist[fair]).all()
    # Exactly the paper's step: (1 + overshoot) (margin + 1e-4) / ||w||_dual (float32).
    np.testing.assert_allclose(got, 1.02 * (dist + 1e-4 / dual), rtol=1e-4, atol=1e-6)
    assert r.queries.tolist() == [2 + c] * len(y)  # x, one step of c - 1 + 1, verification


def test_overshoot_zero_stops_just_past_the_boundary() -> None:
    net, model, x, y = linear_case(3)
    dist, dual = closed_form(net, x, y, "l2")
    r = DeepFool(overshoot=0.0, refine_steps=0)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    np.testing.assert_allclose(r.perturbation_norm.double().numpy(), dist + 1e-4 / dual,
                               rtol=1e-4, atol=1e-6)


def test_candidates_limits_the_classes_considered() -> None:
    """candidates=2: only the runner-up class's boundary, which may not be the nearest."""
    net, model, x, y = linear_case(6, seed=1, gains=[0.3, 0.6, 1.0, 1.5, 2.0, 3.0])
    with torch.no_grad():
        runner_up = net(x).topk(2, dim=1).indices[:, 1]
    dist_all, _ = closed_form(net, x, y, "l2")
    dist_two, dual = closed_form(net, x, y, "l2", [[int(j)] for j in runner_up])
    assert (dist_two > dist_all * 1.1).sum() >= 3  # the nearest boundary is elsewhere there
    r = DeepFool(candidates=2, refine_steps=0)(model, x, y, eps=BIG)
    np.testing.assert_allclose(r.perturbation_norm.double().numpy(),
                               1.02 * (dist_two + 1e-4 / dual), rtol=1e-4, atol=1e-6)
    assert r.queries.tolist() == [4] * len(y)


def test_succeeds_exactly_where_the_distance_is_below_eps() -> None:
    """eps = the median distance: fooled below it, returned unchanged (failed) above it."""
    net, model, x, y = linear_case(4)
    dist, _ = closed_form(net, x, y, "l2")
    eps = float(np.median(dist))
    r = DeepFool()(model, x, y, eps=eps)
    success = r.success.numpy()
    assert success[dist < eps / 1.03].all()
    above = dist > eps
    assert above.sum() >= 10 and not success[above].any()
    failed = ~r.success
    assert torch.equal(r.x_adv[failed], x[failed])
    assert bool((r.perturbation_norm[failed] == 0).all())
    assert bool((model.predict(x) == y).all())  # doing nothing fools none


class Saturating(nn.Module):
    """Class 1 where ``tanh(x0) > 0.9`` (x0 > 1.472): the linearisation falls short each step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.tanh(x[:, 0]) - 0.9
        return torch.stack([torch.zeros_like(s), s], dim=1)


def test_too_few_steps_fail_and_come_back_unchanged() -> None:
    model = TorchClassifier(Saturating().eval(), bounds=(-5, 5))
    x = torch.zeros(3, 4)
    y = torch.zeros(3, dtype=torch.int64)
    r = DeepFool(steps=1)(model, x, y, eps=BIG)
    assert not bool(r.success.any()) and torch.equal(r.x_adv, x)
    r = DeepFool(steps=50)(model, x, y, eps=BIG)
    assert bool(r.success.all())
    assert bool((r.perturbation_norm >= math.atanh(0.9)).all())
    assert bool((r.perturbation_norm <= 1.03 * math.atanh(0.9)).all())


def test_success_is_what_the_model_says_at_the_returned_points() -> None:
    """On the bundled linear MNIST model (8-bit grid): success.sum() is recomputed exactly."""
    from hoodwink import zoo
    from hoodwink.data.mnist import load_mnist

    model = zoo.load("mnist-linear")
    x, y = load_mnist("test")
    x, y = x[:40], y[:40]
    for norm, eps in (("l2", 0.6), ("linf", 0.045)):
        r = DeepFool(norm=norm)(model, x, y, eps=eps)
        fooled = model.predict(r.x_adv) != y
        assert int(r.success.sum()) == int(fooled.sum())
        assert 5 <= int(r.success.sum()) < 35  # both kinds of sample
        failed = ~r.success
        assert torch.equal(r.x_adv[failed], x[failed])
        assert bool((r.perturbation_norm <= eps + 1e-5).all())
        assert torch.equal(torch.round(r.x_adv * 255) / 255, r.x_adv)  # on the 8-bit grid


# ---------------------------------------------------------------------- queries
@pytest.mark.parametrize("n", [1, 7, 32])
def test_queries_are_exact_and_as_documented(n: int) -> None:
    rec = Recorder(Saturating())
    model = TorchClassifier(rec, bounds=(-5, 5))
    x = torch.zeros(n, 4)
    x[:, 0] = torch.linspace(-1, 1.3, n)
    y = torch.zeros(n, dtype=torch.int64)
    if n > 1:
        y[0] = 1  # wrong at x: the pass at x and the verification pass only
    rec.calls.clear()
    r = DeepFool(steps=20)(model, x, y, eps=BIG)
    assert int(r.queries.sum()) == rec.rows
    if n > 1:
        assert int(r.queries[0]) == 2 and torch.equal(r.x_adv[0], x[0])
    # Two classes: each step is one gradient row and one forward row.
    # Off a grid every halving is a new point: a fooled sample adds exactly 10 passes.
    fooled = r.success & (model.predict(x) == y)
    assert bool(((r.queries - 2 - 10 * fooled) % 2 == 0).all())
    assert int(r.queries.max()) <= 2 + 20 * 2 + 10


def test_eps_zero_costs_two_queries_and_returns_x() -> None:
    _, model, x, y = linear_case(3, n=4)
    r = DeepFool()(model, x, y, eps=0.0)
    assert torch.equal(r.x_adv, x) and r.queries.tolist() == [2] * 4


def test_targeted_calls_are_refused_before_any_query() -> None:
    rec = Recorder(gaussian_linear(0, d=D, c=3))
    model = TorchClassifier(rec, bounds=(0, 1))
    x = interior_inputs(3, d=D)
    with pytest.raises(ConfigError, match="DeepFool is untargeted only.*CarliniWagner"):
        DeepFool()(model, x, target=torch.tensor([0, 1, 2]), eps=1.0)
    assert rec.rows == 0


# ---------------------------------------------------------------------- grids and bounds
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_grid_and_per_feature_bounds(norm: str) -> None:
    """levels=256, per-feature bounds: every query and result on the grid and in the box."""
    lower = torch.linspace(-1.0, 0.0, D)
    upper = lower + torch.linspace(1.0, 3.0, D)
    rec = Recorder(nn.Sequential(gaussian_linear(1, d=D, c=4), nn.Tanh()))
    model = TorchClassifier(rec, bounds=(lower, upper), levels=256)
    step = (upper - lower) / 255
    g = torch.Generator().manual_seed(3)
    x = lower + torch.round(64 + torch.rand(16, D, generator=g) * 127) * step
    y = model.predict(x)
    eps = 1.5 if norm == "l2" else 0.4
    r = DeepFool(norm=norm)(model, x, y, eps=eps)
    for call in [*rec.calls, r.x_adv]:
        k = (call - lower) / step
        assert torch.allclose(k, k.round(), atol=1e-3), "off the grid"
        assert bool(((call >= lower) & (call <= upper)).all()), "out of the box"
    assert bool((r.perturbation_norm <= eps + 1e-5).all())
    assert int(r.success.sum()) >= 12
    assert torch.equal(r.pred_adv, model.predict(r.x_adv))


class Threshold(nn.Module):
    """Class 1 where ``x0 > 128/255 + 1e-6``: the grid point 128/255 is a hair short of it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x[:, 0] - (128 / 255 + 1e-6)
        return torch.stack([torch.zeros_like(s), s], dim=1)


def test_a_step_that_rounding_erases_is_grown_until_the_grid_point_moves() -> None:
    """From 127/255 the first step rounds to 128/255, just short; the next step (|f| ~ 1e-6)
    would round back there for ~17 steps. Growing the total moves it to 129/255 at once."""
    model = TorchClassifier(Threshold().eval(), bounds=(0, 1), levels=256)
    x = torch.tensor([[127.0, 128.0]]) / 255
    r = DeepFool(refine_steps=0)(model, x, torch.tensor([0]), eps=1.0)
    assert bool(r.success[0])
    assert torch.equal(r.x_adv, torch.tensor([[129.0, 128.0]]) / 255)
    assert r.queries.tolist() == [6]  # x, two steps of 2, verification
    # The refinement asks about 128/255 once (not adversarial); every later halving
    # rounds to 128/255 or 129/255, both known, and costs nothing.
    r = DeepFool(refine_steps=10)(model, x, torch.tensor([0]), eps=1.0)
    assert torch.equal(r.x_adv, torch.tensor([[129.0, 128.0]]) / 255)
    assert r.queries.tolist() == [7]


# ---------------------------------------------------------------------- refinement
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_refinement_bisects_to_the_closed_form(norm: str) -> None:
    """The overshoot's 2% is bisected away: within 2 ** -10 of the true distance, at a
    cost of exactly refine_steps forward passes per fooled sample."""
    net, model, x, y = linear_case(3)
    dist, dual = closed_form(net, x, y, norm)
    plain = DeepFool(norm=norm, refine_steps=0)(model, x, y, eps=BIG)
    r = DeepFool(norm=norm)(model, x, y, eps=BIG)
    assert bool(r.success.all()) and torch.equal(r.pred_adv, model.predict(r.x_adv))
    got = r.perturbation_norm.double().numpy()
    assert (got >= dist - 1e-6).all(), "nearer than the closed form: impossible"
    far = plain.perturbation_norm.double().numpy()
    np.testing.assert_array_less(got, far)  # nearer than the overshot point, every one
    assert (got <= dist + far / 2**10 + 1e-6).all()
    assert (r.queries - plain.queries).tolist() == [10] * len(y)


def test_refinement_queries_are_counted_and_a_budget_holds() -> None:
    rec = Recorder(gaussian_linear(0, d=D, c=3))
    model = TorchClassifier(rec, bounds=(0, 1))
    x = interior_inputs(9, d=D)
    y = model.predict(x)
    rec.calls.clear()
    r = DeepFool(refine_steps=7)(model, x, y, eps=BIG)
    assert int(r.queries.sum()) == rec.rows
    assert r.queries.tolist() == [2 + 3 + 7] * 9  # x, one step of 3, 7 halvings, verify


# ---------------------------------------------------------------------- side effects, checks
def test_deterministic_and_leaves_no_gradients_on_the_model() -> None:
    net, model, x, y = linear_case(3, n=6)
    a = DeepFool()(model, x, y, eps=BIG)
    b = DeepFool(seed=7)(model, x, y, eps=BIG)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    for p in net.parameters():
        assert p.grad is None and p.requires_grad
    assert not net.training


def test_progress_ends_at_the_total() -> None:
    model = TorchClassifier(Saturating().eval(), bounds=(-5, 5))
    x, y = torch.zeros(2, 4), torch.zeros(2, dtype=torch.int64)
    seen = progress_of(DeepFool(steps=30), model, x, y, eps=BIG)
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (30, 30) and len(seen) >= 3


def test_needs_gradients() -> None:
    scores = CallableClassifier(lambda b: np.stack([b.sum(1), -b.sum(1)], 1),
                                num_classes=2, bounds=(0, 1), output="logits")
    with pytest.raises(CapabilityError, match="gradient"):
        DeepFool()(scores, torch.full((2, 3), 0.5), torch.tensor([0, 1]), eps=1.0)


@pytest.mark.parametrize(("name", "value"), [
    ("steps", 0), ("steps", 1.5), ("overshoot", -0.01), ("overshoot", math.inf),
    ("overshoot", math.nan), ("candidates", 1), ("candidates", 2.0), ("norm", "l1"),
    ("seed", -1), ("refine_steps", -1), ("refine_steps", 1.5),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of DeepFool"):
        DeepFool(**{name: value})


def test_declares_its_threat_model() -> None:
    assert DeepFool.threat == "white-box" and DeepFool.needs_gradients
    assert DeepFool.minimum_norm and not DeepFool.supports_targeted
    assert set(DeepFool.supported_norms) == {"l2", "linf"}
