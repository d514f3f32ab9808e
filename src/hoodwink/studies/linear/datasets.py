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
:class:`~hoodwink.errors.InputError` with a message naming the fix. The
readers themselves live in :mod:`hoodwink.data.files` and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from hoodwink._validation import check_int, check_real
from hoodwink.data.files import IMAGE_SUFFIXES, load_image_folder, load_npz, resize
from hoodwink.errors import ConfigError, InputError

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

    Raises
    ------
    hoodwink.errors.ConfigError
        ``classes`` < 2, ``per_class`` or ``val_per_class`` < 1, ``size`` < 2 or more than
        2**28 pixels in all
        (one pixel has no shape: its prototype would be 0/0), a negative or
        non-finite ``signal``/``noise``, ``smoothness`` <= 0, or a seed outside
        [0, 2**64 - 1].
    """
    owner = "synthetic_images"
    classes = check_int(owner, "classes", classes, low=2, high=10_000)
    per_class = check_int(owner, "per_class", per_class, low=1, high=1_000_000)
    val_per_class = check_int(owner, "val_per_class", val_per_class, low=1, high=1_000_000)
    size = check_int(owner, "size", size, low=2, high=4096)
    signal = check_real(owner, "signal", signal, low=0.0, high=1e6)
    noise = check_real(owner, "noise", noise, low=0.0, high=1e6)
    smoothness = check_real(owner, "smoothness", smoothness, low=0.0, high=1000.0,
                            closed="right")
    pixels = classes * (per_class + val_per_class) * size * size
    if pixels > 2**28:
        raise ConfigError(
            f"synthetic_images would make {pixels:,} pixels (classes x (per_class + "
            f"val_per_class) x size x size), over the limit of {2**28:,}; ask for fewer or "
            "smaller images."
        )
    seed = check_int(owner, "seed", seed, low=0, high=2**64 - 1)
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
