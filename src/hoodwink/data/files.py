"""Labelled data from files: folders of images, ``.npz``, ``.safetensors`` and pickles.

:func:`load_dataset` turns one spec into a :class:`Dataset` of inputs and true
labels ready to attack:

* ``"mnist"``: the 1,000 held-out MNIST digits bundled with hoodwink
  (:func:`hoodwink.data.load_mnist` ``("test")``);
* a folder of class sub-folders of images (``root/cat/*.png``,
  ``root/dog/*.jpg``, ...), read with Pillow; the sorted sub-folder names are
  the class names and their positions the labels;
* an ``.npz`` or ``.safetensors`` file with an array ``x`` of inputs (N, ...)
  and an array ``y`` of N integer labels, and optionally ``class_names``;
* a pickle (``.pt``, ``.pth``, ``.pkl``, ``.pickle``) holding a dict with
  ``x`` and ``y`` (or a pair ``(x, y)``), only with ``trust_pickle=True``:
  unpickling runs code stored in the file.

The lower-level readers live in :mod:`hoodwink.data.readers` and are
re-exported here.
Every problem a user can cause raises :class:`~hoodwink.errors.InputError` or
:class:`~hoodwink.errors.ConfigError` with a message naming the fix.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hoodwink.data.readers import (
    ARRAY_SUFFIXES,
    IMAGE_SUFFIXES,
    PICKLE_SUFFIXES,
    load_image_folder,
    load_npz,
    resize,
)
from hoodwink.errors import ConfigError, InputError, MissingDependencyError
from hoodwink.imaging import require_regular_file

__all__ = [
    "ARRAY_SUFFIXES",
    "IMAGE_SUFFIXES",
    "PICKLE_SUFFIXES",
    "Dataset",
    "load_dataset",
    "load_image_folder",
    "load_npz",
    "resize",
]

@dataclass(frozen=True)
class Dataset:
    """Inputs and true labels to attack.

    Attributes
    ----------
    x : torch.Tensor, shape (N, ...), float
        Raw inputs (images are (N, C, H, W) in [0, 1]); never normalised.
    y : torch.Tensor, shape (N,), int64
        True class indices.
    class_names : tuple of str or None
        Name of each class index, when the source names them.
    source : str
        Where the data came from ("mnist" or a path).
    """

    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...] | None
    source: str

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        names = f", {len(self.class_names)} class names" if self.class_names else ""
        return (f"Dataset(source={self.source!r}, x={tuple(self.x.shape)} {self.x.dtype}, "
                f"y={tuple(self.y.shape)}{names})")

    def head(self, n: int) -> Dataset:
        """The first ``n`` samples.

        Raises
        ------
        ConfigError
            When ``n`` is not an int in ``1..len(self)``.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"The number of samples 'n' must be an int >= 1. Got {n!r}.")
        if n > len(self):
            raise ConfigError(
                f"Asked for n={n} samples but {self.source} holds {len(self)}. Give n <= "
                f"{len(self)}, or leave it out to use all of them."
            )
        return Dataset(self.x[:n], self.y[:n], self.class_names, self.source)

    def relabel(self, model_class_names: tuple[str, ...] | list[str]) -> Dataset:
        """Map labels onto a model's classes by name.

        A folder of images ``3/`` and ``7/`` has labels 0 and 1 by position, but
        a digit model calls those classes 3 and 7. When every class name of the
        data is one of ``model_class_names`` (compared case-insensitively), the
        labels are replaced by the model's indices of those names.

        Raises
        ------
        InputError
            When the data has class names that the model does not know.
        """
        if self.class_names is None:
            return self
        lowered = [str(m).lower() for m in model_class_names]
        unknown = [c for c in self.class_names if c.lower() not in lowered]
        if unknown:
            raise InputError(
                f"The classes of {self.source} ({', '.join(self.class_names[:5])}"
                f"{', ...' if len(self.class_names) > 5 else ''}) must be class names of the "
                f"model; {', '.join(repr(u) for u in unknown[:5])} is not (the model's first "
                f"classes: {', '.join(model_class_names[:5])}). Name the sub-folders after the "
                "model's classes."
            )
        mapping = torch.tensor([lowered.index(c.lower()) for c in self.class_names],
                               dtype=torch.int64)
        return Dataset(self.x, mapping[self.y], tuple(model_class_names), self.source)


