"""Regressions for the failure classes bench/fuzz_census.py found after the first fixes.

Each case crashed outside the error tree, hung or returned NaN before its fix.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from hoodwink import Normalize, TorchClassifier
from hoodwink.errors import ConfigError, HoodwinkError, InputError
from hoodwink.studies import dream
from hoodwink.studies.linear.datasets import synthetic_images
from hoodwink.studies.linear.train import train_linear


def _tiny() -> TorchClassifier:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    return TorchClassifier(net, bounds=(0, 1))


@pytest.mark.parametrize("target", [0.0, -1.2e-38, b"1", {1}, None])
def test_dream_refuses_targets_that_are_not_classes(target: Any) -> None:
    with pytest.raises(ConfigError, match="'target' parameter of dream"):
        dream.run(_tiny(), target, shape=(1, 4, 4))


def test_dream_refuses_a_superscript_index() -> None:
    with pytest.raises(ConfigError, match="Unknown class"):
        dream.run(_tiny(), "²", shape=(1, 4, 4))


def test_dream_refuses_an_endless_step_count() -> None:
    with pytest.raises(ConfigError, match="'steps' parameter of dream"):
        dream.run(_tiny(), 0, shape=(1, 4, 4), steps=2**31)


def test_train_linear_refuses_a_weight_matrix_it_cannot_allocate() -> None:
    y = torch.tensor([0, 1] * 5 + [2**31, 0])
    with pytest.raises(InputError, match="labels go up to 2147483648"):
        train_linear(torch.rand(12, 1, 2, 2), y, batch_size=4)
    with pytest.raises(HoodwinkError):
        train_linear(torch.rand(12, 1, 2, 2), y, num_classes=2**31)
    with pytest.raises(ConfigError, match="'epochs' parameter"):
        train_linear(torch.rand(12, 1, 2, 2), torch.tensor([0, 1] * 6), epochs=2**31)


@pytest.mark.parametrize("kwargs", [{"classes": 2**31, "size": 2**31}, {"smoothness": 2.7e16},
                                    {"classes": 5000, "size": 4096}])
def test_synthetic_images_refuses_sizes_it_cannot_allocate(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="synthetic_images"):
        synthetic_images(**kwargs)


def test_normalize_refuses_statistics_that_overflow_float32() -> None:
    with pytest.raises(ConfigError, match="overflows float32"):
        Normalize(2147483648, 1e-30, 2)
    out = Normalize(0.5, 1e-30, 1)(torch.full((1, 1, 2, 2), 0.5))  # the edge that stays finite
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("study", ["dream", "background", "transfer"])
def test_every_study_refuses_a_seed_the_generator_cannot_take(study: str) -> None:
    """dream --seed 2**64 crashed with "Overflow when unpacking long long" (long fuzz run)."""
    from hoodwink.studies import background, transfer

    with pytest.raises(ConfigError, match="'seed' parameter .* \\[0, 2\\*\\*64 - 1\\]"):
        if study == "dream":
            dream.run(_tiny(), 0, shape=(1, 4, 4), seed=2**64)
        elif study == "background":
            background.background_class_study(seed=2**64)
        else:
            transfer.transfer_study(_tiny(), {"t": _tiny()}, torch.rand(2, 1, 4, 4),
                                    torch.tensor([0, 1]), seed=2**64)
