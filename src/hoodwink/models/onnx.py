"""ONNX adapter: :class:`OnnxClassifier`.

Runs an ONNX model with onnxruntime (imported only when an adapter is
built): a network exported with ``torch.onnx.export``, or a scikit-learn
model converted by ``skl2onnx``, among others.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from hoodwink._validation import check_choice, check_int, reject
from hoodwink.errors import (
    ConfigError,
    HoodwinkError,
    MissingDependencyError,
    ModelOutputError,
    ShapeError,
)
from hoodwink.models._numpy import (
    MAX_CLASSES,
    BoundLike,
    IntArray,
    NumpyClassifier,
    check_class_names,
)
from hoodwink.models.base import OutputKind
from hoodwink.models.torch import Normalize, _statistics

__all__ = ["OnnxClassifier"]

_OWNER = "OnnxClassifier"
_INPUT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")
_INT_OUTPUTS = ("tensor(int64)", "tensor(int32)", "tensor(int16)", "tensor(int8)",
                "tensor(uint8)", "tensor(uint16)", "tensor(uint32)", "tensor(uint64)")
_ZIPMAP_FIX = ("Convert the model with zipmap disabled: skl2onnx.to_onnx(model, X, "
               "options={id(model): {'zipmap': False}}).")

Preprocessing = Callable[[np.ndarray], Any] | tuple[Any, Any] | Normalize


def _ort() -> Any:
    try:
        import onnxruntime  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError(
            "OnnxClassifier needs onnxruntime. Install it with: pip install 'hoodwink[onnx]' "
            "(or pip install onnxruntime)."
        ) from exc
    return onnxruntime


class _Standardise:
    """``(a - mean) / std`` on NumPy arrays, statistics along axis ``dim``."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, dim: int = 1) -> None:
        self.mean, self.std, self.dim = mean, std, dim

    def _shaped(self, t: np.ndarray, a: np.ndarray) -> np.ndarray:
        if t.size == 1:
            return t.reshape(())
        if a.ndim <= self.dim or a.shape[self.dim] != t.size:
            raise ShapeError(
                f"The preprocessing (mean, std) has {t.size} values for axis {self.dim}, but "
                f"the inputs have shape {a.shape}. Give one value per channel (axis {self.dim})."
            )
        shape = [1] * a.ndim
        shape[self.dim] = t.size
        return t.reshape(shape)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        out: np.ndarray = (a - self._shaped(self.mean, a)) / self._shaped(self.std, a)
        return out.astype(a.dtype, copy=False)

    def __repr__(self) -> str:
        return f"(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _preprocessing(value: Any) -> Callable[[np.ndarray], Any] | None:
    if value is None:
        return None
    if isinstance(value, Normalize):
        mean = value.mean.detach().cpu().numpy().astype(np.float32)
        std = value.std.detach().cpu().numpy().astype(np.float32)
        return _Standardise(mean, std, value.dim)
    if isinstance(value, tuple | list) and len(value) == 2 and not callable(value):
        mean = _statistics(_OWNER, "preprocessing", value[0]).numpy()
        std = _statistics(_OWNER, "preprocessing", value[1], positive=True).numpy()
        if mean.size != std.size and min(mean.size, std.size) != 1:
            reject(_OWNER, "preprocessing", value,
                   "a (mean, std) pair of equal lengths (or one of length 1)")
        return _Standardise(mean, std)
    if isinstance(value, type) or not callable(value):
        reject(_OWNER, "preprocessing", value,
               "a function of NumPy arrays, a (mean, std) pair, a hoodwink.Normalize, or None",
               hint="E.g. preprocessing=([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).")
    fn: Callable[[np.ndarray], Any] = value
    return fn


def _describe(path_or_bytes: Any) -> str:
    if isinstance(path_or_bytes, str | os.PathLike):
        return repr(Path(path_or_bytes).name)
    if isinstance(path_or_bytes, bytes | bytearray):
        return f"<{len(path_or_bytes)} bytes>"
    return "<InferenceSession>"


