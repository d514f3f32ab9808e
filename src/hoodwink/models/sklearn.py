"""scikit-learn adapter: :class:`SklearnClassifier`.

Wraps any fitted scikit-learn classifier or ``Pipeline``, and XGBoost's
``XGBClassifier`` or LightGBM's ``LGBMClassifier`` through their scikit-learn
API, so that black-box (score- and decision-based) attacks can query it.
scikit-learn itself is imported only when an estimator is checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from hoodwink._validation import check_choice
from hoodwink.errors import ConfigError, HoodwinkError, ModelOutputError, ShapeError
from hoodwink.models._numpy import BoundLike, IntArray, NumpyClassifier
from hoodwink.models.base import OutputKind

__all__ = ["SklearnClassifier"]

_OWNER = "SklearnClassifier"
_OUTPUTS: tuple[OutputKind, ...] = ("probabilities", "logits", "labels")
#: The estimator method behind each output kind, richest first.
_METHODS: dict[OutputKind, str] = {
    "probabilities": "predict_proba",
    "logits": "decision_function",
    "labels": "predict",
}


def _has(obj: Any, name: str) -> bool:
    # scikit-learn hides unavailable methods behind available_if (SVC(probability=False)
    # has no predict_proba), which raises AttributeError; a broken property may raise more.
    try:
        return callable(getattr(obj, name))
    except Exception:
        return False


def _final_step(estimator: Any) -> Any:
    """The last estimator of a (nested) Pipeline, else the estimator itself."""
    seen = 0
    while hasattr(estimator, "steps") and isinstance(estimator.steps, list) and seen < 100:
        if not estimator.steps:
            break
        estimator = estimator.steps[-1][1]
        seen += 1
    return estimator


def _check_fitted(estimator: Any) -> None:
    name = type(estimator).__name__
    try:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # scikit-learn is optional: a duck-typed model may still be used
        NotFittedError = None  # noqa: N806
        check_is_fitted = None
    if check_is_fitted is not None and NotFittedError is not None:
        try:
            check_is_fitted(estimator)
        except NotFittedError as exc:
            raise ConfigError(
                f"{name} is not fitted; fit it first (estimator.fit(X, y)), then wrap it in "
                f"{_OWNER}."
            ) from exc
        except TypeError:
            pass  # not a scikit-learn estimator (no fit method): judged by classes_ below
        except Exception as exc:  # an estimator's own __sklearn_is_fitted__ may raise
            raise ConfigError(
                f"Checking whether {name} is fitted raised {type(exc).__name__}: {exc}."
            ) from exc


def _classes_of(estimator: Any) -> np.ndarray:
    name = type(estimator).__name__
    try:
        raw = estimator.classes_
    except AttributeError:
        raw = None
    except Exception as exc:  # a broken property
        raise ConfigError(f"Reading {name}.classes_ raised {type(exc).__name__}: {exc}.") from exc
    if raw is None:
        raise ConfigError(
            f"{name} has no classes_, so it is not a fitted classifier ({_OWNER} wraps "
            "classifiers, not regressors or transformers). Fit a classifier first, or wrap a "
            "function that returns class scores with CallableClassifier."
        )
    if isinstance(raw, list) and raw and all(isinstance(c, np.ndarray) for c in raw):
        raise ConfigError(
            f"{name} is a multi-output classifier (classes_ is a list of arrays); "
            f"{_OWNER} wraps single-output classifiers."
        )
    try:
        classes = np.asarray(raw)
    except Exception as exc:  # a ragged or odd classes_
        raise ConfigError(f"{name}.classes_ is not an array of labels: {exc}.") from exc
    if classes.ndim != 1 or classes.size < 2:
        raise ConfigError(
            f"{name}.classes_ must list at least 2 classes; got {classes.tolist()!r}. A "
            "classifier fitted on a single class cannot be attacked: fit it on at least 2."
        )
    try:
        distinct = len(set(classes.tolist())) == classes.size
    except TypeError:
        distinct = True  # unhashable labels: judged by their position only
    if not distinct:
        raise ConfigError(f"{name}.classes_ has repeated labels: {classes.tolist()!r}.")
    return classes


def _names_of(classes: np.ndarray) -> tuple[str, ...]:
    names = tuple(str(c) for c in classes.tolist())
    if len(set(names)) != len(names):  # e.g. 1 and "1": keep them apart
        names = tuple(repr(c) for c in classes.tolist())
    return names


class SklearnClassifier(NumpyClassifier):
    """Wrap a fitted scikit-learn classifier so black-box attacks can query it.

    Parameters
    ----------
    estimator : fitted classifier
        Any fitted scikit-learn classifier or ``Pipeline`` ending in one;
        XGBoost's ``XGBClassifier`` and LightGBM's ``LGBMClassifier`` through
        their scikit-learn API; any object with ``predict`` and ``classes_``.
        It is never changed.
    bounds : (lower, upper)
        The range of valid inputs, required: floats, or per-feature arrays
        broadcastable to one input; finite, lower < upper everywhere (e.g.
        ``(0, 16)`` for scikit-learn's 8x8 digits).
    levels : int, optional
        Number of values each feature takes between the bounds, in
        [2, 2**24]: 17 for the digits (integers 0..16), 256 for 8-bit images.
        Attack results are snapped to that grid.
    input_shape : sequence of int, optional
        Shape of one input, e.g. ``(1, 8, 8)``; other shapes are refused.
        Inputs of any shape are flattened to ``(N, features)`` before the
        estimator sees them.
    batch_size : int, default 1024
        Largest batch sent to the estimator at once.
    output : {"probabilities", "logits", "labels"}, optional
        Which method answers :meth:`scores`: ``predict_proba``,
        ``decision_function``, or none (``predict`` only, for decision-based
        attacks). Default: the richest the estimator has, in that order.

    Raises
    ------
    ConfigError
        An unfitted estimator (fit it first), a regressor or other estimator
        without ``classes_``, an ``output`` the estimator lacks, or any
        invalid parameter.

    Notes
    -----
    :meth:`predict` always calls the estimator's own ``predict``, the decision
    the model really makes; the class indices follow ``classes_``
    (:meth:`encode_labels`, :meth:`decode_labels`), and :attr:`class_names`
    are ``str`` of them. For most estimators the argmax of :meth:`scores` is
    the same class; not always (``SVC(probability=True)`` calibrates its
    probabilities separately from its decision). Inputs go to the estimator
    as float64 arrays; an estimator fitted on a pandas DataFrame gets a
    DataFrame with its column names. A binary ``decision_function`` d of shape
    (N,) becomes scores ``[-d/2, d/2]``, so class 1 wins exactly when d > 0.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> est = LogisticRegression().fit(X, ["cat", "cat", "dog", "dog"])
    >>> clf = SklearnClassifier(est, bounds=(0, 1))
    >>> clf
    SklearnClassifier(LogisticRegression, output='probabilities', classes=2, bounds=(0, 1),
                      levels=None)
    >>> clf.class_names, clf.predict(torch.tensor([[0.9, 0.5]])).tolist()
    (('cat', 'dog'), [1])
    >>> clf.decode_labels([1]).tolist()
    ['dog']
    """

    _array_dtype = np.float64
    _own_predict = True

    def __init__(
        self,
        estimator: Any,
        *,
        bounds: tuple[BoundLike, BoundLike],
        levels: int | None = None,
        input_shape: Sequence[int] | None = None,
        batch_size: int = 1024,
        output: Literal["probabilities", "logits", "labels"] | None = None,
    ) -> None:
        if isinstance(estimator, type):
            raise ConfigError(
                f"{_OWNER} needs a fitted estimator instance; got the class "
                f"{estimator.__name__}. Build and fit one first, e.g. "
                f"{estimator.__name__}().fit(X, y)."
            )
        if isinstance(estimator, torch.nn.Module):
            raise ConfigError(
                f"{_OWNER} wraps scikit-learn estimators; {type(estimator).__name__} is a "
                "torch.nn.Module: use hoodwink.TorchClassifier instead."
            )
        if not _has(estimator, "predict"):
            raise ConfigError(
                f"{_OWNER} needs a fitted classifier with a predict method; got "
                f"{type(estimator).__name__}. For a plain function use CallableClassifier."
            )
        _check_fitted(estimator)
        classes = _classes_of(estimator)
        kind = check_choice(_OWNER, "output", output, _OUTPUTS, allow_none=True)
        available = [k for k in _OUTPUTS if _has(estimator, _METHODS[k])]
        name = type(estimator).__name__
        if kind is None:
            kind = available[0]
        elif kind not in available:
            raise ConfigError(
                f"{name} has no {_METHODS[kind]}, so output={kind!r} is not available; it has "
                f"{', '.join(repr(k) for k in available)}. (SVC gives probabilities only when "
                "fitted with probability=True.)"
            )
        final = _final_step(estimator)
        if (kind == "logits" and classes.size > 2
                and getattr(final, "decision_function_shape", None) == "ovo"):
            raise ConfigError(
                f"{name} has decision_function_shape='ovo', whose columns are class pairs, not "
                "classes. Refit it with decision_function_shape='ovr' (the default), or use "
                "output='labels'."
            )
        n_features = getattr(estimator, "n_features_in_", None)
        self._n_features = (int(n_features) if isinstance(n_features, int | np.integer)
                            and not isinstance(n_features, bool) and n_features > 0 else None)
        super().__init__(owner=_OWNER, bounds=bounds, output=kind, levels=levels,
                         input_shape=input_shape, batch_size=batch_size,
                         num_classes=int(classes.size), classes=classes,
                         class_names=_names_of(classes))
        if (self._input_shape is not None and self._n_features is not None
                and math.prod(self._input_shape) != self._n_features):
            raise ConfigError(
                f"input_shape {self._input_shape} has {math.prod(self._input_shape)} features, "
                f"but {name} was fitted on {self._n_features}."
            )
        try:
            names = getattr(estimator, "feature_names_in_", None)
        except Exception:  # a property that raises when not fitted on a DataFrame
            names = None
        self._feature_names = (list(np.asarray(names).tolist()) if names is not None
                               and np.asarray(names).ndim == 1 else None)
        #: The wrapped estimator (never changed by hoodwink).
        self.estimator = estimator
        self._method = _METHODS[kind]

    # ------------------------------------------------------------------ hooks
    def _who(self) -> str:
        return type(self.estimator).__name__

    def _check_more(self, x: torch.Tensor) -> None:
        features = math.prod(x.shape[1:])
        if self._n_features is not None and features != self._n_features:
            raise ShapeError(
                f"{self._who()} was fitted on {self._n_features} features, but x has shape "
                f"{tuple(x.shape)} ({features} features per input). Give inputs with "
                f"{self._n_features} features (any shape: they are flattened)."
            )

    def _features(self, a: np.ndarray) -> Any:
        flat = a.reshape(a.shape[0], -1)
        if self._feature_names is not None and len(self._feature_names) == flat.shape[1]:
            try:
                import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]
            except ImportError:
                return flat
            return pd.DataFrame(flat, columns=self._feature_names)
        return flat

    def _call(self, method: str, a: np.ndarray) -> Any:
        try:
            return getattr(self.estimator, method)(self._features(a))
        except HoodwinkError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # the estimator (or a custom step) can raise anything
            raise ModelOutputError(
                f"{self._who()}.{method} raised {type(exc).__name__} on a batch of shape "
                f"{a.shape}: {exc}"
            ) from exc

    def _scores_chunk(self, a: np.ndarray) -> Any:
        out = self._call(self._method, a)
        if self._method == "decision_function" and self.num_classes == 2:
            d = np.asarray(out)
            if d.ndim == 2 and d.shape[1] == 1:
                d = d[:, 0]
            if d.ndim == 1:
                # One signed score: class 1 wins iff d > 0, as in the estimator's predict.
                return np.stack([-d / 2, d / 2], axis=1)
        return out

    def _labels_chunk(self, a: np.ndarray) -> IntArray:
        raw = self._call("predict", a)
        arr = np.asarray(raw)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.shape != (a.shape[0],):
            raise ModelOutputError(
                f"{self._who()}.predict returned shape {arr.shape} for a batch of "
                f"{a.shape[0]}; expected one label per input."
            )
        return self._encode(arr, ModelOutputError)
