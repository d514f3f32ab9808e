"""Hardening of the linear studies: one test per root cause of issue 9 ("Linear studies")."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hoodwink.cli.linear import app
from hoodwink.errors import ConfigError, HoodwinkError, InputError
from hoodwink.studies.linear import (
    LinearModel,
    alpha_curve,
    fooling_confidence,
    measured_minimal_alpha,
    minimal_alpha,
    minimal_distance,
    template_attack,
    template_direction,
    toy_example,
    train_linear,
)

runner = CliRunner()


def _model() -> LinearModel:
    g = torch.Generator().manual_seed(0)
    return LinearModel(torch.randn(3, 4, generator=g), torch.zeros(3), (1, 2, 2),
                       class_names=("a", "b", "c"))


def _xy(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, 2, 2, generator=g)
    return x, (x[:, 0, 0, 0] > 0.5).long()


# ---------------------------------------------------------------------- LinearModel.load
def _save_raw(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=meta)
    return path


_GOOD_META = {"format": "hoodwink.linear_model/1", "kind": "softmax",
              "input_shape": "[1, 2, 2]", "class_names": '["a", "b", "c"]'}


def _good_tensors() -> dict[str, torch.Tensor]:
    return {"weight": torch.ones(3, 4), "bias": torch.zeros(3)}


@pytest.mark.parametrize("missing", ["kind", "input_shape", "class_names"])
def test_load_refuses_a_file_without_a_metadata_field(tmp_path: Path, missing: str) -> None:
    meta = {k: v for k, v in _GOOD_META.items() if k != missing}
    p = _save_raw(tmp_path / "m.safetensors", _good_tensors(), meta)
    with pytest.raises(InputError, match=missing) as info:
        LinearModel.load(p)
    assert str(p) in str(info.value)


@pytest.mark.parametrize(("field", "value"), [
    ("kind", "knn"),
    ("input_shape", "[1, 2"),            # not JSON
    ("input_shape", '"abc"'),            # not a list
    ("input_shape", "[1, 2, 3]"),        # 6 values for 4 columns
    ("input_shape", "[0, 4]"),           # a zero side
    ("input_shape", "[1.5, 2]"),         # not ints
    ("input_shape", "[true, 4]"),        # bools are not sides
    ("class_names", "{"),                # not JSON
    ("class_names", "[1, 2, 3]"),        # not strings
    ("class_names", '["a", "b"]'),       # 2 names for 3 classes
    ("format", "something/2"),
])
def test_load_refuses_bad_metadata_naming_file_and_field(tmp_path: Path, field: str,
                                                          value: str) -> None:
    meta = dict(_GOOD_META, **{field: value})
    p = _save_raw(tmp_path / "m.safetensors", _good_tensors(), meta)
    with pytest.raises(InputError) as info:
        LinearModel.load(p)
    assert str(p) in str(info.value)
    assert field in str(info.value)


@pytest.mark.parametrize("tensors", [
    {"weight": torch.ones(3, 4, dtype=torch.int64), "bias": torch.zeros(3)},
    {"weight": torch.ones(3, 4), "bias": torch.zeros(3, dtype=torch.int32)},
    {"weight": torch.ones(12), "bias": torch.zeros(3)},
    {"weight": torch.ones(3, 4), "bias": torch.zeros(2)},
    {"weight": torch.full((3, 4), math.nan), "bias": torch.zeros(3)},
    {"weight": torch.ones(3, 4), "bias": torch.tensor([0.0, math.inf, 0.0])},
    {"weight": torch.ones(3, 4)},
])
def test_load_refuses_bad_tensors(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    p = _save_raw(tmp_path / "m.safetensors", tensors, dict(_GOOD_META))
    with pytest.raises(InputError) as info:
        LinearModel.load(p)
    assert str(p) in str(info.value)


def test_load_refuses_a_folder_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No model file"):
        LinearModel.load(tmp_path)
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x00" * 20)
    with pytest.raises(InputError, match="junk"):
        LinearModel.load(p)


def test_save_load_round_trip_keeps_everything(tmp_path: Path) -> None:
    m = _model()
    back = LinearModel.load(m.save(tmp_path / "m.safetensors"))
    assert torch.equal(back.weight, m.weight) and torch.equal(back.bias, m.bias)
    assert back.input_shape == m.input_shape and back.class_names == m.class_names
    assert back.kind == m.kind


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize("kwargs", [
    {"kind": "knn"},
    {"kind": None},
    {"input_shape": (2, 2, 1, 1, 1)},          # right size is fine, checked below
    {"input_shape": (0, 4)},
    {"input_shape": (-1, -4)},
    {"input_shape": (2.0, 2.0)},
    {"input_shape": (True, 4)},
    {"input_shape": "4"},
    {"input_shape": 4},
    {"class_names": ("a", "b", 3)},
    {"class_names": "abc"},
    {"weight": torch.ones(3, 4, dtype=torch.int64)},
    {"weight": np.ones((3, 4), dtype=np.float32)},
    {"weight": torch.ones(0, 4), "bias": torch.zeros(0)},
    {"weight": torch.full((3, 4), math.nan)},
    {"bias": torch.tensor([0.0, math.inf, 0.0])},
    {"bias": [0.0, 0.0, 0.0]},
])
def test_constructor_refuses_bad_shapes_and_kinds(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"weight": torch.ones(3, 4), "bias": torch.zeros(3),
                            "input_shape": (1, 2, 2)}
    base.update(kwargs)
    if kwargs.get("input_shape") == (2, 2, 1, 1, 1):
        LinearModel(**base)  # 4 values: valid
        return
    with pytest.raises(HoodwinkError):
        LinearModel(**base)


def test_constructor_normalises_input_shape_to_python_ints() -> None:
    m = LinearModel(torch.ones(3, 4), torch.zeros(3), (np.int64(1), np.int64(4)))
    assert m.input_shape == (1, 4) and all(type(s) is int for s in m.input_shape)


# ---------------------------------------------------------------------- labels
def test_validation_labels_are_range_checked() -> None:
    x, y = _xy()
    with pytest.raises(InputError, match="y_val"):
        train_linear(x, y, x_val=x[:5], y_val=torch.tensor([0, 1, 5, 0, 1]), epochs=1,
                     warn=False)
    with pytest.raises(InputError, match="y_val"):
        train_linear(x, y, x_val=x[:5], y_val=torch.tensor([0, -1, 0, 0, 1]), epochs=1,
                     warn=False)


def test_validation_data_must_come_in_pairs() -> None:
    x, y = _xy()
    with pytest.raises(InputError, match="y_val"):
        train_linear(x, y, x_val=x[:5], epochs=1, warn=False)


def test_num_classes_and_class_names_are_checked() -> None:
    x, y = _xy()
    with pytest.raises(ConfigError, match="num_classes"):
        train_linear(x, y, num_classes=2.5, epochs=1, warn=False)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="class_names"):
        train_linear(x, y, num_classes=3, class_names=("a", "b"), epochs=1, warn=False)


# ---------------------------------------------------------------------- non-finite inputs
_NAN_X = torch.tensor([[[[0.5, math.nan], [0.1, 0.2]]]])
_INF_X = torch.tensor([[[[0.5, math.inf], [0.1, 0.2]]]])


@pytest.mark.parametrize("x", [_NAN_X, _INF_X])
@pytest.mark.parametrize("fn", [
    lambda m, x: minimal_alpha(m, x, 1),
    lambda m, x: minimal_distance(m, x),
    lambda m, x: template_direction(m, x, 1, direction="difference"),
    lambda m, x: template_attack(m, x, 1, 0.5),
    lambda m, x: measured_minimal_alpha(m, x, 1, alpha_max=1.0, grid=10),
    lambda m, x: alpha_curve(m, x, 1, torch.linspace(0, 1, 3)),
    lambda m, x: fooling_confidence(m, x, eps=0.1),
])
def test_closed_form_helpers_refuse_non_finite_inputs(fn: Any, x: torch.Tensor) -> None:
    with pytest.raises(InputError, match="x"):
        fn(_model(), x)


def test_closed_form_helpers_refuse_non_finite_alphas_and_bad_shapes() -> None:
    m, x = _model(), torch.rand(2, 1, 2, 2)
    with pytest.raises(HoodwinkError, match="alpha"):
        template_attack(m, x, 1, math.nan)
    with pytest.raises(HoodwinkError, match="alpha"):
        template_attack(m, x, 1, torch.tensor([0.1, math.inf]))
    with pytest.raises(HoodwinkError, match="alphas"):
        alpha_curve(m, x, 1, torch.tensor([0.0, math.nan]))
    with pytest.raises(HoodwinkError, match="alpha_max"):
        measured_minimal_alpha(m, x, 1, alpha_max=math.inf)
    with pytest.raises(HoodwinkError, match="x"):
        minimal_distance(m, torch.rand(2, 5))
    with pytest.raises(HoodwinkError, match="x"):
        minimal_alpha(m, [[0.1, 0.2, 0.3, 0.4]], 1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- toy sigmoid
@pytest.mark.parametrize("alpha", [-100.0, -1e6, 1e6])
def test_toy_is_numerically_stable(alpha: float) -> None:
    r = toy_example(alpha=alpha)
    assert 0.0 <= r.probability_adv <= 1.0 and math.isfinite(r.score_adv)
    assert r.probability_adv == (0.0 if alpha < 0 else 1.0)


def test_toy_refuses_an_alpha_whose_scores_overflow() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        toy_example(alpha=1e308)


def test_toy_cli_with_a_large_negative_alpha(tmp_path: Path) -> None:
    res = runner.invoke(app, ["toy", "--alpha", "-100", "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "P(class 1) = 0.0000" in res.output


# ---------------------------------------------------------------------- sizes and lr
def test_dimension_cli_refuses_bad_sizes_before_loading_data(tmp_path: Path) -> None:
    for sizes in ("0,4", "4,-2", "4", "a,b"):
        res = runner.invoke(app, ["dimension", "--data", str(tmp_path / "nothing.npz"),
                                  "--sizes", sizes, "--out", str(tmp_path / "d")])
        assert res.exit_code == 2, res.output
        assert "--sizes" in res.output and "No data" not in res.output
    assert not (tmp_path / "d").exists()


def test_diverged_training_is_reported_as_diverged(tmp_path: Path) -> None:
    x, y = _xy(200)
    model, log = train_linear(x * 100, y, lr=1e4, epochs=3, warn=False)
    assert log.diverged and [f.check for f in log.flags] == ["exploding_loss"]
    assert log.plateau_epoch() is None
    d = log.to_dict()
    assert d["diverged"] is True and d["plateau_epoch"] is None
    assert "initial weights" in log.flags[0].message


def test_diverged_train_cli_prints_no_none(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    g = np.random.default_rng(0)
    x = g.random((1000, 8, 8)).astype(np.float32)
    np.savez(p, x=x, y=(x[:, 0, 0] > 0.5).astype(np.int64))
    out = tmp_path / "t"
    res = runner.invoke(app, ["train", "--data", str(p), "--lr", "1e6", "--epochs", "2",
                              "--out", str(out)])
    assert res.exit_code == 3, res.output
    assert "None" not in res.output and "diverged" in res.output
    assert "ExplodingLossWarning" in res.output
    page = (out / "report.md").read_text()
    assert "None" not in page and "diverged" in page
    rec = json.loads((out / "report.json").read_text())
    assert rec["training"]["diverged"] is True


def test_train_help_documents_exit_code_3() -> None:
    res = runner.invoke(app, ["train", "--help"])
    text = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 0 and "3 training finished" in text, text
    root = Path(__file__).resolve().parents[2]
    readme = " ".join((root / "README.md").read_text().split())
    assert "3 `hoodwink linear train` finished" in readme
    docs = " ".join((root / "docs" / "linear.md").read_text().split())
    assert "and 3 when training finished" in docs


# ---------------------------------------------------------------------- n_compare
@pytest.mark.parametrize("value", ["-1", "0"])
def test_fool_cli_refuses_bad_n_compare(tmp_path: Path, value: str) -> None:
    model = _model_file(tmp_path)
    res = runner.invoke(app, ["fool", "--model", str(model), "--data", "synthetic",
                              "--n-compare", value, "--out", str(tmp_path / "f")])
    assert res.exit_code == 2, res.output
    assert "n_compare" in res.output or "--n-compare" in res.output


def _model_file(tmp_path: Path) -> Path:
    from hoodwink.studies.linear import synthetic_images

    d = synthetic_images(per_class=10, val_per_class=5)
    m, _ = train_linear(d.x_train, d.y_train, lr=0.05, epochs=1, warn=False,
                        num_classes=d.num_classes, class_names=d.class_names)
    return m.save(tmp_path / "m.safetensors")


# ---------------------------------------------------------------------- comparison colours
def test_comparison_figure_gives_each_attack_one_colour() -> None:
    from hoodwink.studies.linear.experiments.fool import _comparison_figure

    rows = []
    for norm, grid, attacks in (("linf", (0.01, 0.1), ("template (d = w_t)", "FGSM", "PGD-5")),
                                ("l2", (0.5, 1.0), ("template (d = w_t)", "PGD-5"))):
        for eps in grid:
            for a in attacks:
                rows.append({"attack": a, "norm": norm, "eps": eps, "success_rate": 0.5,
                             "mean_target_probability": 0.5})
    fig = _comparison_figure({"n": 5, "rows": rows})
    colours: dict[str, set[str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            colours.setdefault(str(line.get_label()), set()).add(str(line.get_color()))
    assert colours.keys() == {"template (d = w_t)", "FGSM", "PGD-5"}
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({next(iter(c)) for c in colours.values()}) == 3


# ---------------------------------------------------------------------- seeds
@pytest.mark.parametrize("seed", [np.int64(3), np.uint64(2**64 - 1), 2**64 - 1])
def test_training_accepts_every_seed_the_generator_takes(seed: Any) -> None:
    x, y = _xy()
    model, log = train_linear(x, y, seed=seed, epochs=1, warn=False)
    assert type(log.config["seed"]) is int


@pytest.mark.parametrize("seed", [2**64, -1, 1.0, True])
def test_training_refuses_seeds_the_generator_cannot_take(seed: Any) -> None:
    x, y = _xy()
    with pytest.raises(ConfigError, match="seed"):
        train_linear(x, y, seed=seed, epochs=1, warn=False)


def test_same_numpy_and_python_seed_give_the_same_model() -> None:
    x, y = _xy()
    a, _ = train_linear(x, y, seed=np.int64(7), epochs=1, warn=False)
    b, _ = train_linear(x, y, seed=7, epochs=1, warn=False)
    assert torch.equal(a.weight, b.weight)


def test_cli_refuses_a_seed_over_64_bits(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--data", "synthetic", "--seed", str(2**64),
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 2, res.output
    assert "seed" in res.output and "Traceback" not in res.output


def test_fool_refuses_a_noise_seed_over_64_bits(tmp_path: Path) -> None:
    model = _model_file(tmp_path)
    res = runner.invoke(app, ["fool", "--model", str(model), "--data", "synthetic",
                              "--noise-seed", str(2**64), "--out", str(tmp_path / "f")])
    assert res.exit_code == 2, res.output
    assert "noise_seed" in res.output


@pytest.mark.parametrize("kwargs", [{"size": 1}, {"classes": 1}, {"per_class": 0},
                                    {"val_per_class": 0}, {"smoothness": 0.0},
                                    {"signal": float("nan")}, {"seed": 2**64}, {"seed": -1}])
def test_synthetic_images_refuses_settings_that_cannot_work(kwargs: dict[str, Any]) -> None:
    """size=1 used to give NaN images (a one-pixel prototype is 0/0 after centring)."""
    from hoodwink.studies.linear.datasets import synthetic_images

    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=f"'{name}' parameter of synthetic_images"):
        synthetic_images(**kwargs)


def test_synthetic_images_smallest_size_is_finite() -> None:
    from hoodwink.studies.linear.datasets import synthetic_images

    data = synthetic_images(size=2, classes=2, per_class=2, val_per_class=2, seed=2**64 - 1)
    assert bool(torch.isfinite(data.x_train).all()) and bool(torch.isfinite(data.x_val).all())