class OnnxClassifier(NumpyClassifier):
    """Run an ONNX classifier with onnxruntime so black-box attacks can query it.

    Parameters
    ----------
    path_or_bytes : str, path, bytes or onnxruntime.InferenceSession
        An ``.onnx`` file, its bytes (``model.SerializeToString()``), or a
        ready session (used as it is, never changed). The model has one input.
    bounds : (lower, upper)
        The range of valid raw inputs, required: floats or per-feature arrays
        broadcastable to one input; finite, lower < upper everywhere.
    preprocessing : callable, (mean, std) or Normalize, optional
        Applied to the raw NumPy batch before the model: a function
        ``np.ndarray -> np.ndarray`` (e.g. a resize and normalisation), or a
        ``(mean, std)`` pair (per channel along axis 1, or one value for all),
        or a :class:`~hoodwink.Normalize`. Attacks never see its output.
    output : {"logits", "probabilities", "labels"}, optional
        What the chosen model output holds. Default: ``"probabilities"`` when
        the model has an output whose name contains "prob" (as skl2onnx's
        ``probabilities`` and ``output_probability``), else ``"logits"`` from
        its first float output.
    output_name : str, optional
        The model output to read, when the default pick is not the right one.
    levels : int, optional
        Number of values each feature takes between the bounds, in
        [2, 2**24] (256 for 8-bit images). Attack results are snapped to it.
    input_shape : sequence of int, optional
        Shape of one input; other shapes are refused. A model whose input is
        ``(N, F)`` also takes inputs of any shape with F values (flattened).
    batch_size : int, default 256
        Largest batch run at once. A model exported with a fixed batch size B
        runs in batches of B (the last one padded).
    class_names : sequence of str, optional
        One name per class index; skl2onnx's ZipMap output supplies them when
        this is left out.
    num_classes : int in [2, 2**31 - 1], optional
        Number of classes; needed with ``output="labels"`` (or class_names).
        Otherwise read from the model's output shape, or learnt from its first
        run.
    providers : sequence of str, optional
        onnxruntime execution providers; default ``["CPUExecutionProvider"]``.

    Raises
    ------
    ConfigError
        A file that is missing or not an ONNX model, a model without exactly
        one float input, an unknown ``output_name``, no output of the asked
        kind, or any invalid parameter.
    MissingDependencyError
        onnxruntime is not installed (``pip install 'hoodwink[onnx]'``).

    Notes
    -----
    Batches go to the model in the dtype of its input (float32 for most).
    skl2onnx's default ZipMap output (a list of dicts) is read too, columns in
    the model's class order; converting with ``options={id(model): {"zipmap":
    False}}`` gives a plain tensor and is faster. Class indices are the
    columns of the output; labels outputs must be indices 0..C-1.
    """

    def __init__(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes | Any,
        *,
        bounds: tuple[BoundLike, BoundLike],
        preprocessing: Preprocessing | None = None,
        output: Literal["logits", "probabilities", "labels"] | None = None,
        output_name: str | None = None,
        levels: int | None = None,
        input_shape: Sequence[int] | None = None,
        batch_size: int = 256,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        kind: OutputKind | None = check_choice(_OWNER, "output", output, get_args(OutputKind),
                                               allow_none=True)
        if output_name is not None and not isinstance(output_name, str):
            reject(_OWNER, "output_name", output_name, "a str (the name of a model output)")
        nc = check_int(_OWNER, "num_classes", num_classes, low=2, high=MAX_CLASSES,
                       allow_none=True)
        names = check_class_names(_OWNER, class_names)
        pre = _preprocessing(preprocessing)
        if providers is not None and (isinstance(providers, str) or not isinstance(
                providers, Sequence) or not all(isinstance(p, str) for p in providers)):
            reject(_OWNER, "providers", providers, "a sequence of str or None",
                   hint="E.g. providers=['CPUExecutionProvider'].")
        self._source = _describe(path_or_bytes)
        session = self._session(path_or_bytes, providers)
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(
                f"{_OWNER} runs models with one input; {self._source} has {len(inputs)}: "
                f"{', '.join(i.name for i in inputs)}. Wrap it with CallableClassifier and "
                "feed the other inputs yourself."
            )
        inp = inputs[0]
        if inp.type not in _INPUT_TYPES:
            raise ConfigError(
                f"The input {inp.name!r} of {self._source} has type {inp.type}; {_OWNER} feeds "
                f"float inputs ({', '.join(_INPUT_TYPES)})."
            )
        dims = list(inp.shape) if inp.shape is not None else []
        batch_dim = dims[0] if dims else None
        rest = dims[1:]
        self._model_dims: tuple[int, ...] | None = (
            tuple(int(d) for d in rest) if rest and all(isinstance(d, int) and d > 0
                                                        for d in rest) else None)
        self._fixed_batch = (int(batch_dim) if isinstance(batch_dim, int) and batch_dim > 0
                             else None)
        out_meta, kind = self._pick_output(session, kind, output_name)
        if nc is None and names is None and kind != "labels" and out_meta.type in _FLOAT_OUTPUTS:
            shape = list(out_meta.shape or [])
            if len(shape) == 2 and isinstance(shape[1], int) and shape[1] >= 2:
                nc = int(shape[1])
        if kind == "labels" and nc is None and names is None:
            raise ConfigError(
                f"{_OWNER} with output='labels' needs the number of classes: pass num_classes= "
                "(or class_names=)."
            )
        super().__init__(owner=_OWNER, bounds=bounds, output=kind, levels=levels,
                         input_shape=input_shape, batch_size=batch_size, num_classes=nc,
                         class_names=names)
        self._names_given = names is not None
        #: The onnxruntime session (never changed by hoodwink).
        self.session = session
        self.preprocessing = pre
        self._input_name = inp.name
        self._input_dtype = _INPUT_TYPES[inp.type]
        self._output_name = out_meta.name
        self._zipmap = out_meta.type.startswith("seq(map(")
        if self._fixed_batch is not None:
            self._chunk = self._fixed_batch
        if self._zipmap and self._num_classes is None:
            # skl2onnx's ZipMap names the classes: one run learns them, and their number
            # (when the input shape is known; else the first call does).
            with contextlib.suppress(ConfigError):
                self._learn_num_classes()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _session(source: Any, providers: Sequence[str] | None) -> Any:
        ort = _ort()
        if isinstance(source, ort.InferenceSession):
            if providers is not None:
                raise ConfigError(
                    f"{_OWNER} got a ready InferenceSession and providers=; a session has its "
                    "providers already. Leave providers out."
                )
            return source
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            try:
                is_file = path.is_file()
            except (OSError, ValueError):
                is_file = False
            if not is_file:
                raise ConfigError(f"No ONNX model file at {path}.")
            arg: Any = str(path)
        elif isinstance(source, bytes | bytearray):
            arg = bytes(source)
        else:
            raise ConfigError(
                f"{_OWNER} takes the path of an .onnx file, its bytes, or an "
                f"onnxruntime.InferenceSession; got {type(source).__name__}."
            )
        try:
            return ort.InferenceSession(arg, providers=list(providers or
                                                            ["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime raises its own error types
            raise ConfigError(
                f"onnxruntime cannot load {_describe(source)}: {type(exc).__name__}: {exc}"
            ) from exc

    def _pick_output(self, session: Any, kind: OutputKind | None,
                     name: str | None) -> tuple[Any, OutputKind]:
        outs = list(session.get_outputs())
        listing = ", ".join(f"{o.name} ({o.type})" for o in outs)
        if name is not None:
            match = [o for o in outs if o.name == name]
            if not match:
                raise ConfigError(
                    f"{self._source} has no output {name!r}; its outputs are {listing}."
                )
            meta = match[0]
            if kind is None:
                kind = ("labels" if meta.type in _INT_OUTPUTS
                        else "probabilities" if "prob" in meta.name.lower() else "logits")
            self._check_output_type(meta, kind, listing)
            return meta, kind
        floats = [o for o in outs if o.type in _FLOAT_OUTPUTS]
        probs = [o for o in outs if "prob" in o.name.lower()
                 and (o.type in _FLOAT_OUTPUTS or o.type.startswith("seq(map("))]
        ints = [o for o in outs if o.type in _INT_OUTPUTS]
        if kind is None:
            if probs:
                # A plain tensor beats skl2onnx's ZipMap list of dicts.
                probs.sort(key=lambda o: o.type.startswith("seq("))
                return probs[0], "probabilities"
            if floats:
                return floats[0], "logits"
            if ints:
                return ints[0], "labels"
            raise ConfigError(
                f"{self._source} has no output {_OWNER} can read (float scores, or integer "
                f"labels); its outputs are {listing}. {_ZIPMAP_FIX}"
            )
        if kind == "probabilities":
            probs.sort(key=lambda o: o.type.startswith("seq("))
            pick = probs[0] if probs else (floats[0] if floats else None)
        elif kind == "logits":
            plain = [o for o in floats if "prob" not in o.name.lower()]
            pick = plain[0] if plain else (floats[0] if floats else None)
        else:
            named = [o for o in ints if "label" in o.name.lower()]
            pick = named[0] if named else (ints[0] if ints else None)
        if pick is None:
            raise ConfigError(
                f"{self._source} has no output for output={kind!r}; its outputs are {listing}. "
                "Choose another output= or name one with output_name=."
            )
        return pick, kind

    @staticmethod
    def _check_output_type(meta: Any, kind: OutputKind, listing: str) -> None:
        if kind == "labels":
            ok = meta.type in _INT_OUTPUTS
        else:
            ok = meta.type in _FLOAT_OUTPUTS or (kind == "probabilities"
                                                 and meta.type.startswith("seq(map("))
        if not ok:
            raise ConfigError(
                f"The output {meta.name!r} has type {meta.type}, which does not hold "
                f"{kind}: labels need an integer tensor, scores a float tensor. Outputs: "
                f"{listing}."
            )

    # ------------------------------------------------------------------ hooks
    def _who(self) -> str:
        return f"the ONNX model {self._source}"

    def _model_repr(self) -> str:
        return self._source

    def _repr_parts(self) -> list[str]:
        parts = super()._repr_parts()
        parts.insert(1, f"output_name={self._output_name!r}")
        if self.preprocessing is not None:
            parts.insert(2, f"preprocessing={self.preprocessing!r}")
        return parts

    def _learn_num_classes(self) -> None:
        shape = self._input_shape or self._model_dims
        if shape is None or self._output == "labels":
            super()._learn_num_classes()
            return
        try:
            mid = torch.broadcast_to((self._lower + self._upper) / 2, shape)[None].clone()
        except RuntimeError:  # per-feature bounds in another layout than the model's input
            super()._learn_num_classes()
            return
        self.scores(mid)

    def _check_more(self, x: torch.Tensor) -> None:
        dims = self._model_dims
        one = tuple(x.shape[1:])
        if dims is None or one == dims:
            return
        if len(dims) == 1 and math.prod(one) == dims[0]:
            return  # a flat (N, F) model takes inputs of any shape with F values
        raise ShapeError(
            f"{self._who()} takes inputs of shape (N, {', '.join(str(d) for d in dims)}); x "
            f"has shape {tuple(x.shape)}."
        )

    def _feed(self, a: np.ndarray) -> np.ndarray:
        if self.preprocessing is not None:
            try:
                a = np.asarray(self.preprocessing(a))
            except HoodwinkError:
                raise
            except Exception as exc:  # the user's preprocessing can raise anything
                raise ModelOutputError(
                    f"The preprocessing of {_OWNER} raised {type(exc).__name__} on a batch of "
                    f"shape {a.shape}: {exc}"
                ) from exc
        dims = self._model_dims
        if dims is not None and len(dims) == 1 and a.ndim != 2:
            a = a.reshape(a.shape[0], -1)
        return np.ascontiguousarray(a, dtype=self._input_dtype)

    def _run(self, a: np.ndarray) -> Any:
        n = a.shape[0]
        feed = self._feed(a)
        b = self._fixed_batch
        if b is not None and n < b:  # a model exported for batches of exactly b
            feed = np.concatenate([feed, np.repeat(feed[-1:], b - n, axis=0)])
        try:
            (out,) = self.session.run([self._output_name], {self._input_name: feed})
        except HoodwinkError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # onnxruntime raises its own error types
            if "InvalidArgument" in type(exc).__name__:
                raise ShapeError(
                    f"onnxruntime refused a batch of shape {feed.shape} for {self._who()}: "
                    f"{exc}. Check that x has the shape and layout the model expects; give "
                    "input_shape= to have shapes checked first."
                ) from exc
            raise ModelOutputError(
                f"{self._who()} raised {type(exc).__name__}: {exc}"
            ) from exc
        if self._zipmap:
            out = self._from_zipmap(out)
        if b is not None and n < b:
            out = np.asarray(out)[:n]
        return out

    def _from_zipmap(self, rows: Any) -> np.ndarray:
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise ModelOutputError(
                f"{self._who()} returned {type(rows).__name__} from its ZipMap output "
                f"{self._output_name!r}, not a list of dicts. {_ZIPMAP_FIX}"
            )
        keys = list(rows[0])
        if any(list(r) != keys for r in rows):
            raise ModelOutputError(
                f"The ZipMap output {self._output_name!r} of {self._who()} has rows with "
                f"different classes. {_ZIPMAP_FIX}"
            )
        if self._class_names is None and len(keys) >= 2 and keys != list(range(len(keys))):
            names = tuple(str(k) for k in keys)
            if len(set(names)) == len(names):
                self._class_names = names
        return np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)

    def _scores_chunk(self, a: np.ndarray) -> Any:
        return self._run(a)

    def _labels_chunk(self, a: np.ndarray) -> IntArray:
        return self._validated_indices(self._run(a), a.shape[0])
