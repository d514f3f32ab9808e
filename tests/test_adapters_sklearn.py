"""SklearnClassifier: the black-box contract over scikit-learn, XGBoost and LightGBM models."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import hoodwink  # noqa: E402
from hoodwink.errors import (  # noqa: E402
    CapabilityError,
    ConfigError,
    InputError,
    ModelOutputError,
    ShapeError,
)
from hoodwink.models import Classifier, SklearnClassifier  # noqa: E402


def _xgb() -> Any:
    xgboost = pytest.importorskip("xgboost")
    return xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1, random_state=0)


def _lgbm() -> Any:
    lightgbm = pytest.importorskip("lightgbm")
    return lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, n_jobs=1, verbose=-1,
                                   random_state=0)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (bundled, offline): 600 to fit, 300 to query."""
    x, y = load_digits(return_X_y=True)
    return x[:600], y[:600], x[600:900]


# Each builds an unfitted estimator and names the output the adapter must pick.
ESTIMATORS: dict[str, tuple[Callable[[], Any], str]] = {
    "forest": (lambda: RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1),
               "probabilities"),
    "boosting": (lambda: GradientBoostingClassifier(n_estimators=5, max_depth=2,
                                                    random_state=0), "probabilities"),
    "svc": (lambda: SVC(gamma=0.001), "logits"),
    "knn": (lambda: KNeighborsClassifier(n_neighbors=5), "probabilities"),
    "logreg": (lambda: LogisticRegression(max_iter=2000), "probabilities"),
    "pipeline": (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                 "probabilities"),
    "xgboost": (_xgb, "probabilities"),
    "lightgbm": (_lgbm, "probabilities"),
}


@pytest.fixture(scope="module")
def fitted(digits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, Any]:
    x, y, _ = digits
    return {name: make().fit(x, y) for name, (make, _) in ESTIMATORS.items()
            if name not in ("xgboost", "lightgbm")}


def _estimator(name: str, fitted: dict[str, Any], digits: Any) -> Any:
    if name in fitted:
        return fitted[name]
    x, y, _ = digits
    return ESTIMATORS[name][0]().fit(x, y)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_predict_and_scores_match_the_estimator(name: str, fitted: dict[str, Any],
                                                digits: Any) -> None:
    """predict is the estimator's own decision; the scores are its own method's output."""
    est = _estimator(name, fitted, digits)
    _, _, xq = digits
    clf = SklearnClassifier(est, bounds=(0, 16), levels=17)
    assert isinstance(clf, Classifier)
    kind = ESTIMATORS[name][1]
    assert clf.capabilities == hoodwink.Capabilities(differentiable=False, output=kind)
    assert clf.num_classes == 10 and clf.class_names == tuple(str(i) for i in range(10))
    assert clf.levels == 17 and clf.device == torch.device("cpu")
    x = torch.tensor(xq, dtype=torch.float32)
    pred = clf.predict(x)
    assert pred.dtype == torch.int64 and pred.shape == (300,)
    assert pred.tolist() == clf.encode_labels(est.predict(xq)).tolist()
    s = clf.scores(x)
    assert s.dtype == torch.float32 and s.shape == (300, 10)
    if kind == "probabilities":
        ref = est.predict_proba(xq)
        np.testing.assert_allclose(s.numpy(), ref, atol=1e-6)
        assert torch.equal(s.argmax(1), pred)
    else:
        ref = est.decision_function(xq)
        np.testing.assert_allclose(s.numpy(), ref, rtol=1e-6, atol=1e-6)
        # SVC predicts by one-vs-one votes; its 'ovr' scores are the votes plus a
        # confidence term of size < 1/3, so round(scores) are the votes, and predict is
        # the first class with the most votes (libsvm's tie rule).
        votes = np.round(s.numpy())
        assert pred.tolist() == votes.argmax(1).tolist()
        unique_top = (votes == votes.max(1, keepdims=True)).sum(1) == 1
        assert unique_top.mean() > 0.9
        assert torch.equal(s.argmax(1)[unique_top], pred[unique_top])


