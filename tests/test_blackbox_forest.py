"""Black-box attacks fool a random forest: seeded success floors within a hard budget.

The essay's claim in miniature (``hoodwink forests`` measures it at scale): a
random forest has no gradients, yet attacks that read only its probabilities,
or only its labels, fool it within a few hundred queries. The floors sit well
below what the seeded runs reach (100%, 100% and 89% of the 28 digits the forest
gets right), and far above what a broken attack gets (a no-op fools none).
"""

from __future__ import annotations

import pytest
import torch

from hoodwink import SklearnClassifier
from hoodwink.attacks import registry
from hoodwink.data import load_digits8x8

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def forest() -> tuple[SklearnClassifier, torch.Tensor, torch.Tensor]:
    from sklearn.ensemble import RandomForestClassifier

    xtr, ytr = load_digits8x8("train")
    xte, yte = load_digits8x8("test")
    rf = RandomForestClassifier(n_estimators=25, random_state=0)
    rf.fit(xtr.reshape(len(xtr), -1).numpy(), ytr.numpy())
    # The 8x8 digits are integers 0..16, scaled to [0, 1]: a 17-level grid.
    return SklearnClassifier(rf, bounds=(0, 1), levels=17), xte[:30], yte[:30]


@pytest.mark.parametrize(("name", "params", "eps", "floor"), [
    ("square", {"norm": "linf"}, 4 / 16, 0.9),          # scores
    ("nes", {"norm": "linf"}, 4 / 16, 0.75),            # scores, estimated gradients
    ("hopskipjump", {"norm": "l2", "stop_at_eps": True}, 1.5, 0.9),  # labels only
])
def test_black_box_attacks_fool_a_random_forest(
    forest: tuple[SklearnClassifier, torch.Tensor, torch.Tensor], name: str,
    params: dict[str, object], eps: float, floor: float,
) -> None:
    model, x, y = forest
    result = registry.make(name, max_queries=500, seed=0, **params)(model, x, y, eps=eps)
    assert int(result.clean_correct.sum()) >= 25
    assert result.success_rate() >= floor, (name, result.success_rate())
    assert int(result.queries.max()) <= 500
    fooled = result.success
    assert torch.equal(model.predict(result.x_adv[fooled]) != y[fooled],
                       torch.ones(int(fooled.sum()), dtype=torch.bool))
