"""What the NumPy-backed adapters share: :class:`NumpyClassifier`.

scikit-learn estimators, plain Python functions and ONNX sessions all answer
NumPy batches with scores or labels and give no gradients. The base class
owns the contract attacks rely on (bounds, levels, class-index mapping,
chunking, empty batches, output validation); a subclass only supplies the
call to its model: :meth:`NumpyClassifier._scores_chunk` and, for a model
that decides through its own labels, :meth:`NumpyClassifier._labels_chunk`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from hoodwink._validation import reject
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    InputError,
    InternalError,
    ModelOutputError,
)
from hoodwink.models.base import Capabilities, OutputKind
from hoodwink.models.torch import (
    _BATCH,
    _F32_MAX,
    _LEVELS,
    _as_bound,
    _fits,
    _show,
    check_batch,
)

__all__ = ["MAX_CLASSES", "NumpyClassifier"]

BoundLike = float | Sequence[float] | np.ndarray | torch.Tensor
IntArray = npt.NDArray[np.int64]

#: How far probabilities may stray from [0, 1], and their row sums from 1: float32
#: models (ONNX forests) give 1.0000001.
_PROB_TOL = 1e-4
_SUM_TOL = 1e-3
#: Classes listed in an "unknown label" message.
_LIST_CLASSES = 20
#: Largest num_classes an adapter takes: far beyond any classifier, and a size torch can
#: allocate (an empty (0, C) batch of scores), unlike 2**64.
MAX_CLASSES = 2**31 - 1


# ---------------------------------------------------------------- parameter checks
def check_bounds(owner: str, bounds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lower, upper)`` as float32 CPU tensors: finite, broadcastable, lower < upper.

    Parameters
    ----------
    owner : str
        The adapter, for the message.
    bounds : (lower, upper)
        Floats or arrays broadcastable to one input.

    Raises
    ------
    ConfigError
        Not a pair; a bound that is not real, not finite; shapes that do not
        broadcast; lower >= upper anywhere.
    """
    if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
        raise ConfigError(
            f"The 'bounds' parameter of {owner} must be a pair (lower, upper) of floats or "
            f"per-feature arrays, the range of valid inputs (e.g. bounds=(0, 16) for "
            f"scikit-learn's 8x8 digits). Got {_show(bounds)}."
        )
    lower = _as_bound(bounds[0], "lower", owner)
    upper = _as_bound(bounds[1], "upper", owner)
    try:
        gap = upper - lower
    except RuntimeError as exc:
        raise ConfigError(
            f"The lower and upper bounds of {owner} have incompatible shapes "
            f"{tuple(lower.shape)} and {tuple(upper.shape)}; give two arrays of one shape "
            "(or floats)."
        ) from exc
    if (gap <= 0).any():
        raise ConfigError(
            f"The 'bounds' parameter of {owner} needs lower < upper everywhere. Got "
            f"{_show(bounds)}. Per-feature bounds from data (X.min(0), X.max(0)) fail on a "
            "constant feature: widen it, e.g. upper = np.maximum(X.max(0), X.min(0) + 1)."
        )
    return lower, upper


def check_levels(owner: str, levels: Any) -> int | None:
    """None, or an int in [2, 2**24]."""
    if levels is None:
        return None
    if not _LEVELS.accepts(levels):
        reject(owner, "levels", levels, "an int >= 2 and <= 2**24, or None",
               hint="Use 256 for 8-bit images, 17 for scikit-learn's 8x8 digits (0..16).")
    return int(levels)


def check_batch_size(owner: str, batch_size: Any) -> int:
    """An int >= 1."""
    if not _BATCH.accepts(batch_size):
        reject(owner, "batch_size", batch_size, "an int >= 1")
    return int(batch_size)


def check_input_shape(owner: str, shape: Any) -> tuple[int, ...] | None:
    """None, or a non-empty tuple of positive ints (one input, no batch axis)."""
    if shape is None:
        return None
    what = "a non-empty tuple of positive ints, the shape of one input without the batch axis"
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = shape.tolist()
    if (isinstance(shape, str | bytes) or not isinstance(shape, Sequence) or len(shape) == 0
            or not all(isinstance(d, int | np.integer) and not isinstance(d, bool)
                       and 1 <= d < 2**63 for d in shape)):
        reject(owner, "input_shape", shape, what, hint="E.g. (64,) or (1, 8, 8).")
    return tuple(int(d) for d in shape)


