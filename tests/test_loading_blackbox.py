"""load_model for black-box models: .skops (safe), .onnx, and trusted sklearn pickles."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from hoodwink.errors import ConfigError  # noqa: E402
from hoodwink.models import OnnxClassifier, SklearnClassifier, load_model  # noqa: E402


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own transformer: skops cannot know whether its code is safe."""

    def fit(self, x: np.ndarray, y: Any = None) -> Doubler:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = 2 * x
        return out


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def pipeline(digits: tuple[np.ndarray, np.ndarray]) -> Any:
    x, y = digits
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:600], y[:600])


def _query(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
    xq = digits[0][600:800]
    return xq, torch.tensor(xq, dtype=torch.float32)


def test_skops_round_trip(tmp_path: Path, pipeline: Any, digits: Any) -> None:
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "pipe.skops"
    sio.dump(pipeline, path)
    clf = load_model(str(path), bounds=(0, 16), levels=17)
    assert isinstance(clf, SklearnClassifier)
    assert clf.levels == 17 and clf.capabilities.output == "probabilities"
    xq, x = _query(digits)
    assert clf.predict(x).tolist() == pipeline.predict(xq).tolist()
    np.testing.assert_allclose(clf.scores(x).numpy(), pipeline.predict_proba(xq), atol=1e-6)
    lo, hi = clf.bounds
    assert float(lo) == 0 and float(hi) == 16


def test_skops_with_untrusted_type_is_refused(tmp_path: Path, digits: Any) -> None:
    sio = pytest.importorskip("skops.io")
    x, y = digits
    est = make_pipeline(Doubler(), LogisticRegression(max_iter=2000)).fit(x[:300], y[:300])
    path = tmp_path / "custom.skops"
    sio.dump(est, path)
    with pytest.raises(ConfigError, match=r"Doubler.*would run their code.*"
                                          r"SklearnClassifier.*--trust-pickle does not apply"):
        load_model(str(path), bounds=(0, 16))
    # trust_pickle is not a way round it either.
    with pytest.raises(ConfigError, match="Doubler"):
        load_model(str(path), bounds=(0, 16), trust_pickle=True)


def test_skops_needs_bounds_and_no_normalisation(tmp_path: Path, pipeline: Any) -> None:
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "pipe.skops"
    sio.dump(pipeline, path)
    with pytest.raises(ConfigError, match=r"give --bounds lo,hi \(the range of the features"):
        load_model(str(path))
    with pytest.raises(ConfigError, match="StandardScaler"):
        load_model(str(path), bounds=(0, 16), mean=[0.5], std=[0.2])
    with pytest.raises(ConfigError, match="--arch"):
        load_model(str(path), bounds=(0, 16), arch="net.py:Net")
    with pytest.raises(ConfigError, match="No model file"):
        load_model(str(tmp_path / "absent.skops"), bounds=(0, 16))
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable .skops file"):
        load_model(str(junk), bounds=(0, 16))


def test_skops_regressor_is_refused(tmp_path: Path, digits: Any) -> None:
    sio = pytest.importorskip("skops.io")
    x, y = digits
    path = tmp_path / "reg.skops"
    sio.dump(LinearRegression().fit(x[:100], y[:100]), path)
    with pytest.raises(ConfigError, match="no classes_"):
        load_model(str(path), bounds=(0, 16))


def test_joblib_and_pickle_need_trust(tmp_path: Path, digits: Any) -> None:
    joblib = pytest.importorskip("joblib")
    x, y = digits
    rf = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(x[:600], y[:600])
    xq, xt = _query(digits)
    jl = tmp_path / "rf.joblib"
    joblib.dump(rf, jl)
    pk = tmp_path / "rf.pkl"
    with pk.open("wb") as f:
        pickle.dump(rf, f)
    for path in (jl, pk):
        with pytest.raises(ConfigError, match=r"executes code.*--trust-pickle"):
            load_model(str(path), bounds=(0, 16))
        clf = load_model(str(path), bounds=(0, 16), levels=17, trust_pickle=True)
        assert isinstance(clf, SklearnClassifier) and clf.levels == 17
        assert clf.predict(xt).tolist() == rf.predict(xq).tolist()
        with pytest.raises(ConfigError, match="give --bounds"):
            load_model(str(path), trust_pickle=True)
    # A torch pickle under .pkl still loads through torch (the existing behaviour).
    tp = tmp_path / "state.pkl"
    torch.save({"fc.weight": torch.zeros(3, 6)}, tp)
    with pytest.raises(ConfigError, match="state dict"):
        load_model(str(tp), trust_pickle=True)


def test_factory_may_return_a_fitted_estimator(tmp_path: Path) -> None:
    src = '''
import numpy as np
from sklearn.linear_model import LogisticRegression


def model():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return LogisticRegression().fit(x, ["cat", "cat", "dog", "dog"])
'''
    (tmp_path / "skmodel.py").write_text(src)
    spec = f"{tmp_path / 'skmodel.py'}:model"
    clf = load_model(spec, bounds=(0, 1))
    assert isinstance(clf, SklearnClassifier) and clf.class_names == ("cat", "dog")
    assert clf.predict(torch.tensor([[0.9, 0.5], [0.1, 0.5]])).tolist() == [1, 0]
    with pytest.raises(ConfigError, match="give --bounds"):
        load_model(spec)


def _export_linear(path: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, 2, 2),), str(path), input_names=["x"],
                          output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                          dynamo=False)
    return net


def test_onnx_file(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    path = tmp_path / "lin.onnx"
    net = _export_linear(path)
    x = torch.rand(5, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    clf = load_model(str(path), bounds=(0, 1), levels=256)
    assert isinstance(clf, OnnxClassifier) and clf.levels == 256
    with torch.no_grad():
        torch.testing.assert_close(clf.scores(x), net(x), atol=1e-5, rtol=0)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    normed = load_model(str(path), bounds=(0, 1), mean=mean, std=std)
    assert isinstance(normed, OnnxClassifier)
    m, s = torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(normed.scores(x), net((x - m) / s), atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="give --bounds"):
        load_model(str(path))
    with pytest.raises(ConfigError, match="give both or neither"):
        load_model(str(path), bounds=(0, 1), mean=mean)
    with pytest.raises(ConfigError, match="No model file"):
        load_model(str(tmp_path / "absent.onnx"), bounds=(0, 1))


@pytest.mark.slow  # a fresh interpreter imports torch: about 5 s
def test_cli_asks_for_bounds(tmp_path: Path, pipeline: Any) -> None:
    """Through the real entry point: one line, exit code 2, the --bounds fix."""
    sio = pytest.importorskip("skops.io")
    sio.dump(pipeline, tmp_path / "m.skops")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 64), np.float32), y=np.zeros(2, np.int64))
    r = subprocess.run([sys.executable, "-m", "hoodwink", "attack", "--model", "m.skops",
                        "--data", "d.npz", "--eps", "1"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert "give --bounds lo,hi" in r.stderr and "Traceback" not in r.stderr