def load_dataset(
    spec: str | Path,
    *,
    trust_pickle: bool = False,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> Dataset:
    """Load inputs and true labels to attack, from a bundled name or a file.

    Parameters
    ----------
    spec : str or Path
        ``"mnist"`` (the 1,000 held-out digits bundled with hoodwink, shape
        (1000, 1, 28, 28)); a folder of class sub-folders of images; an
        ``.npz`` or ``.safetensors`` file with arrays ``x`` (N, ...) and
        ``y`` (N,); or a pickle (``.pt``, ``.pth``, ``.pkl``, ``.pickle``)
        holding a dict with ``x`` and ``y`` or a pair ``(x, y)``.
        In files, uint8 ``x`` is divided by 255 (pixels in [0, 1]); float
        ``x`` is kept as it is (as float32); ``y`` must hold integer class
        indices. An optional ``class_names`` entry (an array of strings; in a
        safetensors file, a JSON list in the metadata) names the classes.
    trust_pickle : bool, default False
        Allow loading pickles. Unpickling runs code stored in the file, so
        only do this for files you trust; prefer ``.npz`` or ``.safetensors``.
    size : (H, W), optional
        Resize the images of a folder (without it they must share one size).
    channels : {1, 3}, optional
        Convert the images of a folder to grey scale or RGB (default: 1 when
        all are grey, else 3).

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        A missing or unreadable file, missing ``x``/``y`` (the message lists
        the keys found), mismatched lengths, non-integer or negative labels,
        or no samples.
    ConfigError
        A pickle without ``trust_pickle=True``, an unknown file type, or
        ``size``/``channels`` for something other than a folder.
    MissingDependencyError
        Pillow (folders) or safetensors is not installed.

    Examples
    --------
    >>> data = load_dataset("mnist")
    >>> len(data), tuple(data.x.shape[1:]), data.class_names[:3]
    (1000, (1, 28, 28), ('0', '1', '2'))
    """
    text = str(spec)
    if text.strip().lower() == "mnist":
        _only_for_folders(size, channels, "mnist")
        from hoodwink.data.mnist import load_mnist

        x, y = load_mnist("test")
        return Dataset(x, y, tuple(str(i) for i in range(10)), "mnist")
    p = Path(text).expanduser()
    if p.is_dir():
        x, y, folders = load_image_folder(p, size=size, channels=channels, min_classes=1)
        return Dataset(x, y, folders, str(p))
    suffix = p.suffix.lower()
    known = ARRAY_SUFFIXES + PICKLE_SUFFIXES
    if not p.exists():
        raise InputError(
            f"No data at {p}. Give 'mnist', a folder of class sub-folders of images, or a file "
            f"with arrays x and y ({', '.join(known)})."
        )
    # A named pipe would block np.load or unpickling for ever: refuse it before opening.
    require_regular_file(p, "data")
    if suffix not in known:
        raise ConfigError(
            f"Cannot read data from {p}: unknown file type {suffix or '(none)'!r}. Give a folder "
            f"of class sub-folders of images or a file of type {', '.join(known)}."
        )
    _only_for_folders(size, channels, str(p))
    if suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise ConfigError(
                f"{p} is a pickle, and loading a pickle executes code stored in it. If you "
                "trust the file, pass --trust-pickle (trust_pickle=True); better, save the "
                "arrays as .npz (np.savez(path, x=x, y=y)) or .safetensors."
            )
        arrays, names = _read_pickle(p)
    elif suffix == ".npz":
        arrays, names = _read_npz(p)
    else:
        arrays, names = _read_safetensors(p)
    return _to_dataset(arrays, names, p)


def _only_for_folders(size: Any, channels: Any, what: str) -> None:
    if size is not None or channels is not None:
        raise ConfigError(
            f"size and channels resize and convert the images of a folder; {what} is not a "
            "folder. Leave them out, or resize the arrays before saving them."
        )


def _read_npz(p: Path) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays: dict[str, Any] = {k: data[k] for k in data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(
                f"{p} stores Python objects (pickled), which are not loaded. Save plain arrays: "
                "np.savez(path, x=x, y=y) with numeric x and y, class_names as strings."
            ) from exc
        raise InputError(f"{p} is not a readable .npz file: {exc}") from exc
    except Exception as exc:  # zipfile and numpy raise several types
        raise InputError(f"{p} is not a readable .npz file: {exc}") from exc
    names = arrays.pop("class_names", None)
    return arrays, _names(names, p)


def _read_safetensors(p: Path) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading .safetensors files needs safetensors. Install it with: "
            "pip install 'hoodwink[mnist]' (or pip install safetensors)"
        ) from exc
    try:
        with safe_open(str(p), framework="pt") as f:
            arrays: dict[str, Any] = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{p} is not a readable .safetensors file: {exc}") from exc
    raw = meta.get("class_names")
    names: Any = None
    if raw is not None:
        try:
            names = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"The metadata 'class_names' of {p} must be a JSON list of strings, e.g. "
                f'\'["cat", "dog"]\'. Got {raw[:60]!r}.'
            ) from exc
    return arrays, _names(names, p)