def check_class_names(owner: str, names: Any) -> tuple[str, ...] | None:
    """None, or a sequence of at least 2 distinct str."""
    if names is None:
        return None
    what = "a sequence of str (at least 2, distinct), one per class"
    if isinstance(names, np.ndarray) and names.ndim == 1:
        names = names.tolist()
    if (isinstance(names, str | bytes) or not isinstance(names, Sequence)
            or not all(isinstance(n, str) for n in names)):
        reject(owner, "class_names", names, what)
    out = tuple(names)
    if len(out) < 2:
        reject(owner, "class_names", names, what, hint="A classifier has at least 2 classes.")
    if len(set(out)) != len(out):
        dupes = sorted({n for n in out if out.count(n) > 1})
        reject(owner, "class_names", names, what,
               hint=f"Not unique: {', '.join(repr(d) for d in dupes[:5])}.")
    return out


def _fmt(t: torch.Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"<array {tuple(t.shape)}>"


# ---------------------------------------------------------------- the base class
class NumpyClassifier:
    """Base class of the adapters over models that answer NumPy batches.

    Subclasses call :meth:`__init__` with the validated domain and implement
    :meth:`_scores_chunk` (and :meth:`_labels_chunk` when labels come from
    the model itself). They are black boxes: no gradients, and scores,
    probabilities or only labels as :attr:`capabilities` says.

    Parameters
    ----------
    owner : str
        The adapter's name, for messages.
    bounds : (lower, upper)
        The box of valid raw inputs; floats or arrays broadcastable to one
        input, finite, lower < upper everywhere.
    output : {"logits", "probabilities", "labels"}
        What :meth:`scores` returns (already validated by the subclass).
    levels : int, optional
        Quantisation levels per feature between the bounds, in [2, 2**24].
    input_shape : sequence of int, optional
        Shape of one input; other shapes are refused with a
        :class:`~hoodwink.errors.ShapeError`.
    batch_size : int
        Largest batch sent to the model at once.
    num_classes : int, optional
        Number of classes, when known.
    classes : numpy.ndarray, optional
        The model's own labels, one per class index (scikit-learn's
        ``classes_``); None means the labels are the indices 0..C-1.
    class_names : sequence of str, optional
        Human-readable names, one per class.
    """

    #: The dtype NumPy batches are handed to the model in.
    _array_dtype: ClassVar[type[np.floating[Any]]] = np.float32
    #: Whether :meth:`predict` asks the model for its own labels (scikit-learn's
    #: ``predict``) even when it has scores; otherwise it takes the argmax of the scores.
    _own_predict: ClassVar[bool] = False

    def __init__(
        self,
        *,
        owner: str,
        bounds: Any,
        output: OutputKind,
        levels: Any,
        input_shape: Any,
        batch_size: Any,
        num_classes: int | None = None,
        classes: np.ndarray | None = None,
        class_names: tuple[str, ...] | None = None,
    ) -> None:
        self._owner = owner
        lower, upper = check_bounds(owner, bounds)
        self._levels = check_levels(owner, levels)
        shape = check_input_shape(owner, input_shape)
        self._batch_size = check_batch_size(owner, batch_size)
        bounds_shape = tuple((upper - lower).shape)
        if shape is not None and not _fits(bounds_shape, shape):
            raise ConfigError(
                f"The bounds of {owner} have shape {bounds_shape}, which does not fit one input "
                f"of input_shape {shape}: bounds must broadcast to one input (without a batch "
                "dimension)."
            )
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} entries but {owner} has {num_classes} "
                "classes. Give one name per class."
            )
        self._lower, self._upper = lower, upper
        self._bounds_shape = bounds_shape
        self._input_shape = shape
        self._output: OutputKind = output
        self._num_classes = num_classes if num_classes is not None else (
            len(class_names) if class_names is not None else None)
        self._classes = classes
        self._identity = classes is None or (
            classes.dtype.kind in "iu"
            and np.array_equal(classes, np.arange(len(classes))))
        self._class_names = class_names
        self._ok_shape: torch.Size | None = None  # the last input shape that passed the checks
        self._chunk = self._batch_size

    # ------------------------------------------------------------------ properties
    @property
    def capabilities(self) -> Capabilities:
        """Not differentiable; the output kind this adapter gives (see :meth:`scores`)."""
        return Capabilities(differentiable=False, output=self._output)

    @property
    def output(self) -> OutputKind:
        """``"logits"``, ``"probabilities"`` or ``"labels"``."""
        return self._output

    @property
    def num_classes(self) -> int:
        """Number of classes C (at least 2).

        Raises
        ------
        ConfigError
            When the adapter learns it from the model's first output and the
            model has not run yet (the message names the fix).
        """
        if self._num_classes is None:
            self._learn_num_classes()
        if self._num_classes is None:
            raise InternalError(f"{self._owner} did not learn num_classes; this is a hoodwink "
                                "bug, please report it.")
        return self._num_classes

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower, upper), float32 CPU tensors, each broadcastable to one input."""
        return self._lower, self._upper

    @property
    def levels(self) -> int | None:
        """Quantisation levels between the bounds, or None."""
        return self._levels

    @property
    def device(self) -> torch.device:
        """Always the CPU: the model runs on NumPy arrays."""
        return torch.device("cpu")

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Class names, one per class index, or None."""
        return self._class_names

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one input, when given; None accepts any shape the model takes."""
        return self._input_shape

    @property
    def batch_size(self) -> int:
        """Largest batch sent to the model at once."""
        return self._batch_size

    # ------------------------------------------------------------------ subclass hooks
    def _who(self) -> str:
        """The model, named for messages."""
        return self._owner

    def _learn_num_classes(self) -> None:
        raise ConfigError(
            f"{self._owner} learns num_classes from the model's first output, and the model "
            "has not run yet. Pass num_classes= (or class_names=), or call model.scores(x) "
            "once first."
        )

    def _check_more(self, x: torch.Tensor) -> None:
        """Subclass checks of an input batch (e.g. the number of features)."""

    def _scores_chunk(self, a: np.ndarray) -> Any:
        """The model's raw scores for one chunk ``a`` (n >= 1 rows), shape (n, C)."""
        raise InternalError(f"{type(self).__name__} does not give scores; this is a bug.")

    def _labels_chunk(self, a: np.ndarray) -> IntArray:
        """Class indices 0..C-1 for one chunk ``a``, validated, shape (n,)."""
        raise InternalError(f"{type(self).__name__} does not give labels; this is a bug.")

    # ------------------------------------------------------------------ inputs
    def _check_input(self, x: Any) -> None:
        check_batch(self._owner, x, input_shape=self._input_shape,
                    bounds_shape=self._bounds_shape, taker=self._owner)
        self._check_more(x)
        self._ok_shape = x.shape

    def _as_array(self, x: torch.Tensor) -> np.ndarray:
        """``x`` as a fresh NumPy array (the model may write into it; x stays intact)."""
        if not (isinstance(x, torch.Tensor) and x.shape == self._ok_shape
                and x.is_floating_point()):
            self._check_input(x)
        t = x.detach().to(device="cpu", dtype=torch.float64
                          if self._array_dtype is np.float64 else torch.float32)
        return np.array(t.numpy(), dtype=self._array_dtype, copy=True)

    def _chunks(self, a: np.ndarray) -> list[np.ndarray]:
        step = self._chunk
        return [a[i : i + step] for i in range(0, a.shape[0], step)]

    # ------------------------------------------------------------------ public calls
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class indices.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
            Raw float inputs within the bounds; never changed. N may be 0.

        Returns
        -------
        torch.Tensor, shape (N,), int64
            Class indices 0..C-1 (see :meth:`decode_labels` for the model's own
            labels), on ``x``'s device.

        Raises
        ------
        InputError, ShapeError
            ``x`` is not a float tensor batch of the model's input shape.
        ModelOutputError
            The model raised, or returned something unusable.
        """
        a = self._as_array(x)
        if a.shape[0] == 0:
            return torch.empty(0, dtype=torch.int64, device=x.device)
        if self._own_predict or self._output == "labels":
            parts = [self._labels_chunk(c) for c in self._chunks(a)]
        else:
            parts = [self._validated_scores(c).argmax(axis=1) for c in self._chunks(a)]
        out = np.concatenate(parts).astype(np.int64, copy=False)
        return torch.from_numpy(out).to(x.device)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-class scores: logits-like scores or probabilities, per :attr:`capabilities`.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
            Raw float inputs within the bounds; never changed. N may be 0.

        Returns
        -------
        torch.Tensor, shape (N, C), float32
            Unnormalised scores (``capabilities.output == "logits"``) or
            probabilities whose rows sum to 1 (``"probabilities"``), on
            ``x``'s device. Column j is class index j.

        Raises
        ------
        CapabilityError
            The model gives only labels.
        InputError, ShapeError
            ``x`` is not a float tensor batch of the model's input shape.
        ModelOutputError
            The model raised, or returned scores of the wrong shape or dtype,
            non-finite values, or probabilities that are not probabilities.
        """
        if self._output == "labels":
            raise CapabilityError(
                f"{self!r} gives only labels, no scores. Score-based attacks need scores "
                "(scikit-learn's predict_proba or decision_function, or a model that returns "
                "one score per class); use a label-only (decision-based) attack such as "
                "HopSkipJump or BoundaryWalk instead."
            )
        a = self._as_array(x)
        if a.shape[0] == 0:
            return torch.empty((0, self.num_classes), dtype=torch.float32, device=x.device)
        parts = [self._validated_scores(c) for c in self._chunks(a)]
        return torch.from_numpy(np.concatenate(parts)).to(x.device)

    # ------------------------------------------------------------------ output checks
    def _validated_scores(self, a: np.ndarray) -> npt.NDArray[np.float32]:
        n = a.shape[0]
        raw = self._scores_chunk(a)
        what = "probabilities" if self._output == "probabilities" else "scores"
        try:
            arr = np.asarray(raw)
        except Exception as exc:  # a ragged list or an object NumPy cannot read
            raise ModelOutputError(
                f"{self._who()} returned {type(raw).__name__}, which is not an array of "
                f"{what}: {exc}. It must return an array of shape (n, C)."
            ) from exc
        if arr.dtype.kind not in "iuf":
            raise ModelOutputError(
                f"{self._who()} returned {what} of dtype {arr.dtype}; they must be numbers, "
                f"shape (n, C). If it returns class labels, use output='labels'."
            )
        if arr.ndim != 2 or arr.shape[0] != n:
            hint = ""
            if arr.shape == (n,):
                hint = (" If it returns class labels, use output='labels'; for one binary "
                        "score s, return np.stack([-s / 2, s / 2], axis=1).")
            raise ModelOutputError(
                f"{self._who()} returned {what} of shape {arr.shape} for a batch of {n}; with "
                f"output={self._output!r} it must return one value per class, shape "
                f"({n}, C).{hint}"
            )
        c = arr.shape[1]
        if c < 2:
            raise ModelOutputError(
                f"{self._who()} returned {c} value(s) per input; a classifier needs at least "
                "2 (for one binary score s, return np.stack([-s / 2, s / 2], axis=1))."
            )
        if self._num_classes is None:
            self._num_classes = c
        elif c != self._num_classes:
            raise ModelOutputError(
                f"{self._who()} returned {c} {what} per input; {self._owner} has "
                f"{self._num_classes} classes. Check num_classes / class_names, or the output "
                "the adapter reads."
            )
        if not np.isfinite(arr).all():
            raise ModelOutputError(
                f"{self._who()} returned NaN or infinite {what}. Check that the inputs are in "
                "the model's domain (the bounds) and that the model is sound."
            )
        if arr.dtype.itemsize > 4 and arr.size and float(np.abs(arr).max()) > _F32_MAX:
            raise ModelOutputError(
                f"{self._who()} returned {what} beyond the float32 range (|v| > 3.4e38); "
                "rescale the model's scores."
            )
        out = arr.astype(np.float32)
        if self._output == "probabilities":
            sums = out.sum(axis=1, dtype=np.float64)
            if (out.min() < -_PROB_TOL or out.max() > 1 + _PROB_TOL
                    or np.abs(sums - 1).max() > _SUM_TOL):
                raise ModelOutputError(
                    f"{self._who()} returned rows that are not probabilities (values in "
                    f"[{out.min():.4g}, {out.max():.4g}], row sums in [{sums.min():.4g}, "
                    f"{sums.max():.4g}]; each row must lie in [0, 1] and sum to 1). If the "
                    "model returns unnormalised scores, use output='logits'."
                )
            np.clip(out, 0.0, 1.0, out=out)
        return out

    def _validated_indices(self, raw: Any, n: int) -> IntArray:
        """Labels a model returned as class indices: ints (or integral floats) in [0, C)."""
        try:
            arr = np.asarray(raw)
        except Exception as exc:  # a ragged list or an object NumPy cannot read
            raise ModelOutputError(
                f"{self._who()} returned {type(raw).__name__}, which is not an array of labels: "
                f"{exc}."
            ) from exc
        if arr.shape != (n,):
            hint = (" It looks like scores: use output='logits' or output='probabilities'."
                    if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] >= 2 else "")
            raise ModelOutputError(
                f"{self._who()} returned labels of shape {arr.shape} for a batch of {n}; with "
                f"output='labels' it must return one class index per input, shape ({n},)."
                f"{hint}"
            )
        if arr.dtype.kind in "iu":
            idx = arr.astype(np.int64)
        elif arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            idx = arr.astype(np.int64)
        else:
            raise ModelOutputError(
                f"{self._who()} returned labels of dtype {arr.dtype} (e.g. "
                f"{_show(arr[:3].tolist())}); labels must be class indices, integers 0..C-1. "
                "Map class names to indices inside the function."
            )
        c = self.num_classes
        bad = idx[(idx < 0) | (idx >= c)]
        if bad.size:
            raise ModelOutputError(
                f"{self._who()} returned the label {int(bad[0])}, outside the class indices "
                f"0..{c - 1} ({c} classes). Return indices, or check num_classes."
            )
        return idx

    # ------------------------------------------------------------------ labels
    def encode_labels(self, labels: Any) -> IntArray:
        """Map the model's own labels to class indices 0..C-1.

        Parameters
        ----------
        labels : array-like
            Labels as the model knows them: scikit-learn's ``classes_``
            entries (e.g. ``"cat"``, or 3, 7, 10), or indices 0..C-1 for
            models whose labels are indices.

        Returns
        -------
        numpy.ndarray of int64
            Same shape as ``labels``.

        Raises
        ------
        InputError
            A label that is not one of the model's classes; the message lists
            them.
        """
        return self._encode(labels, InputError)

    def _encode(self, labels: Any, error: type[Exception]) -> IntArray:
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        arr = np.asarray(labels)
        classes = self._classes
        if self._identity and arr.dtype.kind in "iu":
            idx = arr.astype(np.int64)
            bad = idx[(idx < 0) | (idx >= self.num_classes)]
            if bad.size:
                raise error(self._unknown(bad.flat[0]))
            return idx
        known = classes.tolist() if classes is not None else list(range(self.num_classes))
        lookup = {k: i for i, k in enumerate(known)}
        out = np.empty(arr.shape, dtype=np.int64)
        flat = out.reshape(-1)
        for j, v in enumerate(arr.reshape(-1).tolist()):
            try:
                i = lookup.get(v)
            except TypeError:  # an unhashable label (a list, ...)
                i = None
            if i is None or isinstance(v, bool) and not isinstance(known[i], bool):
                raise error(self._unknown(v))
            flat[j] = i
        return out

    def _unknown(self, label: Any) -> str:
        known = self._classes.tolist() if self._classes is not None else list(
            range(self.num_classes))
        shown = ", ".join(repr(k) for k in known[:_LIST_CLASSES])
        more = f", ... ({len(known)} in all)" if len(known) > _LIST_CLASSES else ""
        return (f"The label {_show(label)} is not a class of {self._who()}; its classes are "
                f"{shown}{more}.")

    def decode_labels(self, indices: Any) -> np.ndarray:
        """Map class indices 0..C-1 back to the model's own labels.

        Parameters
        ----------
        indices : array-like of int
            Class indices, e.g. from :meth:`predict`.

        Returns
        -------
        numpy.ndarray
            The model's labels (scikit-learn's ``classes_`` entries), same
            shape as ``indices``; the indices themselves (int64) when the
            model's labels are 0..C-1.

        Raises
        ------
        InputError
            Not integers, or outside 0..C-1.
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        arr = np.asarray(indices)
        if arr.dtype.kind not in "iu":
            raise InputError(
                f"indices must be integers 0..{self.num_classes - 1} (class indices); got dtype "
                f"{arr.dtype}."
            )
        idx = arr.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= self.num_classes)]
        if bad.size:
            raise InputError(
                f"The index {int(bad.flat[0])} is outside the class indices "
                f"0..{self.num_classes - 1} of {self._who()}."
            )
        if self._classes is None or self._identity:
            return idx
        out: np.ndarray = self._classes[idx]
        return out

    # ------------------------------------------------------------------ repr
    def _repr_parts(self) -> list[str]:
        classes = self._num_classes if self._num_classes is not None else "?"
        return [f"output={self._output!r}", f"classes={classes}",
                f"bounds=({_fmt(self._lower)}, {_fmt(self._upper)})", f"levels={self._levels}"]

    def _model_repr(self) -> str:
        return self._who()

    def __repr__(self) -> str:
        return f"{self._owner}({', '.join([self._model_repr(), *self._repr_parts()])})"
