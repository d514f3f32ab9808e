"""LocalSearch: plain local stochastic search on the scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from _helpers import (
    Counting,
    assert_seed_reproduces,
    assert_within_budget,
    interior_inputs,
    l2_distance,
    linf_distance,
    probability_model,
    progress_of,
    rows_asked,
    score_grid,
    threshold_labels,
)
from _helpers import gaussian_linear as linear_net
from hoodwink import CallableClassifier, TorchClassifier
from hoodwink.attacks.local_search import LocalSearch
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def constant_model(bounds: tuple[float, float]) -> tuple[CallableClassifier, list[torch.Tensor]]:
    """A 2-class model whose scores never change, and the list of batches it is called on."""
    seen: list[torch.Tensor] = []

    def fn(batch: np.ndarray) -> np.ndarray:
        seen.append(torch.from_numpy(batch.copy()))
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(batch), 1))

    return CallableClassifier(fn, num_classes=2, bounds=bounds), seen


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_untargeted_success_matches_the_closed_form_on_a_linear_model(norm: str) -> None:
    """Samples within 0.6 eps of the boundary (closed form) are >= 90% fooled; beyond eps none."""
    net = linear_net()
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(48)
    dist = (linf_distance if norm == "linf" else l2_distance)(net, x)
    eps = 0.1 if norm == "linf" else 0.4
    near, far = dist < 0.6 * eps, dist > eps
    assert int(near.sum()) >= 15 and int(far.sum()) >= 3  # the fixture covers both cases
    r = LocalSearch(norm=norm, max_queries=300)(model, x, eps=eps)
    assert float(r.success[near].float().mean()) >= 0.9
    assert not bool(r.success[far].any())
    # Better than a random point of the ball: one random sign vector per sample.
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    if norm == "l2":
        noise = noise / noise.norm(dim=1, keepdim=True)
    random_success = model.predict(x + eps * noise) != model.predict(x)
    assert int(r.success.sum()) > int(random_success.sum()) + 10


def test_targeted_success_on_the_runner_up_class() -> None:
    net = linear_net()
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(32, seed=4)
    target = net(x).detach().topk(2, dim=1).indices[:, 1]
    dist = linf_distance(net, x)  # untargeted distance: a lower bound on the targeted one
    r = LocalSearch(max_queries=400)(model, x, target=target, eps=0.1)
    easy = dist < 0.05
    assert int(easy.sum()) >= 8
    assert float(r.success[easy].float().mean()) >= 0.9
    assert float(r.success.float().mean()) >= 0.6
    assert bool((r.pred_adv[r.success] == target[r.success]).all())


def test_loss_never_gets_worse_and_probabilities_work() -> None:
    """On a probability model the returned point's margin is at least the clean margin."""
    net = linear_net()
    model = probability_model(net, 3)
    x = interior_inputs(16, seed=8)
    y = model.predict(x)
    r = LocalSearch(max_queries=40)(model, x, y, eps=0.02)

    def margin(v: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(net(v).detach().double(), dim=1)
        own = logp.gather(1, y[:, None])[:, 0]
        return logp.scatter(1, y[:, None], -torch.inf).amax(dim=1) - own

    assert bool((margin(r.x_adv) >= margin(x) - 1e-9).all())
    assert bool((margin(r.x_adv) > margin(x)).any())


# ---------------------------------------------------------------------- the budget
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_budget_is_exact_and_never_exceeded(batch: int, budget: int, norm: str) -> None:
    """A sample never fooled costs exactly max_queries; none ever costs more."""
    counting = Counting(TorchClassifier(linear_net(), bounds=(0, 1)))
    x = interior_inputs(batch)
    r = LocalSearch(norm=norm, max_queries=budget)(counting, x, eps=1e-4)
    assert not bool(r.success.any())
    assert r.queries.tolist() == [budget] * batch
    assert counting.rows == int(r.queries.sum())


@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
def test_budget_with_early_stops(batch: int, budget: int) -> None:
    counting = Counting(TorchClassifier(linear_net(), bounds=(0, 1)))
    x = interior_inputs(batch, seed=9)
    r = LocalSearch(max_queries=budget)(counting, x, eps=0.1)
    assert_within_budget(r, counting.rows, budget)
    if budget == 101:
        assert bool(r.success.any()) and int(r.queries[r.success].min()) < budget


def test_a_short_run_is_the_start_of_a_long_one() -> None:
    """Anytime: the queries of a 30-query run are the first queries of a 90-query run."""
    net = linear_net()
    x = interior_inputs(5, seed=6)
    short, long = (rows_asked(LocalSearch(max_queries=budget, seed=3),
                              TorchClassifier(net, bounds=(0, 1)), x, eps=0.05)
                   for budget in (30, 90))
    short = short[:-5]  # without the base class's verification pass
    assert torch.equal(short, long[: short.shape[0]])


def test_step_halves_after_patience_failures() -> None:
    """On a constant model nothing is accepted: the step halves every `patience` queries."""
    model, seen = constant_model((-10, 10))
    x = torch.zeros(1, 50)
    LocalSearch(norm="l2", stepsize=1.0, patience=3, max_queries=2 + 9)(model, x, eps=5.0)
    steps = [float(v.norm()) for v in seen[1:-1]]  # proposals from x (nothing is kept)
    assert steps == pytest.approx([1.0] * 3 + [0.5] * 3 + [0.25] * 3, rel=1e-5)


def test_linf_proposals_change_the_given_fraction_of_coordinates() -> None:
    model, seen = constant_model((-1, 1))
    x = torch.zeros(2, 200)
    LocalSearch(fraction=0.1, max_queries=6)(model, x, eps=0.25)
    for batch in seen[1:-1]:
        assert ((batch != 0).sum(dim=1) == 20).all()
        assert set(batch.unique().tolist()) == {-0.25, 0.0, 0.25}  # 2 eps steps, projected


# ---------------------------------------------------------------------- grids, bounds, seeds
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_grid_and_per_feature_bounds_hold(norm: str) -> None:
    case = score_grid()
    eps = {"linf": 0.05, "l2": 0.3}[norm]
    r = LocalSearch(norm=norm, max_queries=60)(case.model, case.x, eps=eps)
    case.check(r, eps)
    assert bool(r.success.any())


def test_fixed_seed_reproduces_and_seeds_differ() -> None:
    model = TorchClassifier(linear_net(), bounds=(0, 1))
    x = interior_inputs(6, seed=7)
    assert_seed_reproduces(lambda s: LocalSearch(max_queries=50, seed=s)(model, x, eps=1e-2), 5)


def test_eps_zero_returns_x_after_the_clean_pass() -> None:
    model = TorchClassifier(linear_net(), bounds=(0, 1))
    x = interior_inputs(3)
    r = LocalSearch()(model, x, eps=0.0)
    assert torch.equal(r.x_adv, x) and r.queries.tolist() == [2, 2, 2]


def test_progress_ends_at_its_total() -> None:
    calls = progress_of(LocalSearch(max_queries=12), TorchClassifier(linear_net(), bounds=(0, 1)),
                        interior_inputs(2), eps=1e-4)
    assert calls[-1] == (10, 10)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ---------------------------------------------------------------------- refusals
def test_label_only_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The message lists the attacks that fit, from the registry; keep this test to this attack.
    monkeypatch.setattr("hoodwink.attacks.registry.fitting", lambda caps: ["substitute"])
    with pytest.raises(CapabilityError, match="scores"):
        LocalSearch()(threshold_labels(), torch.full((2, 3), 0.2), eps=0.1)


@pytest.mark.parametrize(("name", "value"), [
    ("norm", "l1"), ("stepsize", 0.0), ("stepsize", float("inf")), ("fraction", 0.0),
    ("fraction", 1.5), ("patience", 0), ("patience", 2.5), ("loss", "hinge"),
    ("max_queries", 1), ("seed", -1),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of LocalSearch"):
        LocalSearch(**{name: value})