def test_images_are_flattened_and_chunked(fitted: dict[str, Any], digits: Any) -> None:
    """(N, 1, 8, 8) inputs give the same answers as (N, 64); chunking changes nothing."""
    _, _, xq = digits
    est = fitted["forest"]
    flat = torch.tensor(xq, dtype=torch.float32)
    whole = SklearnClassifier(est, bounds=(0, 16)).scores(flat)
    chunked = SklearnClassifier(est, bounds=(0, 16), batch_size=7,
                                input_shape=(1, 8, 8)).scores(flat.reshape(-1, 1, 8, 8))
    assert torch.equal(whole, chunked)
    # Per-feature bounds of one input's shape are accepted.
    lo, hi = torch.zeros(1, 8, 8), torch.full((1, 8, 8), 16.0)
    clf = SklearnClassifier(est, bounds=(lo, hi))
    assert torch.equal(clf.predict(flat.reshape(-1, 1, 8, 8)), whole.argmax(1))


def test_empty_batch(fitted: dict[str, Any]) -> None:
    clf = SklearnClassifier(fitted["logreg"], bounds=(0, 16))
    empty = torch.zeros(0, 64)
    assert clf.predict(empty).shape == (0,) and clf.predict(empty).dtype == torch.int64
    assert clf.scores(empty).shape == (0, 10)


def test_input_is_not_changed_and_estimator_is_not_mutated(fitted: dict[str, Any],
                                                          digits: Any) -> None:
    _, _, xq = digits
    est = fitted["pipeline"]
    params = est.get_params(deep=True)
    attrs = {k: set(vars(v)) for k, v in est.named_steps.items()} | {"": set(vars(est))}
    before = est.predict_proba(xq)
    x = torch.tensor(xq, dtype=torch.float32)
    x0 = x.clone()
    clf = SklearnClassifier(est, bounds=(0, 16))
    clf.scores(x)
    clf.predict(x)
    assert torch.equal(x, x0)
    assert est.get_params(deep=True).keys() == params.keys()
    assert all(est.get_params(deep=True)[k] is v or est.get_params(deep=True)[k] == v
               for k, v in params.items())
    assert {k: set(vars(v)) for k, v in est.named_steps.items()} | {"": set(vars(est))} == attrs
    np.testing.assert_array_equal(est.predict_proba(xq), before)


def test_binary_decision_function_becomes_two_scores(digits: Any) -> None:
    """A (N,) decision d becomes [-d/2, d/2]: class 1 wins exactly where d > 0."""
    x, y, xq = digits
    yb = (y % 2 == 1).astype(int)
    for est in (SVC(gamma=0.001).fit(x, yb),
                LogisticRegression(max_iter=2000).fit(x, yb)):
        clf = SklearnClassifier(est, bounds=(0, 16), output="logits")
        assert clf.capabilities.output == "logits" and clf.num_classes == 2
        s = clf.scores(torch.tensor(xq, dtype=torch.float32))
        d = est.decision_function(xq).astype(np.float32)
        np.testing.assert_array_equal(s.numpy(), np.stack([-d / 2, d / 2], axis=1))
        pred = clf.predict(torch.tensor(xq, dtype=torch.float32))
        assert pred.tolist() == est.predict(xq).tolist() == (d > 0).astype(int).tolist()


