"""Training and the essay's sanity checks: they fire on bad settings, not on good ones."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from hoodwink.errors import ConfigError, InputError, SanityWarning
from hoodwink.studies.linear import (
    ExplodingLossWarning,
    InitialLossWarning,
    LinearModel,
    WeakRegularizationWarning,
    expected_initial_loss,
    train_linear,
)


def _blobs(n: int = 300, d: int = 64, c: int = 4,
           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(c, d, generator=g)
    y = torch.arange(c).repeat_interleave(n // c)
    x = (0.6 * means[y] + 0.4 * torch.rand(y.shape[0], d, generator=g)).clamp(0, 1)
    return x.reshape(-1, 1, 8, 8), y


GOOD = {"init_std": 1e-3, "lr": 0.05, "weight_decay": 1e-2, "epochs": 15, "batch_size": 32}


def _train(**kw: object) -> tuple[LinearModel, object, list[warnings.WarningMessage]]:
    x, y = _blobs()
    args = dict(GOOD)
    args.update(kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, log = train_linear(x, y, **args)  # type: ignore[arg-type]
    return model, log, [w for w in caught if issubclass(w.category, SanityWarning)]


@pytest.mark.parametrize("kind", ["softmax", "svm"])
def test_good_hyperparameters_raise_no_flag_and_learn(kind: str) -> None:
    model, log, caught = _train(kind=kind)
    assert caught == []
    assert log.flags == []  # type: ignore[attr-defined]
    x, y = _blobs(seed=0)
    assert float((model.predict(x) == y).float().mean()) > 0.95
    # Initial loss sits next to ln C (softmax) or C - 1 (SVM).
    assert log.initial_loss == pytest.approx(  # type: ignore[attr-defined]
        expected_initial_loss(kind, 4), rel=0.05)  # type: ignore[arg-type]


def test_expected_initial_loss_values() -> None:
    assert expected_initial_loss("softmax", 1000) == pytest.approx(6.9078, abs=1e-4)
    assert expected_initial_loss("softmax", 10) == pytest.approx(2.3026, abs=1e-4)
    assert expected_initial_loss("svm", 10) == 9.0


def test_large_init_std_fires_initial_loss_warning_naming_init_std() -> None:
    _, log, caught = _train(init_std=1.0)
    assert [w.category for w in caught][:1] == [InitialLossWarning]
    flag = log.flags[0]  # type: ignore[attr-defined]
    assert flag.check == "initial_loss" and flag.parameter == "init_std"
    assert "init_std=1" in flag.message and flag.value > 1.5 * math.log(4)
    assert flag.suggestion < 1.0


def test_essay_case_initial_loss_80_instead_of_7() -> None:
    # 1000 classes, 12,288 inputs of 0..255-ish scale, std 0.01: the essay's ~80.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3 * 16 * 16, generator=g) * 100  # big raw inputs
    y = torch.randint(0, 1000, (64,), generator=g)
    with pytest.warns(InitialLossWarning, match="init_std=0.01"):
        _, log = train_linear(x, y, num_classes=1000, init_std=0.01, lr=1e-9, epochs=1,
                              weight_decay=0.0)
    assert log.initial_loss > 20


def test_high_learning_rate_fires_exploding_loss_and_stops() -> None:
    _, log, caught = _train(lr=1e4, epochs=10)
    assert ExplodingLossWarning in [w.category for w in caught]
    assert log.diverged  # type: ignore[attr-defined]
    flag = next(f for f in log.flags if f.check == "exploding_loss")  # type: ignore[attr-defined]
    assert flag.parameter == "lr" and flag.suggestion == pytest.approx(1e3)
    assert "lower it" in flag.message


def test_negligible_weight_decay_fires_and_zero_does_not() -> None:
    _, log, caught = _train(weight_decay=1e-7)
    assert [w.category for w in caught] == [WeakRegularizationWarning]
    assert log.reg_share < 1e-3  # type: ignore[attr-defined]
    _, log0, caught0 = _train(weight_decay=0.0)
    assert caught0 == [] and log0.flags == []  # type: ignore[attr-defined]


def test_warn_false_records_flags_silently() -> None:
    x, y = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, log = train_linear(x, y, init_std=1.0, epochs=1, warn=False)
    assert [f.check for f in log.flags][:1] == ["initial_loss"]


def test_training_is_reproducible_with_a_seed() -> None:
    m1, _, _ = _train()
    m2, _, _ = _train()
    assert torch.equal(m1.weight, m2.weight)


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"lr": 0.0}, "lr"), ({"init_std": -1.0}, "init_std"), ({"epochs": 0}, "epochs"),
     ({"batch_size": 1.5}, "batch_size"), ({"weight_decay": -1e-3}, "weight_decay"),
     ({"momentum": 1.0}, "momentum"), ({"kind": "hinge"}, "kind")],
)
def test_bad_hyperparameters_raise_config_error_naming_them(kw: dict[str, object],
                                                           name: str) -> None:
    x, y = _blobs()
    with pytest.raises(ConfigError, match=f"'{name}'"):
        train_linear(x, y, **kw)  # type: ignore[arg-type]


def test_bad_labels_raise_input_errors() -> None:
    x, y = _blobs()
    with pytest.raises(InputError, match="shape"):
        train_linear(x, y[:-1])
    with pytest.raises(InputError, match="integer"):
        train_linear(x, y.float())
    with pytest.raises(InputError, match="at least 2 classes"):
        train_linear(x, torch.zeros_like(y))


def test_model_round_trips_through_safetensors(tmp_path: object) -> None:
    from pathlib import Path

    model, _, _ = _train()
    p = model.save(Path(str(tmp_path)) / "m.safetensors")
    loaded = LinearModel.load(p)
    assert torch.equal(loaded.weight, model.weight) and torch.equal(loaded.bias, model.bias)
    assert loaded.input_shape == (1, 8, 8) and loaded.kind == "softmax"
    bad = Path(str(tmp_path)) / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError):
        LinearModel.load(bad)


def test_as_classifier_runs_library_attacks() -> None:
    import hoodwink

    model, _, _ = _train()
    x, y = _blobs()
    clf = model.as_classifier()
    assert torch.equal(clf.predict(x), model.predict(x))
    r = hoodwink.FGSM()(clf, x[:20], y[:20], eps=0.3)
    assert r.success.float().mean() > 0.5
    r2 = hoodwink.PGD(norm="l2", steps=10)(clf, x[:20], target=(y[:20] + 1) % 4, eps=3.0)
    assert r2.success.any()
