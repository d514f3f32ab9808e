"""Labelled image sets for the linear studies: bundled MNIST, a folder, or an ``.npz``.

:func:`load_data` returns an :class:`ImageData` with a fixed, stratified
train/validation split and pixels in [0, 1] laid out channels-first,
optionally resized (e.g. to 64x64x3 as in the essay). User data comes as

* a folder of class sub-folders (``root/cat/*.png``, ``root/dog/*.jpg``, ...),
  read with Pillow; the sub-folder names are the class names; or
* an ``.npz`` file with an array ``x`` of images, shaped (N, H, W),
  (N, H, W, C) or (N, C, H, W) with C in {1, 3}, either uint8 in 0..255 or
  floats in [0, 1], and an array ``y`` of N labels (integers or strings).

Every problem a user can cause (one class, mixed sizes without a resize, a
label count that does not match ``x``, fractional labels) raises
:class:`~hoodwink.errors.InputError` with a message naming the fix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hoodwink.errors import ConfigError, InputError, MissingDependencyError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageData",
    "load_data",
    "load_image_folder",
    "load_npz",
    "parse_size",
    "resize",
    "synthetic_images",
]

#: File suffixes read from class sub-folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


@dataclass(frozen=True)
class ImageData:
    """A labelled image set split into training and validation parts.

    Attributes
    ----------
    x_train, x_val : torch.Tensor, shape (N, C, H, W), float32 in [0, 1]
    y_train, y_val : torch.Tensor, shape (N,), int64 in 0..K-1
    class_names : tuple of str
    source : str
        Where the data came from ("mnist" or a path).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    class_names: tuple[str, ...]
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, (C, H, W)."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.class_names)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source, "input_shape": list(self.input_shape),
            "num_classes": self.num_classes, "class_names": list(self.class_names),
            "n_train": int(self.x_train.shape[0]), "n_val": int(self.x_val.shape[0]),
        }


def parse_size(text: str | None) -> tuple[int, int] | None:
    """Parse ``"64x64"`` (height x width) or ``"32"`` (square) into (H, W).

    Raises
    ------
    ConfigError
        If the text is not of that form or a side is < 1.
    """
    if text is None or text == "":
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        sides = []
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or min(sides) < 1:
        raise ConfigError(f"The 'size' parameter must look like 64x64 (height x width) or 32. "
                          f"Got {text!r}.")
    return sides[0], sides[1]


def _pil() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading image folders needs Pillow. Install it with: pip install 'hoodwink[images]'"
        ) from exc


def resize(x: torch.Tensor, size: tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """Resize a batch (N, C, H, W) to ``size`` and convert to ``channels`` (1 or 3).

    Resizing is bilinear with antialiasing, so shrinking does not alias.
    One channel becomes three by repetition; three become one by ITU-R 601
    luma (0.299 R + 0.587 G + 0.114 B). Values stay in [0, 1].
    """
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"The 'channels' parameter must be 1 or 3. Got {channels!r}.")
    out = x
    if channels is not None and out.shape[1] != channels:
        if channels == 3:
            out = out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out[:, :3]
        else:
            rgb = out[:, :3]
            luma = torch.tensor([0.299, 0.587, 0.114], dtype=out.dtype).reshape(1, 3, 1, 1)
            out = (rgb * luma).sum(dim=1, keepdim=True)
    if size is not None and tuple(out.shape[2:]) != size:
        out = torch.nn.functional.interpolate(out, size=size, mode="bilinear",
                                              align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0).contiguous()