def _read_pickle(p: Path) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    try:
        if p.suffix.lower() in (".pt", ".pth"):
            obj = torch.load(p, map_location="cpu", weights_only=False)
        else:
            with p.open("rb") as fh:
                obj = pickle.load(fh)  # only reached with trust_pickle=True
    except Exception as exc:  # unpickling can raise anything
        raise InputError(f"Cannot unpickle {p}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, tuple | list) and len(obj) == 2:
        obj = {"x": obj[0], "y": obj[1]}
    if not isinstance(obj, dict):
        raise InputError(
            f"{p} holds a {type(obj).__name__}; it must hold a dict with 'x' and 'y' (and "
            "optionally 'class_names') or a pair (x, y)."
        )
    arrays = {str(k): v for k, v in obj.items()}
    names = arrays.pop("class_names", None)
    return arrays, _names(names, p)


def _names(raw: Any, p: Path) -> tuple[str, ...] | None:
    if raw is None:
        return None
    values = raw.tolist() if isinstance(raw, np.ndarray | torch.Tensor) else raw
    if isinstance(values, str) or not isinstance(values, list | tuple) or not all(
            isinstance(v, str) for v in values):
        raise InputError(
            f"class_names in {p} must be a list of strings, one per class. Got {raw!r:.80}."
        )
    return tuple(values)


def _as_numpy(v: Any, key: str, p: Path) -> npt.NDArray[Any]:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    try:
        return np.asarray(v)
    except Exception as exc:  # arbitrary objects from a pickle
        raise InputError(f"{key} in {p} is not an array: {type(v).__name__}.") from exc


def _to_dataset(arrays: dict[str, Any], names: tuple[str, ...] | None, p: Path) -> Dataset:
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise InputError(
            f"{p} has no {' or '.join(repr(m) for m in missing)}; it holds "
            f"{sorted(arrays) or 'nothing'}. Save the inputs as 'x' and the labels as 'y', e.g. "
            "np.savez(path, x=x, y=y)."
        )
    xa, ya = _as_numpy(arrays["x"], "x", p), _as_numpy(arrays["y"], "y", p)
    if xa.ndim < 2 or xa.shape[0] == 0:
        raise InputError(
            f"x in {p} has shape {xa.shape}; it must hold N >= 1 inputs, shape (N, ...) with "
            "at least one feature axis."
        )
    if ya.ndim != 1 or ya.shape[0] != xa.shape[0]:
        raise InputError(
            f"In {p}, y must hold one label per input: x has shape {xa.shape} ({xa.shape[0]} "
            f"inputs) but y has shape {ya.shape}."
        )
    if xa.dtype == np.uint8:
        x = torch.from_numpy(xa.astype(np.float32) / np.float32(255.0))
    elif xa.dtype.kind == "f":
        with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf: refused below
            x32 = np.ascontiguousarray(xa, dtype=np.float32)
        bad = ~np.isfinite(x32)
        if bad.any():
            raise InputError(
                f"x in {p} holds {int(bad.sum())} NaN or infinite value(s) (or values too large "
                "for float32); every input must be a finite number. Clean or drop those "
                "samples."
            )
        x = torch.from_numpy(x32)
    else:
        raise InputError(
            f"x in {p} has dtype {xa.dtype}; give uint8 pixels (divided by 255 on loading) or "
            "floats (used as they are)."
        )
    if ya.dtype.kind in "iu":
        yi = ya.astype(np.int64)
    elif ya.dtype.kind == "f" and np.all(np.isfinite(ya)) and np.all(ya == np.round(ya)):
        yi = ya.astype(np.int64)
    else:
        example = ya.reshape(-1)[0] if ya.size else None
        raise InputError(
            f"The labels y in {p} must be integer class indices; they have dtype {ya.dtype} "
            f"(e.g. {example!r}). Convert them, e.g. y.astype(np.int64)."
        )
    if (yi < 0).any():
        raise InputError(f"The labels y in {p} must be >= 0; found {int(yi.min())}.")
    if names is not None and yi.max() >= len(names):
        raise InputError(
            f"{p} names {len(names)} classes but y contains the label {int(yi.max())}; give one "
            "class name per class index."
        )
    return Dataset(x, torch.from_numpy(yi), names, str(p))
