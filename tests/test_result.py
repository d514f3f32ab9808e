"""AttackResult metrics and records, sweeps, restarts and query accounting."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, AttackResult, TorchClassifier
from hoodwink.attacks.result import SCHEMA_VERSION
from hoodwink.errors import ConfigError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # Tiny models run much faster single-threaded, above all on a busy 2-core CI box.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def hand_built(
    y: list[int], pred_clean: list[int], pred_adv: list[int], target: list[int] | None = None,
) -> AttackResult:
    """An AttackResult whose success and clean_correct follow the documented definitions."""
    yt, pc, pa = torch.tensor(y), torch.tensor(pred_clean), torch.tensor(pred_adv)
    tt = torch.tensor(target) if target is not None else None
    success = pa == tt if tt is not None else pa != yt
    n = len(y)
    return AttackResult(
        x_adv=torch.zeros(n, 2), success=success, clean_correct=pc == yt, pred_clean=pc,
        pred_adv=pa, perturbation_norm=torch.linspace(0, 0.1, n),
        queries=torch.full((n,), 3), y=yt, target=tt, eps=0.1, norm="linf",
        attack="FGSM(norm='linf')", seed=0, time_s=0.01,
    )


# ---------------------------------------------------------------------- metrics
def test_robust_accuracy_counts_clean_errors_as_errors() -> None:
    """robust_accuracy = mean(pred_adv == y) over all samples, misclassified-before included."""
    # sample 0: fooled; 1: resists; 2: wrong before and after; 3: resists;
    # 4: wrong before, "right" after (the attack pushed it back onto y, a win for the model).
    r = hand_built(y=[0, 1, 2, 0, 1], pred_clean=[0, 1, 0, 0, 2], pred_adv=[1, 1, 0, 0, 1])
    assert r.robust_accuracy() == pytest.approx(3 / 5)
    assert r.clean_accuracy() == pytest.approx(3 / 5)


def test_success_rate_untargeted_excludes_clean_errors() -> None:
    """Untargeted success_rate = mean(success[clean_correct]): already-wrong samples don't count."""
    r = hand_built(y=[0, 1, 2, 0, 1], pred_clean=[0, 1, 0, 0, 2], pred_adv=[1, 1, 0, 0, 1])
    # Clean-correct samples 0, 1, 3; only sample 0 was fooled.
    assert r.success_rate() == pytest.approx(1 / 3)


def test_success_rate_targeted_counts_all_samples() -> None:
    """Targeted success_rate = mean(pred_adv == target) over every sample."""
    r = hand_built(y=[0, 1, 2, 0], pred_clean=[0, 1, 0, 0], pred_adv=[2, 1, 1, 1],
                   target=[2, 0, 1, 1])
    assert r.targeted
    assert r.success_rate() == pytest.approx(3 / 4)
    assert r.robust_accuracy() == pytest.approx(1 / 4)


def test_success_rate_is_nan_when_nothing_to_attack() -> None:
    """With every sample misclassified before the attack, untargeted success_rate is nan."""
    r = hand_built(y=[0, 1], pred_clean=[1, 0], pred_adv=[1, 0])
    assert math.isnan(r.success_rate())
    assert r.robust_accuracy() == 0.0


def test_robust_accuracy_needs_labels() -> None:
    """robust_accuracy() without true labels raises a ValueError saying so."""
    r = hand_built(y=[0, 1], pred_clean=[0, 1], pred_adv=[1, 1])
    r = AttackResult(**{**r.__dict__, "y": None})
    with pytest.raises(ValueError, match="needs true labels"):
        r.robust_accuracy()


