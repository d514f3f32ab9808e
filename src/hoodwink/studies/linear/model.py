"""The linear classifier ``z = W x + b`` over raw pixels, saved as safetensors.

:class:`LinearModel` holds one weight row (a *template*) per class. The
library's attacks accept it through :meth:`LinearModel.as_classifier`;
:meth:`LinearModel.save` and :meth:`LinearModel.load` keep it in a
``.safetensors`` file (never pickle). :func:`~hoodwink.studies.linear.train_linear`
trains one.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hoodwink._validation import check_choice, is_int, reject
from hoodwink.errors import InputError, MissingDependencyError, ShapeError
from hoodwink.models.torch import TorchClassifier
from hoodwink.studies.linear.sanity import LossKind

__all__ = ["LinearModel"]

_FORMAT = "hoodwink.linear_model/1"


@dataclass(frozen=True)
class LinearModel:
    """A linear classifier ``z = W x + b`` over flattened raw inputs.

    Attributes
    ----------
    weight : torch.Tensor, shape (C, D)
        One row per class: the class *template*. ``D = prod(input_shape)``.
    bias : torch.Tensor, shape (C,)
    input_shape : tuple of int
        Shape of one input, e.g. (1, 28, 28) or (3, 64, 64) (channels first).
    kind : {"softmax", "svm"}
        The loss the model was trained with.
    class_names : tuple of str or None
    """

    weight: torch.Tensor
    bias: torch.Tensor
    input_shape: tuple[int, ...]
    kind: LossKind = "softmax"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        owner = "LinearModel"
        for name in ("weight", "bias"):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise InputError(
                    f"The '{name}' of LinearModel must be a torch.Tensor; got "
                    f"{type(t).__name__}. Convert it with torch.as_tensor(..., "
                    "dtype=torch.float32)."
                )
            if not t.is_floating_point():
                raise ShapeError(
                    f"The '{name}' of LinearModel must be a floating-point tensor; got dtype "
                    f"{t.dtype}. Convert it with .float()."
                )
            if not bool(torch.isfinite(t).all()):
                raise InputError(
                    f"The '{name}' of LinearModel contains NaN or infinite values; a linear "
                    "model needs finite weights (was it trained with too high a learning rate?)."
                )
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(
                f"LinearModel needs weight of shape (C, D) and bias of shape (C,); got "
                f"{tuple(self.weight.shape)} and {tuple(self.bias.shape)}."
            )
        if self.weight.shape[0] < 1 or self.weight.shape[1] < 1:
            raise ShapeError(
                f"LinearModel needs at least one class and one input value; the weight has "
                f"shape {tuple(self.weight.shape)}."
            )
        shape = self.input_shape
        if not (isinstance(shape, tuple | list) and shape
                and all(is_int(s) and s >= 1 for s in shape)):
            reject(owner, "input_shape", shape, "a non-empty tuple of ints >= 1",
                   hint="E.g. (1, 28, 28) for MNIST (channels first).")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in shape))
        if math.prod(self.input_shape) != self.weight.shape[1]:
            raise ShapeError(
                f"input_shape {self.input_shape} has {math.prod(self.input_shape)} values but "
                f"the weight has {self.weight.shape[1]} columns."
            )
        object.__setattr__(self, "kind", check_choice(owner, "kind", self.kind,
                                                      ("softmax", "svm")))
        names = self.class_names
        if names is not None:
            if not (isinstance(names, tuple | list) and all(isinstance(n, str) for n in names)):
                reject(owner, "class_names", names, "a tuple of str or None")
            if len(names) != self.weight.shape[0]:
                raise ShapeError(
                    f"class_names has {len(names)} entries for {self.weight.shape[0]} "
                    "classes."
                )
            object.__setattr__(self, "class_names", tuple(names))

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.weight.shape[0])

    @property
    def input_dim(self) -> int:
        """Input dimension D."""
        return int(self.weight.shape[1])

    def name(self, c: int) -> str:
        """Human-readable name of class ``c``."""
        return self.class_names[c] if self.class_names is not None else str(c)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``W x + b`` for a batch of shape (N, *input_shape) or (N, D): (N, C)."""
        return _flat(x, self.input_dim) @ self.weight.T + self.bias

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of :meth:`logits`, shape (N, C)."""
        return torch.softmax(self.logits(x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, shape (N,), int64."""
        return self.logits(x).argmax(dim=1)

    def templates(self) -> torch.Tensor:
        """The weights reshaped to images: shape (C, *input_shape)."""
        return self.weight.reshape((self.num_classes, *self.input_shape))

    def as_module(self) -> nn.Sequential:
        """A fresh ``nn.Sequential(nn.Flatten(), nn.Linear(D, C))`` with a copy of the weights."""
        lin = nn.Linear(self.input_dim, self.num_classes)
        with torch.no_grad():
            lin.weight.copy_(self.weight)
            lin.bias.copy_(self.bias)
        return nn.Sequential(nn.Flatten(), lin).eval()

    def as_classifier(
        self, *, bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256
    ) -> TorchClassifier:
        """Wrap as a :class:`hoodwink.TorchClassifier` so FGSM, PGD and others run on it.

        Parameters
        ----------
        bounds : (float, float), default (0, 1)
            The box of valid raw inputs (the model was trained on pixels in [0, 1]).
        batch_size : int, default 256

        Examples
        --------
        >>> import torch, hoodwink
        >>> from hoodwink.studies.linear import LinearModel
        >>> m = LinearModel(torch.eye(2, 4), torch.zeros(2), (1, 2, 2))
        >>> r = hoodwink.FGSM()(m.as_classifier(), torch.full((1, 1, 2, 2), 0.5), target=1, eps=0.1)
        >>> bool(r.success[0])
        True
        """
        return TorchClassifier(
            self.as_module(), bounds=bounds, batch_size=batch_size,
            class_names=self.class_names, num_classes=self.num_classes,
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as a ``.safetensors`` file (never pickle).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
            The file written.
        """
        st = _safetensors()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _FORMAT,
            "kind": self.kind,
            "input_shape": json.dumps(list(self.input_shape)),
            "class_names": json.dumps(list(self.class_names) if self.class_names else None),
        }
        st.save_file(
            {"weight": self.weight.detach().contiguous().cpu().float(),
             "bias": self.bias.detach().contiguous().cpu().float()},
            str(p), metadata=meta,
        )
        return p

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Read a model written by :meth:`save` (safetensors only).

        Raises
        ------
        InputError
            If the file is missing or is not a hoodwink linear model.
        """
        st = _safetensors()
        p = Path(path)
        if not p.is_file():
            raise InputError(f"No model file at {p}. Train one with 'hoodwink linear train'.")
        try:
            with st.safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error types
            raise InputError(f"{p} is not a readable safetensors file: {exc}") from exc

        def bad(problem: str) -> InputError:
            return InputError(
                f"{p} is not a valid hoodwink linear model: {problem}. Save models with "
                "LinearModel.save (or 'hoodwink linear train')."
            )

        if meta.get("format") != _FORMAT:
            raise bad(f"its 'format' metadata is {meta.get('format')!r}, not {_FORMAT!r}")
        if set(tensors) != {"weight", "bias"}:
            raise bad(f"it holds the tensors {sorted(tensors)}, not 'weight' and 'bias'")
        for field in ("kind", "input_shape", "class_names"):
            if field not in meta:
                raise bad(f"the metadata field '{field}' is missing")
        kind = meta["kind"]
        if kind not in ("softmax", "svm"):
            raise bad(f"the metadata field 'kind' is {kind!r}, not 'softmax' or 'svm'")
        shape = _json_field(meta, "input_shape", bad)
        if not (isinstance(shape, list) and shape
                and all(type(v) is int and v >= 1 for v in shape)):
            raise bad(f"the metadata field 'input_shape' is {meta['input_shape']!r}, not a "
                      "list of ints >= 1")
        names = _json_field(meta, "class_names", bad)
        if names is not None and not (isinstance(names, list)
                                      and all(isinstance(n, str) for n in names)):
            raise bad(f"the metadata field 'class_names' is {meta['class_names']!r}, not a "
                      "list of strings or null")
        weight, bias = tensors["weight"], tensors["bias"]
        for name, t in (("weight", weight), ("bias", bias)):
            if t.dtype != torch.float32:
                raise bad(f"the tensor '{name}' has dtype {t.dtype}, not float32")
            if not bool(torch.isfinite(t).all()):
                raise bad(f"the tensor '{name}' contains NaN or infinite values")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise bad(f"the tensors 'weight' {tuple(weight.shape)} and 'bias' "
                      f"{tuple(bias.shape)} are not shaped (C, D) and (C,)")
        if weight.shape[0] < 1 or math.prod(shape) != weight.shape[1]:
            raise bad(f"the metadata field 'input_shape' {shape} does not match the "
                      f"{weight.shape[1]} columns of 'weight'")
        if names is not None and len(names) != weight.shape[0]:
            raise bad(f"the metadata field 'class_names' has {len(names)} names for "
                      f"{weight.shape[0]} classes")
        return cls(weight=weight, bias=bias, input_shape=tuple(shape), kind=kind,
                   class_names=tuple(names) if names is not None else None)


def _json_field(meta: dict[str, str], field: str, bad: Callable[[str], InputError]) -> Any:
    try:
        return json.loads(meta[field])
    except ValueError as exc:
        raise bad(f"the metadata field '{field}' is not valid JSON ({meta[field]!r})") from exc


def _safetensors() -> Any:
    try:
        return importlib.import_module("safetensors.torch")
    except ImportError as exc:
        raise MissingDependencyError(
            "Saving and loading linear models needs the 'safetensors' package. Install it with: "
            "pip install 'hoodwink[mnist]'"
        ) from exc


def _flat(x: torch.Tensor, dim: int) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] != dim:
        raise ShapeError(
            f"Inputs have {flat.shape[1]} values each but the model expects {dim}."
        )
    return flat.to(torch.float32)