def load_image_folder(
    root: str | Path, *, size: tuple[int, int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Read a folder of class sub-folders with Pillow.

    Parameters
    ----------
    root : str or Path
        A folder whose sub-folders are the classes (sorted by name).
    size : (H, W), optional
        Resize every image to this size. Without it all images must share one size.
    channels : {1, 3}, optional
        Convert to grey scale or RGB. Defaults to 1 when every image is grey, else 3.

    Returns
    -------
    x : torch.Tensor, shape (N, C, H, W), float32 in [0, 1]
    y : torch.Tensor, shape (N,), int64
    class_names : tuple of str

    Raises
    ------
    InputError
        Fewer than two class sub-folders with images, an unreadable image, or
        images of different sizes when ``size`` is not given.
    """
    image_mod = _pil()
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base} is not a folder.")
    classes = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, int]] = []
    names: list[str] = []
    for folder in classes:
        members = sorted(p for p in folder.iterdir()
                         if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if members:
            files += [(p, len(names)) for p in members]
            names.append(folder.name)
    if len(names) < 2:
        raise InputError(
            f"{base} has {len(names)} class sub-folder(s) with images ({', '.join(names) or 'none'}"
            f"); a classifier needs at least 2. Put each class's images in its own sub-folder "
            f"(suffixes {', '.join(IMAGE_SUFFIXES)})."
        )
    images: list[Any] = []
    for path, _ in files:
        try:
            with image_mod.open(path) as im:
                im.load()
                images.append(im.copy())
        except Exception as exc:  # Pillow raises many types for broken files
            raise InputError(f"Cannot read the image {path}: {exc}") from exc
    if channels is None:
        channels = 1 if all(im.mode in ("1", "L", "I", "I;16", "F", "LA") for im in images) else 3
    if channels not in (1, 3):
        raise ConfigError(f"The 'channels' parameter must be 1 or 3. Got {channels!r}.")
    if size is None:
        sizes = {im.size for im in images}
        if len(sizes) > 1:
            first = files[0][0], images[0].size
            other = next((p, im.size) for (p, _), im in zip(files, images, strict=True)
                         if im.size != first[1])
            raise InputError(
                f"The images in {base} have {len(sizes)} different sizes, e.g. {first[0].name} "
                f"is {first[1][0]}x{first[1][1]} and {other[0].name} is "
                f"{other[1][0]}x{other[1][1]} (width x height). Give a size to resize them all, "
                "e.g. --size 64x64."
            )
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for im in images:
        conv = im.convert(mode)
        if size is not None and conv.size != (size[1], size[0]):
            conv = conv.resize((size[1], size[0]), image_mod.Resampling.BILINEAR)
        a = np.asarray(conv, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    x = torch.from_numpy(np.stack(arrays).astype(np.float32) / np.float32(255.0))
    y = torch.tensor([label for _, label in files], dtype=torch.int64)
    return x, y, tuple(names)


def load_npz(
    path: str | Path, *, size: tuple[int, int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Read an ``.npz`` with arrays ``x`` (images) and ``y`` (labels).

    Parameters
    ----------
    path : str or Path
    size : (H, W), optional
    channels : {1, 3}, optional

    Returns
    -------
    x, y, class_names : as :func:`load_image_folder`
        Labels are mapped to 0..K-1 in sorted order of their original values,
        which become the class names.

    Raises
    ------
    InputError
        Missing ``x`` or ``y``, a label count that differs from the image
        count, fractional labels, fewer than two classes, or pixel values
        outside 0..255 (uint8) or [0, 1] (floats).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"No file at {p}.")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile and numpy raise several types
        raise InputError(f"{p} is not a readable .npz file: {exc}") from exc
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise InputError(
            f"{p} has no array named {' or '.join(repr(m) for m in missing)}; it holds "
            f"{sorted(arrays)}. Save it with np.savez(path, x=images, y=labels)."
        )
    xa, ya = arrays["x"], np.asarray(arrays["y"])
    if ya.ndim != 1 or xa.ndim < 3 or ya.shape[0] != xa.shape[0]:
        raise InputError(
            f"In {p}, y must hold one label per image: x has shape {xa.shape} ({xa.shape[0]} "
            f"images) but y has shape {ya.shape}."
        )
    labels, names = _labels(ya, p)
    x = _images(xa, p)
    return resize(x, size, channels), labels, names


def _labels(ya: npt.NDArray[Any], p: Path) -> tuple[torch.Tensor, tuple[str, ...]]:
    if ya.dtype.kind in "US":
        values, inverse = np.unique(ya.astype(str), return_inverse=True)
        names = tuple(str(v) for v in values)
    elif ya.dtype.kind in "iub":
        values, inverse = np.unique(ya.astype(np.int64), return_inverse=True)
        names = tuple(str(int(v)) for v in values)
    elif ya.dtype.kind == "f":
        if not np.all(np.isfinite(ya)) or not np.all(ya == np.round(ya)):
            bad = ya[~(np.isfinite(ya) & (ya == np.round(ya)))][0]
            raise InputError(
                f"The labels y in {p} must be integers or strings; found the value {bad!r}. "
                "Class labels are categories, not measurements."
            )
        values, inverse = np.unique(ya.astype(np.int64), return_inverse=True)
        names = tuple(str(int(v)) for v in values)
    else:
        raise InputError(f"The labels y in {p} have dtype {ya.dtype}; give integers or strings.")
    if len(names) < 2:
        raise InputError(f"The labels y in {p} contain {len(names)} class; a classifier needs "
                         "at least 2.")
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64)), names


def _images(xa: npt.NDArray[Any], p: Path) -> torch.Tensor:
    if xa.dtype == np.uint8:
        xf = xa.astype(np.float32) / np.float32(255.0)
    elif xa.dtype.kind in "fiu":
        xf = xa.astype(np.float32)
        lo, hi = float(xf.min()), float(xf.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 1:
            raise InputError(
                f"The images x in {p} have values in [{lo:g}, {hi:g}]; give uint8 pixels in "
                "0..255 or floats in [0, 1] (divide 8-bit values by 255)."
            )
    else:
        raise InputError(f"The images x in {p} have dtype {xa.dtype}; give uint8 or float.")
    if xf.ndim == 3:
        xf = xf[:, None]
    elif xf.ndim == 4:
        if xf.shape[-1] in (1, 3, 4) and xf.shape[1] not in (1, 3):
            xf = xf.transpose(0, 3, 1, 2)
        elif xf.shape[1] not in (1, 3):
            raise InputError(
                f"The images x in {p} have shape {xa.shape}; expected (N, H, W), (N, H, W, C) "
                "or (N, C, H, W) with C = 1 or 3."
            )
        if xf.shape[1] == 4:
            xf = xf[:, :3]
    else:
        raise InputError(
            f"The images x in {p} have shape {xa.shape}; expected (N, H, W), (N, H, W, C) or "
            "(N, C, H, W)."
        )
    return torch.from_numpy(np.ascontiguousarray(xf))


def _split(y: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    yn = y.numpy()
    train: list[npt.NDArray[np.int64]] = []
    val: list[npt.NDArray[np.int64]] = []
    for c in np.unique(yn):
        members = rng.permutation(np.flatnonzero(yn == c))
        k = round(val_fraction * members.size) if members.size > 1 else 0
        k = min(max(k, 1 if members.size > 1 else 0), members.size - 1)
        val.append(members[:k])
        train.append(members[k:])
    tr = rng.permutation(np.concatenate(train))
    va = rng.permutation(np.concatenate(val))
    return torch.from_numpy(tr.astype(np.int64)), torch.from_numpy(va.astype(np.int64))


def load_data(
    source: str | Path = "mnist",
    *,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> ImageData:
    """Load bundled MNIST or a user's labelled images, split into train and validation.

    Parameters
    ----------
    source : "mnist", "synthetic", or a path to a folder of class sub-folders or an ``.npz``
        ``"mnist"`` is the 5,000 digits of :func:`hoodwink.data.load_mnist`
        with its fixed 4,000 / 1,000 split; ``"synthetic"`` is
        :func:`synthetic_images` with its defaults.
    size : (H, W), optional
        Resize every image, e.g. (64, 64).
    channels : {1, 3}, optional
        Convert to grey scale or RGB.
    val_fraction : float in (0, 1), default 0.2
        Share of each class held out for validation (user data only).
    seed : int, default 0
        Seed of the stratified split (user data only).

    Returns
    -------
    ImageData

    Raises
    ------
    InputError
        For unusable data (see :func:`load_image_folder` and :func:`load_npz`).
    ConfigError
        For a bad ``val_fraction``.
    """
    if not (isinstance(val_fraction, float | int) and 0 < val_fraction < 1):
        raise ConfigError(f"The 'val_fraction' parameter must be a float in (0, 1). "
                          f"Got {val_fraction!r}.")
    if str(source) == "synthetic":
        syn = synthetic_images(seed=seed)
        return ImageData(resize(syn.x_train, size, channels), syn.y_train,
                         resize(syn.x_val, size, channels), syn.y_val, syn.class_names,
                         syn.source)
    if str(source) == "mnist":
        from hoodwink.data import load_mnist

        xt, yt = load_mnist("train")
        xv, yv = load_mnist("test")
        return ImageData(resize(xt, size, channels), yt, resize(xv, size, channels), yv,
                         tuple(str(i) for i in range(10)), "mnist")
    p = Path(source)
    if not p.exists():
        raise InputError(f"No data at {p}: give 'mnist', 'synthetic', a folder of class "
                         "sub-folders or an .npz file with arrays x and y.")
    if p.is_dir():
        x, y, names = load_image_folder(p, size=size, channels=channels)
    elif p.suffix.lower() == ".npz":
        x, y, names = load_npz(p, size=size, channels=channels)
    else:
        raise InputError(f"{p} is neither a folder nor an .npz file.")
    tr, va = _split(y, val_fraction, seed)
    if va.numel() == 0:
        raise InputError(f"{p} has too few images to hold out a validation set; give at least "
                         "2 images per class.")
    return ImageData(x[tr], y[tr], x[va], y[va], names, str(p))


def synthetic_images(
    *,
    classes: int = 3,
    per_class: int = 40,
    val_per_class: int = 100,
    size: int = 16,
    signal: float = 0.15,
    noise: float = 0.2,
    smoothness: float = 2.5,
    seed: int = 0,
) -> ImageData:
    """A small image set whose class signal is smooth and whose noise is white.

    Each class has a smooth prototype (white noise blurred with a Gaussian of
    std ``smoothness`` pixels, scaled to unit RMS); an image is
    ``clip(0.5 + signal * prototype + noise * N(0, 1), 0, 1)`` per pixel. With
    fewer training images than pixels, a weakly regularised linear model can
    fit the pixel noise (rough templates, small margins), while a strongly
    regularised one converges to the smooth class means. Used by the tests of
    the regularisation study, where those trends must show.

    Returns
    -------
    ImageData
        ``size x size`` grey images, ``classes * per_class`` for training and
        ``classes * val_per_class`` for validation.
    """
    gen = torch.Generator().manual_seed(seed)
    radius = max(1, int(3 * smoothness))
    ax = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel1 = torch.exp(-0.5 * (ax / smoothness) ** 2)
    kernel1 = kernel1 / kernel1.sum()
    kernel = (kernel1[:, None] * kernel1[None, :])[None, None]
    raw = torch.randn(classes, 1, size + 2 * radius, size + 2 * radius, generator=gen)
    protos = torch.nn.functional.conv2d(raw, kernel)
    protos = protos - protos.mean(dim=(1, 2, 3), keepdim=True)
    protos = protos / protos.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()

    def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(classes).repeat_interleave(k)
        x = 0.5 + signal * protos[y] + noise * torch.randn(y.shape[0], 1, size, size,
                                                           generator=gen)
        perm = torch.randperm(y.shape[0], generator=gen)
        return x.clamp(0.0, 1.0)[perm], y[perm]

    xt, yt = draw(per_class)
    xv, yv = draw(val_per_class)
    return ImageData(xt, yt, xv, yv, tuple(f"class{c}" for c in range(classes)), "synthetic")