# ---------------------------------------------------------------------- records
def model_and_data(
    n: int = 40, seed: int = 0
) -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    """A 3-class linear model and inputs in [0, 1] it mostly classifies correctly."""
    torch.manual_seed(seed)
    net = nn.Linear(8, 3).eval()
    model = TorchClassifier(net)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 8, generator=g)
    y = model.predict(x)
    y[:4] = (y[:4] + 1) % 3  # a few samples misclassified before the attack
    return model, x, y


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_to_dict_is_json_with_schema(targeted: bool) -> None:
    """to_dict() is strict JSON (no NaN) with the schema version, summary and per-sample lists."""
    model, x, y = model_and_data()
    kw: dict[str, Any] = {"target": (y + 1) % 3} if targeted else {}
    r = PGD(steps=5)(model, x, y, eps=0.1, **kw)
    rec = r.to_dict()
    text = json.dumps(rec, allow_nan=False)
    back = json.loads(text)
    assert back["schema"] == SCHEMA_VERSION
    assert back["summary"]["n"] == len(x)
    assert back["summary"]["targeted"] is targeted
    assert back["samples"]["success"] == r.success.tolist()
    assert len(back["samples"]["perturbation_norm"]) == len(x)
    assert "samples" not in r.to_dict(per_sample=False)


def test_to_dict_with_nan_success_rate_is_strict_json() -> None:
    """A result whose success_rate is nan still serialises to strict JSON (as null)."""
    r = hand_built(y=[0, 1], pred_clean=[1, 0], pred_adv=[1, 0])
    rec = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert rec["summary"]["success_rate"] is None


# ---------------------------------------------------------------------- sweep
def test_sweep_returns_one_result_per_eps_in_order() -> None:
    """sweep() returns one result per budget, in the given order, each equal to a single call."""
    model, x, y = model_and_data()
    budgets = [0.2, 0.0, 0.05, 0.1]
    results = FGSM().sweep(model, x, y, eps=budgets)
    assert [r.eps for r in results] == budgets
    for r, e in zip(results, budgets, strict=True):
        assert torch.equal(r.x_adv, FGSM()(model, x, y, eps=e).x_adv)
    # FGSM on a linear model: a larger step fools at least as many samples.
    rates = [r.success.sum().item() for r in sorted(results, key=lambda r: r.eps)]
    assert rates == sorted(rates)
    arr = FGSM().sweep(model, x, y, eps=np.array(budgets))
    assert [r.eps for r in arr] == budgets


@pytest.mark.parametrize(
    "eps", [0.1, 1, np.float64(0.1), np.array(0.1), "0.1", [[0.1, 0.2]]],
    ids=["float", "int", "numpy-float", "numpy-0d", "string", "nested"],
)
def test_sweep_rejects_scalar_eps(eps: Any) -> None:
    """sweep() with anything but a flat list of budgets raises ConfigError."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match="list of budgets"):
        FGSM().sweep(model, x, y, eps=eps)


def test_sweep_rejects_bad_budget_in_list() -> None:
    """A bad budget inside the list raises the same ConfigError as a single call."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match=r"'eps' parameter of FGSM"):
        FGSM().sweep(model, x, y, eps=[0.1, -0.1])
    with pytest.raises(ConfigError, match=r"'eps' parameter of FGSM"):
        FGSM().sweep(model, x, y, eps=[0.1, "0.2"])


def test_sweep_rejects_empty_list() -> None:
    """sweep() with no budgets raises ConfigError."""
    model, x, y = model_and_data()
    with pytest.raises(ConfigError, match="at least one budget"):
        FGSM().sweep(model, x, y, eps=[])


# ---------------------------------------------------------------------- restarts and queries
def hard_case() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor, float]:
    """Data and an eps at which one short PGD run fools some samples but not all."""
    model, x, y = model_and_data(n=60, seed=1)
    return model, x, y, 0.08


def test_restarts_keep_the_best_per_sample() -> None:
    """A sample fooled in restart 1 stays fooled, with the same x_adv, after more restarts."""
    model, x, y, eps = hard_case()
    # Two short steps: where a run ends depends on its random start, so restarts matter.
    one = PGD(steps=2, stepsize=eps / 4, restarts=1, seed=5)(model, x, y, eps=eps)
    many = PGD(steps=2, stepsize=eps / 4, restarts=6, seed=5)(model, x, y, eps=eps)
    fooled = one.success
    assert 0 < int(fooled.sum()) < len(x) - 4
    assert bool(many.success[fooled].all())
    assert torch.equal(many.x_adv[fooled], one.x_adv[fooled])
    assert int(many.success.sum()) > int(fooled.sum())  # the extra restarts found more


