"""Substitute: a surrogate trained on the model's labels, PGD transferred from it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import WIDE_D as D
from _helpers import Counting, interior_inputs, linf_distance
from _helpers import gaussian_linear as linear_net
from hoodwink import PGD, CallableClassifier, TorchClassifier
from hoodwink.attacks.fgsm import FGSM
from hoodwink.attacks.local_search import LocalSearch
from hoodwink.attacks.substitute import Substitute, default_surrogate
from hoodwink.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def label_only(net: nn.Module, **kw: Any) -> CallableClassifier:
    """The network behind a label-only interface (a decision-based model)."""
    def fn(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(batch)).argmax(dim=1).numpy()  # type: ignore[no-any-return]
    kw.setdefault("bounds", (0, 1))
    return CallableClassifier(fn, num_classes=3, output="labels", **kw)


def expected_queries(max_queries: int, rounds: int = 4, restarts: int = 4) -> int:
    """Queries of a sample that is never fooled: clean, labels, checks, verification."""
    r = min(rounds, int(math.floor(math.log2(max_queries - 1))))
    labels = 2**r - 1
    checks = min(restarts, max_queries - 2 - labels) if restarts > 1 else 0
    return 1 + labels + checks + 1


# ---------------------------------------------------------------------- efficacy
def test_untargeted_transfer_from_labels_only() -> None:
    """From labels alone, >= 80% of the samples within 0.6 eps of the boundary are fooled."""
    net = linear_net()
    model = label_only(net)
    x = interior_inputs(48)
    dist = linf_distance(net, x)
    eps = 0.1
    near, far = dist < 0.6 * eps, dist > eps
    y = net(x).detach().argmax(dim=1)
    r = Substitute(max_queries=30)(model, x, y, eps=eps)
    assert float(r.success[near].float().mean()) >= 0.8
    assert not bool(r.success[far].any())
    assert int(r.queries.max()) <= 30
    # A no-op fools none; a random corner of the ball far fewer.
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    random_success = model.predict(x + eps * noise) != y
    assert int(r.success.sum()) > int(random_success.sum()) + 10


def test_targeted_transfer() -> None:
    net = linear_net()
    model = label_only(net)
    x = interior_inputs(32, seed=4)
    target = net(x).detach().topk(2, dim=1).indices[:, 1]  # the runner-up class
    r = Substitute(max_queries=30)(model, x, target=target, eps=0.1)
    white = PGD(steps=20, loss="margin", random_start=False)(
        TorchClassifier(net, bounds=(0, 1)), x, target=target, eps=0.1)
    assert int(white.success.sum()) >= 28
    # Transfer reaches about half of what the gradients themselves reach here (15 of 30);
    # random corners of the ball reach the target far less often.
    assert int(r.success.sum()) >= 0.4 * int(white.success.sum())
    assert bool((r.pred_adv[r.success] == target[r.success]).all())
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
    random_success = model.predict(x + 0.1 * noise) == target
    assert int(r.success.sum()) > int(random_success.sum()) + 5


def test_conv_surrogate_for_images_and_user_factories() -> None:
    """(C, H, W) inputs get the ConvNet; a user factory is called with the shape and classes."""
    assert isinstance(default_surrogate((1, 8, 8), 3)[0], nn.Conv2d)
    assert isinstance(default_surrogate((20,), 3)[1], nn.Linear)
    net = nn.Sequential(nn.Flatten(), linear_net(d=64))
    model = label_only(net)
    x = interior_inputs(12, d=64).reshape(12, 1, 8, 8)
    r = Substitute(rounds=2, max_queries=10)(model, x, eps=0.2)
    assert r.x_adv.shape == x.shape and int(r.queries.max()) <= 10
    calls: list[tuple[tuple[int, ...], int]] = []

    def factory(shape: tuple[int, ...], classes: int) -> nn.Module:
        calls.append((shape, classes))
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), classes))

    Substitute(surrogate=factory, rounds=1, max_queries=10)(model, x, eps=0.2)
    assert calls == [((1, 8, 8), 3)]


def test_factory_that_returns_no_module_is_a_config_error() -> None:
    model = label_only(linear_net())
    with pytest.raises(ConfigError, match="'surrogate' parameter of Substitute"):
        Substitute(surrogate=lambda shape, c: "net", rounds=1)(  # type: ignore[arg-type,return-value]
            model, interior_inputs(2), eps=0.1)


def _raises(shape: tuple[int, ...], c: int) -> nn.Module:
    raise ValueError("no network today")


# Found by the fuzz suite: each of these factories escaped as torch's (or the factory's)
# own RuntimeError, IndexError, ValueError or TypeError from deep inside training.
@pytest.mark.parametrize(("factory", "hint"), [
    (_raises, "It raised ValueError: no network today"),
    (lambda s, c: nn.Linear(math.prod(s) + 1, c), "raised RuntimeError on a batch of shape"),
    (lambda s, c: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), 1)),
     r"to torch.float32 of shape \(2, 1\)"),
    (lambda s, c: nn.Flatten(), "no trainable parameters"),
    (lambda s, c: nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), c)).double(),
     "raised RuntimeError"),
    (lambda: nn.Flatten(), "It raised TypeError"),
], ids=["raises", "wrong-inputs", "one-logit", "no-parameters", "float64", "no-arguments"])
def test_unusable_factory_is_a_config_error_before_training(factory: Any, hint: str) -> None:
    model = label_only(linear_net())
    with pytest.raises(ConfigError, match=f"'surrogate' parameter of Substitute.*{hint}"):
        Substitute(surrogate=factory, rounds=1)(model, interior_inputs(2), eps=0.1)


# ---------------------------------------------------------------------- the budget
@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
def test_budget_is_exact_and_never_exceeded(batch: int, budget: int) -> None:
    """Never fooled: 1 + (2**rounds - 1) labels + checks + 1, rounds fitted to the budget."""
    counting = Counting(label_only(linear_net()))
    x = interior_inputs(batch)
    r = Substitute(epochs=1, max_queries=budget)(counting, x, eps=1e-4)
    assert not bool(r.success.any())
    assert r.queries.tolist() == [expected_queries(budget)] * batch
    assert int(r.queries.max()) <= budget
    assert counting.rows == int(r.queries.sum())


@pytest.mark.parametrize("batch", [1, 7, 32])
@pytest.mark.parametrize("budget", [2, 3, 10, 101])
def test_budget_with_successes(batch: int, budget: int) -> None:
    counting = Counting(label_only(linear_net()))
    x = interior_inputs(batch, seed=9)
    r = Substitute(epochs=2, max_queries=budget)(counting, x, eps=0.1)
    assert int(r.queries.max()) <= budget
    assert counting.rows == int(r.queries.sum())


def test_one_attempt_makes_no_check_query() -> None:
    counting = Counting(label_only(linear_net()))
    r = Substitute(restarts=1, rounds=2, epochs=1)(counting, interior_inputs(3), eps=1e-4)
    assert r.queries.tolist() == [1 + 3 + 1] * 3


def test_every_query_is_on_the_grid_and_in_per_feature_bounds() -> None:
    lower = torch.linspace(-1.0, 0.0, D)
    upper = lower + torch.linspace(1.0, 3.0, D)
    step = (upper - lower) / 16
    counting = Counting(label_only(linear_net(), bounds=(lower.numpy(), upper.numpy()),
                                   levels=17), record=True)
    g = torch.Generator().manual_seed(2)
    x = lower + torch.round(torch.rand(5, D, generator=g) * 16) * step
    r = Substitute(rounds=3, epochs=2, max_queries=20)(counting, x, eps=0.4)
    seen = torch.cat(counting.seen)
    assert seen.shape[0] == int(r.queries.sum())
    k = (seen - lower) / step
    assert torch.allclose(k, k.round(), atol=1e-3)
    assert bool(((seen >= lower) & (seen <= upper)).all())
    assert bool((r.perturbation_norm <= 0.4 + 1e-5).all())


# ---------------------------------------------------------------------- seeds and state
def test_fixed_seed_reproduces_and_global_state_is_untouched() -> None:
    model = label_only(linear_net())
    x = interior_inputs(6, seed=7)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 - the global state is what is under test
    # L2: the step follows the surrogate's gradient itself, not only its signs.
    a = Substitute(norm="l2", rounds=2, epochs=2, seed=5)(model, x, eps=0.05)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002
    b = Substitute(norm="l2", rounds=2, epochs=2, seed=5)(model, x, eps=0.05)
    c = Substitute(norm="l2", rounds=2, epochs=2, seed=6)(model, x, eps=0.05)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    assert not torch.equal(a.x_adv, c.x_adv)


def test_eps_zero_and_already_fooled_samples_return_x() -> None:
    net = linear_net()
    model = label_only(net)
    x = interior_inputs(4)
    r = Substitute()(model, x, eps=0.0)
    assert torch.equal(r.x_adv, x) and r.queries.tolist() == [2] * 4
    y = net(x).detach().argmax(dim=1)
    wrong = (y + 1) % 3  # every sample "misclassified" already: nothing to do
    r = Substitute()(model, x, wrong, eps=0.1)
    assert torch.equal(r.x_adv, x) and r.queries.tolist() == [2] * 4


def test_progress_ends_at_its_total() -> None:
    calls: list[tuple[int, int]] = []
    Substitute(rounds=2, epochs=1)(label_only(linear_net()), interior_inputs(2), eps=1e-4,
                                   progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == 1 + 3 + 4
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("name", "value"), [
    ("rounds", 0), ("rounds", 21), ("epochs", 0), ("augment_step", 0.0),
    ("augment_step", 1.5), ("restarts", 0), ("surrogate", "mlp"), ("attack", LocalSearch()),
    ("attack", PGD), ("norm", "l3"), ("max_queries", 1),
])
def test_invalid_parameters_raise_config_error(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of Substitute"):
        Substitute(**{name: value})


def test_norm_goes_to_the_inner_attack() -> None:
    assert Substitute(norm="l2").attack == PGD(norm="l2", steps=20, early_stop=False,
                                               random_start=False)
    assert Substitute(attack=PGD(norm="l1")).norm == "l1"
    with pytest.raises(ConfigError, match="'norm' parameter of Substitute"):
        Substitute(attack=FGSM(), norm="l1")
