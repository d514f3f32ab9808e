"""Small MNIST classifiers, with pretrained weights bundled in the package.

The weights in ``hoodwink/zoo/weights/`` were produced by ``scripts/train_mnist.py``
on the 4,000-image ``"train"`` split of :func:`hoodwink.data.load_mnist`; their
accuracy on the 1,000 held-out ``"test"`` images is recorded in
``weights/mnist_metrics.json`` and returned by :func:`mnist_accuracy`.

Two more MnistCNN weights, from ``scripts/train_robust_mnist.py``, exist to tell
strong attacks from weak ones: ``mnist_cnn_adv`` (adversarially trained at L∞ eps
0.3, genuinely more robust) and ``mnist_cnn_distilled`` (defensive distillation at
T = 100: deliberately gradient-masked, so that cross-entropy PGD fails on it while
a margin loss succeeds). Their figures are in ``weights/robust_mnist_metrics.json``,
returned by :func:`robust_mnist_metrics`.

The networks take raw pixels in [0, 1] (``load_mnist`` output) and apply no
normalisation of their own: they were trained on that scale, so wrap them as
``TorchClassifier(net, bounds=(0, 1))`` with no ``preprocessing``.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import sys
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import torch
from torch import nn

from hoodwink._validation import check_int
from hoodwink.errors import InternalError, MissingDependencyError

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "DeepMnistCNN",
    "MnistCNN",
    "MnistLinear",
    "load_mnist_cnn",
    "load_mnist_cnn_adv",
    "load_mnist_cnn_distilled",
    "load_mnist_linear",
    "mnist_accuracy",
    "robust_mnist_metrics",
]

MnistModelName = Literal["mnist_cnn", "mnist_linear", "mnist_cnn_adv", "mnist_cnn_distilled"]

_METRICS_FILE = "mnist_metrics.json"
_ROBUST_METRICS_FILE = "robust_mnist_metrics.json"

_Net = TypeVar("_Net", bound=nn.Module)


class _MnistNet(nn.Module):
    """What the MNIST networks share: a checked class count, and logits from
    ``classifier(features(x))`` (subclasses build those two stages)."""

    features: nn.Module
    classifier: nn.Module

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes: int = check_int(type(self).__name__, "num_classes", num_classes, low=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute logits.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 1, 28, 28)
            Raw pixels in [0, 1].

        Returns
        -------
        torch.Tensor of shape (N, num_classes)
            Unnormalised logits.
        """
        out: torch.Tensor = self.classifier(self.features(x))
        return out


