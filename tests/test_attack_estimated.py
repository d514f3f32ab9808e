"""EstimatedGradient: PGD on NES / finite-difference gradients from score queries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from _helpers import (
    WIDE_C,
    WIDE_D,
    Counting,
    assert_seed_reproduces,
    assert_within_budget,
    interior_inputs,
    linf_distance,
    probability_model,
    progress_of,
    rows_asked,
    score_grid,
    threshold_labels,
)
from _helpers import gaussian_linear as linear_net
from hoodwink import PGD, CallableClassifier, TorchClassifier
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks.base import AttackInputs
from hoodwink.attacks.estimated import EstimatedGradient, _EstimatingGate
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.local_search import LocalSearch
from hoodwink.errors import CapabilityError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

# test_attack_substitute imports Counting, D, interior_inputs, linear_net and linf_distance
# from here; they live in _helpers.
D, C = WIDE_D, WIDE_C


# ---------------------------------------------------------------------- the estimate itself
def view_of(model: Any, x: torch.Tensor, **kw: Any) -> tuple[_EstimatingGate, AttackInputs]:
    gate = QueryGate(model, x.shape[0], None, x.device)
    inputs = AttackInputs(x=x, labels=torch.zeros(x.shape[0], dtype=torch.int64),
                          targeted=True, eps=0.1, y=None,
                          generator=torch.Generator().manual_seed(0))
    inputs.set_pred_clean(model.predict(x))
    args = {"sigma": torch.tensor(1e-3), "pairs": D, "estimator": "fd",
            "skip_adversarial": False, **kw}
    return _EstimatingGate(gate, inputs, **args), inputs


def test_fd_over_every_coordinate_is_the_exact_gradient_of_a_linear_margin() -> None:
    """Symmetric differences of a linear margin are exact: z_1 - z_0 has gradient w_1 - w_0."""
    net = linear_net(c=2)
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(4)
    view, _ = view_of(model, x)
    labels = torch.ones(4, dtype=torch.int64)
    loss, z, grad = view.loss_gradient(x, labels, loss="margin", targeted=True)
    w = net.weight.detach()
    expected = (w[1] - w[0]).expand(4, D)
    assert torch.allclose(grad, expected, atol=2e-3)
    assert torch.allclose(loss.float(), (z[:, 1] - z[:, 0]).float())
    # One query at each x plus two per coordinate.
    assert int(view._gate.used.max()) == int(view._gate.used.min()) == 1 + 2 * D


def test_nes_estimate_points_along_the_gradient() -> None:
    """With 100 antithetic pairs in 20 dimensions the NES estimate has cosine > 0.8 to w1 - w0."""
    net = linear_net(c=2)
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(8)
    view, _ = view_of(model, x, pairs=100, estimator="nes")
    _, _, grad = view.loss_gradient(x, torch.ones(8, dtype=torch.int64), loss="margin",
                                    targeted=True)
    w = (net.weight[1] - net.weight[0]).detach()
    cos = torch.nn.functional.cosine_similarity(grad, w.expand_as(grad), dim=1)
    assert bool((cos > 0.8).all()), cos
    # Unbiased: its projection on w is |w|^2 on average (each ratio is a chi-square(1)
    # mean over 100 draws, sd 0.14; the mean of 8 has sd 0.05).
    ratio = (grad @ w) / (w @ w)
    assert abs(float(ratio.mean()) - 1) < 0.15, ratio


def step_model() -> CallableClassifier:
    """Class 1 exactly when the first feature exceeds 0.5: a piecewise-constant model."""
    def fn(batch: np.ndarray) -> np.ndarray:
        on = (batch.reshape(len(batch), -1)[:, 0] > 0.5).astype(np.float32)
        return np.stack([1 - on, on], axis=1)
    return CallableClassifier(fn, num_classes=2, bounds=(0, 1))


@pytest.mark.parametrize("estimator", ["nes", "fd"])
def test_piecewise_constant_model_gives_exactly_zero_and_the_attack_returns_x(
    estimator: str,
) -> None:
    """Probes closer than the split see one score: the estimate is 0, and the attack stays at x."""
    model = step_model()
    x = torch.full((3, 4), 0.2)
    view, _ = view_of(model, x, pairs=4, estimator=estimator)
    loss, _, grad = view.loss_gradient(x, torch.ones(3, dtype=torch.int64), loss="margin",
                                       targeted=True)
    assert torch.equal(grad, torch.zeros_like(grad))
    assert torch.isfinite(loss).all()
    r = EstimatedGradient(estimator=estimator, samples=8, max_queries=60)(model, x, eps=0.2)
    assert torch.equal(r.x_adv, x)
    assert not bool(r.success.any())
    assert bool((r.queries <= 60).all())


# ---------------------------------------------------------------------- efficacy
@pytest.mark.parametrize("estimator", ["nes", "fd"])
def test_untargeted_success_matches_the_closed_form_on_a_linear_model(estimator: str) -> None:
    """Samples within 0.6 eps of the boundary (closed form) are >= 90% fooled; beyond eps none."""
    net = linear_net()
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(48)
    dist = linf_distance(net, x)
    eps = 0.1
    near, far = dist < 0.6 * eps, dist > eps
    assert int(near.sum()) >= 15 and int(far.sum()) >= 3  # the fixture covers both cases
    attack = EstimatedGradient(estimator=estimator, samples=20, max_queries=500)
    r = attack(model, x, eps=eps)  # labels: the model's own predictions
    assert float(r.success[near].float().mean()) >= 0.9
    assert not bool(r.success[far].any())
    # A no-op (x itself) fools none of these correctly "classified" samples.
    assert not bool((model.predict(x) != r.pred_clean).any())
    assert float(r.success.float().mean()) > 0.5


def test_targeted_success_close_to_white_box_pgd() -> None:
    """Targeted NES-PGD fools at least 90% of what white-box PGD fools, and far more than x."""
    net = linear_net()
    model = TorchClassifier(net, bounds=(0, 1))
    x = interior_inputs(32, seed=4)
    pred = model.predict(x)
    target = net(x).detach().topk(2, dim=1).indices[:, 1]  # the runner-up class
    eps = 0.1
    white = PGD(steps=20, loss="margin", random_start=False)(model, x, target=target, eps=eps)
    r = EstimatedGradient(samples=20, max_queries=500)(model, x, target=target, eps=eps)
    assert int(white.success.sum()) >= 16
    assert int(r.success.sum()) >= 0.9 * int(white.success.sum())
    assert not bool((pred == target).any())  # a no-op fools none


# ---------------------------------------------------------------------- the budget
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [8, 9, 13, 101])
@pytest.mark.parametrize("estimator", ["nes", "fd"])
def test_budget_is_exact_and_never_exceeded(batch: int, budget: int, estimator: str) -> None:
    """A sample that is never fooled costs 1 + steps * (samples + 1) + 1 + 1, steps fitted."""
    net = linear_net()
    counting = Counting(TorchClassifier(net, bounds=(0, 1)))
    x = interior_inputs(batch)
    samples = 4
    r = EstimatedGradient(estimator=estimator, samples=samples, max_queries=budget)(
        counting, x, eps=1e-4)  # far too small: nobody is fooled
    assert not bool(r.success.any())
    steps = min(20, (budget - 3) // (samples + 1))
    assert r.queries.tolist() == [1 + steps * (samples + 1) + 1 + 1] * batch
    assert_within_budget(r, counting.rows, budget)


@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [8, 10, 101])
def test_budget_with_mixed_success_and_fgsm_inside(batch: int, budget: int) -> None:
    """Samples stopping at different times, and FGSM inside: never above max_queries."""
    net = linear_net()
    x = interior_inputs(batch, seed=5)
    for attack in (EstimatedGradient(samples=4, max_queries=budget),
                   EstimatedGradient(attack=FGSM(), samples=4, max_queries=budget)):
        counting = Counting(TorchClassifier(net, bounds=(0, 1)))
        assert_within_budget(attack(counting, x, eps=0.1), counting.rows, budget)


def test_too_small_budget_names_the_minimum() -> None:
    with pytest.raises(ConfigError, match=r"'max_queries' parameter of EstimatedGradient must "
                                          r"be at least 54"):
        EstimatedGradient(samples=50, max_queries=53)
    EstimatedGradient(samples=50, max_queries=54)
    EstimatedGradient(attack=FGSM(), samples=50, max_queries=53)


def test_a_short_run_is_the_start_of_a_long_one() -> None:
    """Anytime: the queries of a 60-query run are the first queries of a 200-query run."""
    net = linear_net()
    x = interior_inputs(5, seed=6)
    short, long = (rows_asked(EstimatedGradient(samples=6, max_queries=budget, seed=3),
                              TorchClassifier(net, bounds=(0, 1)), x, eps=0.05)
                   for budget in (60, 200))
    short = short[:-5]  # without the base class's verification pass
    assert torch.equal(short, long[: short.shape[0]])


def test_progress_is_reported_in_queries() -> None:
    calls = progress_of(EstimatedGradient(samples=4, max_queries=40),
                        TorchClassifier(linear_net(), bounds=(0, 1)), interior_inputs(3), eps=1e-4)
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1]
    assert calls[-1][1] == 1 + 7 * 5 + 1  # the clean pass, 7 steps of 5, the last judging pass


# ---------------------------------------------------------------------- grids, bounds, seeds
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_grid_and_per_feature_bounds_hold(norm: str) -> None:
    case = score_grid()
    eps = {"linf": 0.05, "l2": 0.3, "l1": 1.0}[norm]
    r = EstimatedGradient(norm=norm, samples=6, max_queries=120)(case.model, case.x, eps=eps)
    case.check(r, eps)
    assert int(r.queries.max()) <= 120
    assert r.attack.startswith("EstimatedGradient(") and f"norm='{norm}'" in r.attack


def test_default_sigma_is_one_grid_step_when_coarser_than_a_thousandth() -> None:
    model = TorchClassifier(linear_net(), bounds=(0, 16), levels=17)
    gate = QueryGate(model, 1, None, torch.device("cpu"))
    x = torch.zeros(1, D)
    assert float(EstimatedGradient()._sigma(gate, x)) == 1.0
    assert float(EstimatedGradient(sigma=0.5)._sigma(gate, x)) == 0.5
    fine = QueryGate(TorchClassifier(linear_net(), bounds=(0, 1)), 1, None, torch.device("cpu"))
    assert float(EstimatedGradient()._sigma(fine, x)) == pytest.approx(1e-3)


def test_fixed_seed_reproduces_and_seeds_differ() -> None:
    model = TorchClassifier(linear_net(), bounds=(0, 1))
    x = interior_inputs(6, seed=7)
    assert_seed_reproduces(
        lambda s: EstimatedGradient(samples=6, max_queries=100, seed=s)(model, x, eps=1e-3), 5)


def test_global_random_state_untouched() -> None:
    model, x = TorchClassifier(linear_net(), bounds=(0, 1)), interior_inputs(2)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 - the global state is what is under test
    EstimatedGradient(samples=4, max_queries=30)(model, x, eps=0.1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


def test_probability_outputs_give_log_probabilities_as_logits() -> None:
    """On a probability model the estimate works on log-probabilities (the logits, shifted)."""
    net = linear_net()
    model = probability_model(net, C)
    x = interior_inputs(4)
    view, _ = view_of(model, x)
    _, z, _ = view.loss_gradient(x, torch.zeros(4, dtype=torch.int64), loss="margin",
                                 targeted=True)
    ref = torch.log_softmax(net(x).detach().double(), dim=1)
    assert torch.allclose(z, ref, atol=1e-5)


# ---------------------------------------------------------------------- refusals
def test_label_only_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The message lists the attacks that fit, from the registry; keep this test to this attack.
    monkeypatch.setattr("hoodwink.attacks.registry.fitting", lambda caps: ["substitute"])
    with pytest.raises(CapabilityError, match="scores"):
        EstimatedGradient()(threshold_labels(), torch.full((2, 3), 0.2), eps=0.1)


@pytest.mark.parametrize(("name", "value"), [
    ("samples", 3), ("samples", 0), ("samples", 2.0), ("estimator", "zoo"), ("sigma", 0.0),
    ("sigma", float("nan")), ("loss", "hinge"), ("attack", LocalSearch()), ("attack", PGD),
    ("norm", "l3"), ("max_queries", 1),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of EstimatedGradient"):
        EstimatedGradient(**{name: value})


def test_norm_and_loss_go_to_the_inner_attack() -> None:
    a = EstimatedGradient(norm="l2")
    assert isinstance(a.attack, PGD) and a.attack.norm == "l2" and a.attack.loss == "margin"
    b = EstimatedGradient(attack=PGD(norm="l1", steps=5), loss="ce")
    assert b.norm == "l1" and b.attack is not None and b.attack.loss == "ce"
    with pytest.raises(ConfigError, match="'norm' parameter of EstimatedGradient"):
        EstimatedGradient(attack=FGSM(), norm="l1")
