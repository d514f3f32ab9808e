"""The query budget is a hard, exact, per-sample guarantee of the base class.

Every registered attack that takes ``max_queries`` is run under generated
budgets, batch sizes, targets and restarts on a model that counts the rows it
is asked about. ``result.queries`` must never exceed ``max_queries`` for any
sample, and must add up to exactly what the model saw (with one sample, that is
the per-sample count itself).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _helpers import Counting, assert_within_budget
from hoodwink import PGD, TorchClassifier
from hoodwink.attacks import registry
from hoodwink.attacks._gate import QueryGate
from hoodwink.errors import CapabilityError, InternalError

BLACK_BOX = [i.name for i in registry.available() if i.threat != "white-box"]


def _model(dims: int, classes: int, levels: int | None, seed: int) -> TorchClassifier:
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(dims, classes)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(classes, dims, generator=g))
        lin.bias.copy_(torch.randn(classes, generator=g) * 0.1)
    net = torch.nn.Sequential(torch.nn.Flatten(), lin)  # takes (N, 16) or images (N, 1, 4, 4)
    return TorchClassifier(net.eval(), bounds=(0.0, 1.0), levels=levels, num_classes=classes)


def _attack(name: str, norm: str, budget: int, seed: int) -> Any:
    info = registry.get(name)
    if norm not in info.norms:
        norm = info.norms[0]
    params: dict[str, Any] = {"norm": norm, "max_queries": budget, "seed": seed}
    if "attack" in info.cls.__dataclass_fields__:
        params["attack"] = PGD(norm=norm, steps=5, restarts=2)
    try:
        return registry.make(name, **params)
    except Exception as exc:  # a budget too small for this attack's first step
        if "max_queries" in str(exc):
            return None
        raise


@pytest.mark.parametrize("name", BLACK_BOX)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([1, 3, 7]),
    budget=st.sampled_from([2, 3, 5, 10, 37, 101]),
    targeted=st.booleans(),
    levels=st.sampled_from([None, 256]),
    norm=st.sampled_from(["linf", "l2"]),
    seed=st.integers(0, 2**16),
)
def test_budget_is_never_exceeded_and_queries_are_exact(
    name: str, n: int, budget: int, targeted: bool, levels: int | None, norm: str, seed: int,
) -> None:
    inner = _model(16, 3, levels, seed)
    attack = _attack(name, norm, budget, seed)
    if attack is None:
        return
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(n, 1, 4, 4, generator=g)  # an image shape, so that every basis applies
    if levels:
        x = torch.round(x * (levels - 1)) / (levels - 1)
    model = Counting(inner, output="logits")
    eps = 0.3 if attack.norm == "linf" else 1.0
    if targeted:
        pred = inner.predict(x)
        result = attack(model, x, target=(pred + 1) % 3, eps=eps)
    else:
        result = attack(model, x, inner.predict(x), eps=eps)
    assert_within_budget(result, model.rows, budget)
    assert bool((result.queries >= 1).all())  # at least the verification pass


def test_the_gate_refuses_a_call_beyond_the_budget() -> None:
    model = _model(4, 2, None, 0)
    gate = QueryGate(model, 3, budget=4, device=torch.device("cpu"))
    x = torch.rand(3, 4)
    for _ in range(3):  # 3 of 4: one is held back for verification
        gate.predict(x)
    assert gate.remaining().tolist() == [0, 0, 0]
    with pytest.raises(InternalError, match="beyond its budget"):
        gate.predict(x[:1], torch.tensor([2]))
    with gate.verifying():
        gate.predict(x)
    assert gate.used.tolist() == [4, 4, 4]


def test_the_gate_charges_repeated_rows_to_their_sample() -> None:
    model = _model(4, 2, None, 0)
    gate = QueryGate(model, 3, budget=None, device=torch.device("cpu"))
    gate.scores(torch.rand(5, 4), torch.tensor([0, 0, 2, 0, 2]))
    assert gate.used.tolist() == [3, 0, 2]
    with pytest.raises(InternalError, match="without saying which samples"):
        gate.scores(torch.rand(2, 4))


def test_a_score_attack_on_a_label_only_model_names_the_attacks_that_fit() -> None:
    model = Counting(_model(4, 2, None, 0), output="labels")
    with pytest.raises(CapabilityError, match="hopskipjump") as err:
        registry.make("square", max_queries=10)(model, torch.rand(2, 4), eps=0.1)
    assert "square" not in str(err.value).split("fit this model:")[1]


def test_a_gradient_attack_on_a_score_model_names_the_attacks_that_fit() -> None:
    model = Counting(_model(4, 2, None, 0), output="probabilities")
    with pytest.raises(CapabilityError, match=r"gradient attack.*square.*EstimatedGradient"):
        PGD()(model, torch.rand(2, 4), eps=0.1)


class Noisy(Counting):
    """Answers with heavy random noise on the scores: the same input, different answers."""

    def __init__(self, inner: TorchClassifier) -> None:
        super().__init__(inner, output="logits")
        self.g = torch.Generator().manual_seed(0)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        s = super().scores(x)
        return s + 50 * torch.randn(s.shape, generator=self.g)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.scores(x).argmax(dim=1)


@pytest.mark.parametrize("name", ["square", "local-search", "hopskipjump"])
def test_a_stochastic_model_gets_a_warning(name: str) -> None:
    from hoodwink.errors import StochasticModelWarning

    model = Noisy(_model(8, 3, None, 0))
    x = torch.rand(16, 8, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(16, dtype=torch.int64)
    with pytest.warns(StochasticModelWarning, match="different answers for the same input"):
        registry.make(name, max_queries=50)(model, x, y, eps=0.5)


def test_a_deterministic_model_gets_no_warning() -> None:
    import warnings

    model = Counting(_model(8, 3, None, 0), output="logits")
    x = torch.rand(16, 8, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("square", "local-search", "hopskipjump", "simba"):
            registry.make(name, max_queries=50)(model, x, model.inner.predict(x), eps=0.5)