class MnistCNN(_MnistNet):
    """A small convolutional network for 28x28 grey-scale digits.

    conv 3x3 (32) → ReLU → max-pool 2 → conv 3x3 (64) → ReLU → max-pool 2 →
    linear (1600 → 128) → ReLU → linear (128 → ``num_classes``), with unpadded
    ("valid") convolutions: 28 → 26 → 13 → 11 → 5 pixels. About 225k parameters;
    the bundled weights (:func:`load_mnist_cnn`) have 10 classes.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits (11 for a model with a background class).

    Notes
    -----
    Input is a float tensor of shape (N, 1, 28, 28) with raw pixels in [0, 1];
    the output is logits of shape (N, ``num_classes``). There is no internal
    normalisation.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 128),
            nn.ReLU(),
            nn.Linear(128, self.num_classes),
        )


class MnistLinear(_MnistNet):
    """A softmax linear classifier (multinomial logistic regression) on 784 pixels.

    Flatten → linear (784 → ``num_classes``). Its logits are affine in the input,
    so minimal adversarial distances have a closed form; the linear-classifier
    studies and the attack efficacy tests rely on that.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.

    Notes
    -----
    Input is a float tensor of shape (N, 1, 28, 28) (any shape with 784
    features per sample) with raw pixels in [0, 1]; output is logits of shape
    (N, ``num_classes``).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes)
        # Its own layer names (not features/classifier): the bundled weights use them.
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(28 * 28, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``x.flatten(1) @ W.T + b``, (N, num_classes), of raw pixels x (N, 1, 28, 28)."""
        out: torch.Tensor = self.linear(self.flatten(x))
        return out


class DeepMnistCNN(_MnistNet):
    """A deeper, untrained convolutional network for 28x28 inputs, for benchmarks.

    ``depth`` 3x3 convolutions of ``width`` channels with ReLU, a 2x2 max-pool
    after the first and second thirds, global average pooling, then a linear
    layer. No weights are bundled: random initialisation is enough to time
    attacks on a heavier model than :class:`MnistCNN`.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.
    depth : int, default 8
        Number of convolutional layers, >= 3.
    width : int, default 64
        Channels of every convolutional layer, >= 1.

    Notes
    -----
    Input (N, 1, 28, 28) in [0, 1]; output logits (N, ``num_classes``).
    """

    def __init__(self, num_classes: int = 10, depth: int = 8, width: int = 64) -> None:
        super().__init__(num_classes)
        depth = check_int("DeepMnistCNN", "depth", depth, low=3)
        width = check_int("DeepMnistCNN", "width", width, low=1)
        pool_after = {depth // 3 - 1, 2 * depth // 3 - 1}
        layers: list[nn.Module] = []
        in_channels = 1
        for i in range(depth):
            layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU()]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, self.num_classes)
        )


def _weights_dir() -> Traversable:
    return importlib.resources.files("hoodwink.zoo").joinpath("weights")


def _load_state(name: MnistModelName) -> dict[str, torch.Tensor]:
    try:
        st = importlib.import_module("safetensors.torch")
    except ImportError as exc:
        raise MissingDependencyError(
            f"Loading the bundled '{name}' weights needs the 'safetensors' package. "
            "Install it with: pip install 'hoodwink[mnist]'"
        ) from exc
    resource = _weights_dir().joinpath(f"{name}.safetensors")
    if not resource.is_file():
        raise InternalError(
            f"The bundled weight file '{name}.safetensors' is missing from hoodwink/zoo/weights; "
            "the installation is incomplete (run scripts/train_mnist.py in a source checkout)."
        )
    state: dict[str, torch.Tensor] = st.load(resource.read_bytes())
    return state


def _pretrained(net: _Net, name: MnistModelName) -> _Net:
    """``net`` with the bundled weights ``name`` loaded, in eval mode."""
    net.load_state_dict(_load_state(name), strict=True)
    return net.eval()


def load_mnist_cnn() -> MnistCNN:
    """Build :class:`MnistCNN` with the bundled pretrained weights.

    Trained by ``scripts/train_mnist.py`` on ``load_mnist("train")`` (raw pixels
    in [0, 1], no normalisation); held-out accuracy on ``load_mnist("test")`` is
    ``mnist_accuracy()["mnist_cnn"]`` (at least 0.97).

    Returns
    -------
    MnistCNN
        The network with 10 classes, in eval mode, on the CPU.

    Raises
    ------
    MissingDependencyError
        If ``safetensors`` is not installed (``pip install 'hoodwink[mnist]'``).

    Examples
    --------
    >>> from hoodwink.zoo.mnist import load_mnist_cnn
    >>> net = load_mnist_cnn()
    >>> net.training
    False
    """
    return _pretrained(MnistCNN(num_classes=10), "mnist_cnn")


def load_mnist_linear() -> MnistLinear:
    """Build :class:`MnistLinear` with the bundled pretrained weights.

    Trained by ``scripts/train_mnist.py`` on ``load_mnist("train")`` (raw pixels
    in [0, 1], no normalisation); held-out accuracy on ``load_mnist("test")`` is
    ``mnist_accuracy()["mnist_linear"]`` (about 0.9).

    Returns
    -------
    MnistLinear
        The classifier with 10 classes, in eval mode, on the CPU.

    Raises
    ------
    MissingDependencyError
        If ``safetensors`` is not installed (``pip install 'hoodwink[mnist]'``).
    """
    return _pretrained(MnistLinear(num_classes=10), "mnist_linear")


def load_mnist_cnn_adv() -> MnistCNN:
    """Build :class:`MnistCNN` adversarially trained at L∞ eps 0.3 (Madry et al., 2018).

    Trained by ``scripts/train_robust_mnist.py`` with
    :func:`hoodwink.training.adversarial_train` (PGD with a random start, an eps
    warm-up, Adam) on ``load_mnist("train")``; raw pixels in [0, 1], no
    normalisation. Its clean and PGD-robust accuracy on ``load_mnist("test")``
    are in ``robust_mnist_metrics()["models"]["mnist_cnn_adv"]``. Cross-entropy
    and margin-loss PGD agree on it: its robustness is real, not masked.

    Returns
    -------
    MnistCNN
        The network with 10 classes, in eval mode, on the CPU.

    Raises
    ------
    MissingDependencyError
        If ``safetensors`` is not installed (``pip install 'hoodwink[mnist]'``).
    """
    return _pretrained(MnistCNN(num_classes=10), "mnist_cnn_adv")


def load_mnist_cnn_distilled() -> MnistCNN:
    """Build :class:`MnistCNN` with defensive distillation at T = 100 (Papernot et al., 2016).

    Deliberately gradient-masked, for testing evaluations. A teacher trained on
    softmax(logits / 100) labelled the training digits; this student learnt
    those soft labels at the same temperature and is deployed at T = 1, so its
    logits are about a hundred times larger than a plain network's. The softmax
    saturates, and the cross-entropy gradient with respect to the input is
    exactly zero in float32 on most correctly classified digits: PGD with
    ``loss="ce"`` makes no progress and reports a high, false robust accuracy,
    while ``loss="margin"`` (Carlini and Wagner, 2017) fools it about as easily
    as the plain ``mnist-cnn``. The figures are in
    ``robust_mnist_metrics()["models"]["mnist_cnn_distilled"]``.

    Returns
    -------
    MnistCNN
        The network with 10 classes, in eval mode, on the CPU.

    Raises
    ------
    MissingDependencyError
        If ``safetensors`` is not installed (``pip install 'hoodwink[mnist]'``).
    """
    return _pretrained(MnistCNN(num_classes=10), "mnist_cnn_distilled")


def robust_mnist_metrics() -> dict[str, Any]:
    """The record of the robust MNIST models, as written by ``scripts/train_robust_mnist.py``.

    Returns
    -------
    dict
        ``record["models"]["mnist_cnn_adv"]`` holds ``test_accuracy`` (on the
        1,000 ``load_mnist("test")`` digits), ``pgd_robust_accuracy`` (PGD-40,
        cross-entropy, by eps: "0.1", "0.2", "0.3"), ``pgd_margin_robust_accuracy``,
        the training config and history, and ``first_100``: the same figures on
        the first 100 test digits. ``record["models"]["mnist_cnn_distilled"]``
        holds ``test_accuracy``, ``ce_zero_gradient_fraction`` (among correctly
        classified digits, those whose cross-entropy input gradient is exactly
        zero), ``pgd_robust_accuracy`` and ``pgd_margin_robust_accuracy`` (eps
        "0.1", "0.2"), the plain ``mnist-cnn``'s figures for comparison, and
        ``first_100``.

    Raises
    ------
    InternalError
        The file is missing (an incomplete installation).
    """
    resource = _weights_dir().joinpath(_ROBUST_METRICS_FILE)
    if not resource.is_file():
        raise InternalError(
            f"The file '{_ROBUST_METRICS_FILE}' is missing from hoodwink/zoo/weights; "
            "the installation is incomplete (run scripts/train_robust_mnist.py in a source "
            "checkout)."
        )
    record: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return record


def mnist_accuracy() -> dict[str, float]:
    """Held-out accuracy of the bundled MNIST models, as recorded at training time.

    Returns
    -------
    dict of str to float
        ``{"mnist_cnn": ..., "mnist_linear": ...}``: the fraction of the 1,000
        ``load_mnist("test")`` images each bundled model classifies correctly.
        Read from ``weights/mnist_metrics.json``, which ``scripts/train_mnist.py``
        writes together with the weights.
    """
    resource = _weights_dir().joinpath(_METRICS_FILE)
    if not resource.is_file():
        raise InternalError(
            f"The file '{_METRICS_FILE}' is missing from hoodwink/zoo/weights; "
            "the installation is incomplete."
        )
    record = json.loads(resource.read_text(encoding="utf-8"))
    return {name: float(entry["test_accuracy"]) for name, entry in record["models"].items()}
