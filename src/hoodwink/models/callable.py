"""Adapter for any function: :class:`CallableClassifier`.

Anything that maps a NumPy batch to scores or labels can be attacked by the
black-box attacks: a model behind a REST endpoint, a model in another
framework, a hand-written rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import numpy as np

from hoodwink._validation import check_choice, check_int
from hoodwink.errors import ConfigError, HoodwinkError, ModelOutputError
from hoodwink.models._numpy import (
    MAX_CLASSES,
    BoundLike,
    IntArray,
    NumpyClassifier,
    check_class_names,
)
from hoodwink.models.base import OutputKind

__all__ = ["CallableClassifier"]

_OWNER = "CallableClassifier"


def _fn_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if isinstance(name, str) else type(fn).__name__


class CallableClassifier(NumpyClassifier):
    """Wrap a function from NumPy batches to scores or labels.

    Parameters
    ----------
    fn : callable
        ``fn(batch) -> array-like``. ``batch`` is a float32 NumPy array of
        shape ``(n, ...)``, the shape of the inputs ``x`` (a fresh copy each
        call, so ``fn`` may change it). It returns, per ``output``: scores of
        shape (n, C) (``"logits"``), probabilities of shape (n, C) whose rows
        sum to 1 (``"probabilities"``), or class indices 0..C-1 of shape (n,)
        (``"labels"``; integral floats are accepted). Lists, NumPy arrays and
        CPU tensors all work. ``fn`` is never changed.
    num_classes : int
        Number of classes C, in [2, 2**31 - 1].
    bounds : (lower, upper)
        The range of valid inputs, required: floats or per-feature arrays
        broadcastable to one input; finite, lower < upper everywhere.
    output : {"logits", "probabilities", "labels"}, default "logits"
        What ``fn`` returns. With ``"labels"`` only decision-based
        (label-only) attacks apply.
    levels : int, optional
        Number of values each feature takes between the bounds, in
        [2, 2**24] (256 for 8-bit images). Attack results are snapped to it.
    input_shape : sequence of int, optional
        Shape of one input; other shapes are refused before ``fn`` is called.
    batch_size : int, default 1024
        Largest batch passed to ``fn`` at once (a request per batch for a
        remote model).
    class_names : sequence of str, optional
        One name per class index.

    Raises
    ------
    ConfigError
        ``fn`` is not callable, or any invalid parameter.

    Notes
    -----
    Errors from ``fn`` are re-raised as
    :class:`~hoodwink.errors.ModelOutputError` naming it, with the original
    chained; so is any output of the wrong shape, dtype or range. The adapter
    counts no queries: the attacks do.

    Examples
    --------
    A model served over HTTP is wrapped through a function that posts each
    batch and returns the scores, e.g. (with ``requests``)::

        def remote(batch):
            reply = requests.post(URL, json={"inputs": batch.tolist()}, timeout=30)
            reply.raise_for_status()
            return reply.json()["scores"]

    Here a local function stands in for it:

    >>> import numpy as np, torch
    >>> def remote(batch):
    ...     w = np.array([[1.0, -1.0], [-1.0, 1.0]])
    ...     return (batch.reshape(len(batch), -1) @ w).tolist()
    >>> clf = CallableClassifier(remote, num_classes=2, bounds=(0, 1))
    >>> clf.predict(torch.tensor([[0.9, 0.1], [0.2, 0.7]])).tolist()
    [0, 1]
    >>> clf.scores(torch.tensor([[0.9, 0.1]]))
    tensor([[ 0.8000, -0.8000]])
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        num_classes: int,
        bounds: tuple[BoundLike, BoundLike],
        output: Literal["logits", "probabilities", "labels"] = "logits",
        levels: int | None = None,
        input_shape: Sequence[int] | None = None,
        batch_size: int = 1024,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(fn, type) or not callable(fn):
            what = f"the class {fn.__name__}" if isinstance(fn, type) else type(fn).__name__
            raise ConfigError(
                f"{_OWNER} needs a function fn(batch) -> scores or labels; got {what}. "
                "Pass the function itself (or an instance with __call__)."
            )
        kind: OutputKind = check_choice(_OWNER, "output", output, get_args(OutputKind))
        nc = check_int(_OWNER, "num_classes", num_classes, low=2, high=MAX_CLASSES)
        names = check_class_names(_OWNER, class_names)
        super().__init__(owner=_OWNER, bounds=bounds, output=kind, levels=levels,
                         input_shape=input_shape, batch_size=batch_size, num_classes=nc,
                         class_names=names)
        #: The wrapped function (never changed by hoodwink).
        self.fn = fn

    def _who(self) -> str:
        return f"the function {_fn_name(self.fn)}"

    def _model_repr(self) -> str:
        return _fn_name(self.fn)

    def _call(self, a: np.ndarray) -> Any:
        try:
            return self.fn(a)
        except HoodwinkError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # the user's function (or its server) can raise anything
            raise ModelOutputError(
                f"{self._who()} raised {type(exc).__name__} on a batch of shape {a.shape}: "
                f"{exc}"
            ) from exc

    def _scores_chunk(self, a: np.ndarray) -> Any:
        return self._call(a)

    def _labels_chunk(self, a: np.ndarray) -> IntArray:
        return self._validated_indices(self._call(a), a.shape[0])
