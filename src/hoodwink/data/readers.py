"""Low-level readers of labelled arrays: a folder of class sub-folders of images, an ``.npz``.

:func:`load_image_folder` and :func:`load_npz` (the latter maps any labels,
strings too, to 0..K-1) serve :func:`hoodwink.data.load_dataset` and the
linear studies. Every problem a user can cause raises
:class:`~hoodwink.errors.InputError` or :class:`~hoodwink.errors.ConfigError`
with a message naming the fix.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

from hoodwink.errors import ConfigError, InputError, MissingDependencyError
from hoodwink.imaging import file_mode, require_regular_file, to_8bit

__all__ = [
    "ARRAY_SUFFIXES",
    "IMAGE_SUFFIXES",
    "PICKLE_SUFFIXES",
    "load_image_folder",
    "load_npz",
    "resize",
]

#: File suffixes read from class sub-folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")
#: Files of arrays that load without running code.
ARRAY_SUFFIXES = (".npz", ".safetensors")
#: Pickle files: loaded only with ``trust_pickle=True``.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle")


def _pil() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading image folders needs Pillow. Install it with: pip install 'hoodwink[images]'"
        ) from exc


def _check_size(size: object) -> tuple[int, int] | None:
    """``size`` as (H, W) of ints >= 1, at most MAX_PIXELS in all; None passes."""
    from hoodwink.imaging import MAX_PIXELS

    if size is None:
        return None
    ok = (isinstance(size, tuple | list) and len(size) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size))
    if not ok or size[0] * size[1] > MAX_PIXELS:  # type: ignore[index]
        raise ConfigError(
            f"The 'size' parameter must be (height, width), two ints >= 1 with at most "
            f"{MAX_PIXELS:,} pixels in all, e.g. (28, 28). Got {size!r}."
        )
    return (int(size[0]), int(size[1]))  # type: ignore[index]


def _check_channels(channels: object) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in (1, 3):
        raise ConfigError(f"The 'channels' parameter must be 1 or 3. Got {channels!r}.")
    return channels


def resize(x: torch.Tensor, size: tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """Resize a batch (N, C, H, W) to ``size`` and convert to ``channels`` (1 or 3).

    Resizing is bilinear with antialiasing, so shrinking does not alias.
    One channel becomes three by repetition; three become one by ITU-R 601
    luma (0.299 R + 0.587 G + 0.114 B). Values stay in [0, 1].
    """
    size = _check_size(size)
    channels = _check_channels(channels)
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
    root: str | Path,
    *,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    min_classes: int = 2,
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
    min_classes : int, default 2
        Fewest class sub-folders with images accepted (2 to train a
        classifier; 1 is enough to attack one).

    Returns
    -------
    x : torch.Tensor, shape (N, C, H, W), float32 in [0, 1]
    y : torch.Tensor, shape (N,), int64
    class_names : tuple of str

    Raises
    ------
    InputError
        Fewer than ``min_classes`` class sub-folders with images, an unreadable image, or
        images of different sizes when ``size`` is not given.
    """
    size = _check_size(size)
    channels = _check_channels(channels)
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
    if len(names) < max(1, min_classes):
        need = "a classifier needs at least 2" if min_classes >= 2 else "at least 1 is needed"
        raise InputError(
            f"{base} has {len(names)} class sub-folder(s) with images ({', '.join(names) or 'none'}"
            f"); {need}. Put each class's images in its own sub-folder "
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
        channels = 1 if all(file_mode(im) == "L" for im in images) else 3
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
    mode: Literal["RGB", "L"] = "L" if channels == 1 else "RGB"
    arrays = []
    for (path, _), im in zip(files, images, strict=True):
        # The same conversion as load_image: 16-bit and float files are scaled, not clipped.
        conv = to_8bit(im, mode, source=str(path))
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
    size = _check_size(size)
    channels = _check_channels(channels)
    p = Path(path)
    require_regular_file(p, "data")
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



# ---------------------------------------------------------------------- data to attack