def _blobs(labels: list[Any], n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = np.concatenate([c + rng.normal(scale=0.5, size=(n, 2)) for c in centres])
    y = np.repeat(np.array(labels, dtype=object if isinstance(labels[0], str) else None), n)
    return x, y


@pytest.mark.parametrize("labels", [["cat", "dog", "emu"], [3, 7, 10]], ids=["str", "int"])
def test_class_labels_round_trip(labels: list[Any]) -> None:
    x, y = _blobs(labels)
    est = LogisticRegression().fit(x, y)
    clf = SklearnClassifier(est, bounds=(-3, 7))
    assert clf.class_names == tuple(str(c) for c in labels)
    assert clf.encode_labels(labels).tolist() == [0, 1, 2]
    assert clf.encode_labels(np.array(labels[::-1])).tolist() == [2, 1, 0]
    assert clf.decode_labels([2, 0]).tolist() == [labels[2], labels[0]]
    xt = torch.tensor(x, dtype=torch.float32)
    pred = clf.predict(xt)
    assert pred.tolist() == clf.encode_labels(est.predict(x)).tolist()
    assert clf.decode_labels(pred).tolist() == est.predict(x).tolist()
    assert (pred.numpy() == np.repeat([0, 1, 2], 30)).mean() > 0.95  # the blobs separate
    unknown = "cow" if isinstance(labels[0], str) else 0
    with pytest.raises(InputError, match=r"not a class.*classes are .*" + str(labels[2])):
        clf.encode_labels([labels[0], unknown])
    with pytest.raises(InputError, match=r"outside the class indices 0\.\.2"):
        clf.decode_labels([3])
    with pytest.raises(InputError, match="integers"):
        clf.decode_labels([0.5])


def test_identity_classes_are_indices(fitted: dict[str, Any]) -> None:
    clf = SklearnClassifier(fitted["forest"], bounds=(0, 16))
    assert clf.encode_labels(np.arange(10)).tolist() == list(range(10))
    assert clf.decode_labels(np.arange(10)).tolist() == list(range(10))
    with pytest.raises(InputError, match="not a class"):
        clf.encode_labels([10])


class LabelsOnly(ClassifierMixin, BaseEstimator):
    """A classifier with fit and predict only: nearest of two fixed centres."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> LabelsOnly:
        self.classes_ = np.unique(y)
        self.centres_ = np.stack([x[y == c].mean(0) for c in self.classes_])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        d = ((x[:, None, :] - self.centres_[None]) ** 2).sum(-1)
        out: np.ndarray = self.classes_[d.argmin(1)]
        return out


def test_predict_only_classifier_is_labels_only() -> None:
    x, y = _blobs(["a", "b", "c"])
    est = LabelsOnly().fit(x, y)
    clf = SklearnClassifier(est, bounds=(-3, 7))
    assert clf.capabilities.output == "labels"
    xt = torch.tensor(x, dtype=torch.float32)
    assert clf.predict(xt).tolist() == clf.encode_labels(est.predict(x)).tolist()
    with pytest.raises(CapabilityError, match=r"predict_proba.*HopSkipJump"):
        clf.scores(xt)
    # A richer estimator can be forced down to labels.
    forced = SklearnClassifier(LogisticRegression().fit(x, y), bounds=(-3, 7), output="labels")
    assert forced.capabilities.output == "labels"
    with pytest.raises(CapabilityError, match="label-only"):
        forced.scores(xt)


def test_unfitted_regressor_and_missing_output_are_refused(digits: Any) -> None:
    x, y, _ = digits
    with pytest.raises(ConfigError, match="fit it first"):
        SklearnClassifier(RandomForestClassifier(), bounds=(0, 16))
    with pytest.raises(ConfigError, match="fit it first"):
        SklearnClassifier(_xgb(), bounds=(0, 16))
    with pytest.raises(ConfigError, match=r"no classes_.*regressors"):
        SklearnClassifier(LinearRegression().fit(x, y), bounds=(0, 16))
    with pytest.raises(ConfigError, match="instance"):
        SklearnClassifier(RandomForestClassifier, bounds=(0, 16))
    with pytest.raises(ConfigError, match=r"no predict_proba.*probability=True"):
        SklearnClassifier(SVC().fit(x[:100], y[:100]), bounds=(0, 16), output="probabilities")
    with pytest.raises(ConfigError, match="'output' parameter"):
        SklearnClassifier(SVC().fit(x[:100], y[:100]), bounds=(0, 16), output="proba")  # type: ignore[arg-type]
    ovo = SVC(decision_function_shape="ovo").fit(x[:100], y[:100])
    with pytest.raises(ConfigError, match="decision_function_shape='ovo'"):
        SklearnClassifier(ovo, bounds=(0, 16))
    assert SklearnClassifier(ovo, bounds=(0, 16), output="labels").num_classes == 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"bounds": (16, 0)}, "lower < upper"),
     ({"bounds": (0, float("inf"))}, "finite"),
     ({"bounds": (0,)}, "pair"),
     ({"bounds": ("0", 16)}, "lower bound"),
     ({"bounds": (np.zeros(64), np.zeros(64))}, "constant feature"),
     ({"bounds": (np.zeros(3), np.ones(4))}, "incompatible shapes"),
     ({"bounds": (0, 16), "levels": 1}, "'levels'"),
     ({"bounds": (0, 16), "batch_size": 0}, "'batch_size'"),
     ({"bounds": (0, 16), "input_shape": (7, 7)}, r"49 features.*fitted on 64"),
     ({"bounds": (np.zeros(5), np.ones(5)), "input_shape": (64,)}, "does not fit")],
    ids=["reversed", "inf", "single", "str", "constant", "shapes", "levels", "batch",
         "input-shape", "bounds-shape"],
)
def test_bad_parameters(fitted: dict[str, Any], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SklearnClassifier(fitted["logreg"], **kwargs)


def test_wrong_inputs_are_shape_errors(fitted: dict[str, Any]) -> None:
    """A wrong number of features is said by hoodwink, never a raw ValueError from sklearn."""
    clf = SklearnClassifier(fitted["forest"], bounds=(0, 16))
    with pytest.raises(ShapeError, match=r"fitted on 64 features.*\(5, 63\)"):
        clf.predict(torch.zeros(5, 63))
    with pytest.raises(ShapeError, match="fitted on 64 features"):
        clf.scores(torch.zeros(0, 63))
    with pytest.raises(ShapeError, match="float"):
        clf.predict(torch.zeros(5, 64, dtype=torch.int64))
    with pytest.raises(InputError, match="torch.Tensor"):
        clf.predict(np.zeros((5, 64)))  # type: ignore[arg-type]
    shaped = SklearnClassifier(fitted["forest"], bounds=(0, 16), input_shape=(1, 8, 8))
    with pytest.raises(ShapeError, match="add a batch"):
        shaped.predict(torch.zeros(1, 8, 8))


def test_estimator_errors_are_model_output_errors() -> None:
    x, y = _blobs(["a", "b", "c"])

    class Broken(LabelsOnly):
        def predict(self, x: np.ndarray) -> np.ndarray:
            raise RuntimeError("server down")

    class Stranger(LabelsOnly):
        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.full(len(x), "zebra", dtype=object)

    with pytest.raises(ModelOutputError, match="Broken.predict raised RuntimeError") as info:
        SklearnClassifier(Broken().fit(x, y), bounds=(-3, 7)).predict(torch.zeros(2, 2))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ModelOutputError, match="'zebra' is not a class"):
        SklearnClassifier(Stranger().fit(x, y), bounds=(-3, 7)).predict(torch.zeros(2, 2))


def test_dataframe_fitted_estimator_gets_its_column_names(digits: Any) -> None:
    """No 'X does not have valid feature names' warning: the adapter passes a DataFrame."""
    pd = pytest.importorskip("pandas")
    x, y, xq = digits
    cols = [f"px{i}" for i in range(64)]
    est = LogisticRegression(max_iter=2000).fit(pd.DataFrame(x, columns=cols), y)
    clf = SklearnClassifier(est, bounds=(0, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = clf.predict(torch.tensor(xq, dtype=torch.float32))
    assert pred.tolist() == est.predict(pd.DataFrame(xq, columns=cols)).tolist()


def test_repr_and_lazy_export(fitted: dict[str, Any]) -> None:
    clf = SklearnClassifier(fitted["pipeline"], bounds=(0, 16), levels=17)
    assert repr(clf) == ("SklearnClassifier(Pipeline, output='probabilities', classes=10, "
                         "bounds=(0, 16), levels=17)")
    assert hoodwink.SklearnClassifier is SklearnClassifier
    lo, hi = clf.bounds
    assert lo.dtype == torch.float32 and float(lo) == 0 and float(hi) == 16