class BumpThenCrowd(nn.Module):
    """1-D input t in [0, 1]; true class 0 has logit 0.

    Class 1 wins only in a bump around t = 0.5; ten more classes rise with t and
    end just below class 0. Cross-entropy keeps growing past the bump, so gradient
    ascent from t = 0 passes through an adversarial stretch and ends, at its highest
    loss, classified correctly again.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x[:, :1]
        bump = 0.2 - 40 * (t - 0.5) ** 2
        crowd = (t - 1.01).expand(-1, 10)
        return torch.cat([torch.zeros_like(t), bump, crowd], dim=1)


@pytest.mark.parametrize("early_stop", [True, False])
def test_adversarial_iterate_beats_higher_loss(early_stop: bool) -> None:
    """A sample adversarial at some iterate ends adversarial, though later ones score higher."""
    model = TorchClassifier(BumpThenCrowd().eval())
    attack = PGD(steps=20, stepsize=0.05, random_start=False, early_stop=early_stop)
    r = attack(model, torch.zeros(1, 1), torch.tensor([0]), eps=1.0)
    assert r.success.tolist() == [True]
    assert 0.4 <= r.x_adv.item() <= 0.6
    # The premise: the end of the path has a higher loss and is not adversarial.
    end = torch.ones(1, 1)
    assert model.predict(end).item() == 0
    ce = nn.functional.cross_entropy
    assert ce(model.logits(end), torch.tensor([0])) > ce(model.logits(r.x_adv), torch.tensor([0]))


def test_best_iterate_is_kept_without_early_stop() -> None:
    """With early_stop=False every sample fooled with early stopping is still fooled."""
    model, x, y, eps = hard_case()
    stop = PGD(steps=10, early_stop=True, seed=5)(model, x, y, eps=eps)
    go_on = PGD(steps=10, early_stop=False, seed=5)(model, x, y, eps=eps)
    assert bool(go_on.success[stop.success].all())


def test_early_stop_saves_queries() -> None:
    """Samples fooled early stop spending queries; already-wrong ones cost only the 2 checks."""
    model, x, y, _ = hard_case()
    steps = 20
    r = PGD(steps=steps, seed=5)(model, x, y, eps=0.2)
    full = PGD(steps=steps, early_stop=False, seed=5)(model, x, y, eps=0.2)
    attacked = r.clean_correct
    fooled = r.success & attacked
    assert int(fooled.sum()) >= 10
    assert bool((r.queries[fooled] < steps).all())
    assert bool((r.queries[~attacked] == 2).all())
    assert int(r.queries.sum()) < int(full.queries.sum())
    # Without early stopping every attacked sample spends the whole run.
    assert bool((full.queries[attacked] == steps + 1 + 2).all())


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize(("steps", "restarts"), [(1, 1), (4, 3), (7, 2)])
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_queries_never_exceed_budget(steps: int, restarts: int, norm: str, targeted: bool) -> None:
    """Per sample, queries <= restarts*(steps+1) + 2, and samples never fooled use exactly that."""
    model, x, y, _ = hard_case()
    eps = {"linf": 0.05, "l2": 0.1, "l1": 0.3}[norm]
    kw: dict[str, Any] = {"target": (y + 1) % 3} if targeted else {}
    r = PGD(norm=norm, steps=steps, restarts=restarts)(model, x, y, eps=eps, **kw)
    budget = restarts * (steps + 1) + 2
    assert bool((r.queries <= budget).all())
    assert bool((r.queries >= 2).all())
    assert not bool(r.success.all())
    assert bool((r.queries[~r.success] == budget).all())


def test_fgsm_counts_one_query_plus_checks() -> None:
    """FGSM spends one gradient query per sample, plus the clean and verification passes."""
    model, x, y = model_and_data()
    r = FGSM()(model, x, y, eps=0.05)
    assert r.queries.tolist() == [3] * len(x)
