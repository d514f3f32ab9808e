"""ImageNet helpers: differentiable evaluation preprocessing and class names.

:class:`ImagenetPreprocess` turns raw RGB images in [0, 1] of any size into
the input the EfficientNet-Lite weights expect (resize, centre crop,
normalise), entirely in torch, so an attack can work on the full-size photo
and gradients reach its pixels. :func:`class_names`,
:func:`class_synonyms` and :func:`resolve_class` map between the 1000
ImageNet-1k class indices and their names (with every WordNet synonym).

Examples
--------
>>> resolve_class("goldfish")
1
>>> class_names()[388]
'giant panda'
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from hoodwink._validation import parse_index
from hoodwink.errors import ConfigError, ShapeError

__all__ = ["ImagenetPreprocess", "class_names", "class_synonyms", "resolve_class"]

NUM_CLASSES = 1000
# The "inception" normalisation the TensorFlow Lite EfficientNet weights use.
INCEPTION_MEAN = 127.0 / 255.0
INCEPTION_STD = 128.0 / 255.0
# TensorFlow's EfficientNet evaluation crops res/(res + 32) of the image.
_CROP_PADDING = 32


def _per_channel(value: float | Sequence[float], name: str) -> torch.Tensor:
    values = [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != 3:
        raise ConfigError(
            f"The {name!r} parameter of ImagenetPreprocess must be a float or 3 floats "
            f"(one per RGB channel). Got {len(values)} values."
        )
    return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1)


class ImagenetPreprocess(nn.Module):
    """Differentiable ImageNet evaluation preprocessing.

    Resizes so the shorter side is ``round(resolution / crop_fraction)``
    (bicubic, antialiased), centre-crops ``resolution x resolution`` and
    normalises ``(x - mean) / std``. An input that is already
    ``resolution x resolution`` is only normalised, so attacking at the native
    size perturbs exactly the pixels the network sees.

    Parameters
    ----------
    resolution : int
        Side of the square network input, e.g. 224 for Lite0, 240 for Lite1,
        260 for Lite2. Must be positive.
    crop_fraction : float or None, default None
        Fraction of the resized shorter side kept by the centre crop, in
        (0, 1]. ``None`` uses TensorFlow's ``resolution / (resolution + 32)``.
    mean, std : float or sequence of 3 floats, default 127/255 and 128/255
        Normalisation in [0, 1] units. The defaults are the "inception"
        normalisation of the EfficientNet-Lite weights (roughly ``2x - 1``).

    Notes
    -----
    Input: RGB in [0, 1], float tensor of shape ``(N, 3, H, W)``, any ``H, W``.
    Output: shape ``(N, 3, resolution, resolution)``. Values are not clamped
    after the bicubic resize (it may overshoot slightly), matching the usual
    evaluation pipelines. The module has no parameters and no state-dict
    entries.

    Examples
    --------
    >>> import torch
    >>> pre = ImagenetPreprocess(224)
    >>> pre(torch.rand(2, 3, 300, 451)).shape
    torch.Size([2, 3, 224, 224])
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        resolution: int,
        crop_fraction: float | None = None,
        mean: float | Sequence[float] = INCEPTION_MEAN,
        std: float | Sequence[float] = INCEPTION_STD,
    ) -> None:
        super().__init__()
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise ConfigError(
                "The 'resolution' parameter of ImagenetPreprocess must be a positive int. "
                f"Got {resolution!r}."
            )
        if crop_fraction is None:
            crop_fraction = resolution / (resolution + _CROP_PADDING)
        if not 0.0 < crop_fraction <= 1.0:
            raise ConfigError(
                "The 'crop_fraction' parameter of ImagenetPreprocess must be a float in (0, 1]. "
                f"Got {crop_fraction!r}."
            )
        self.resolution = resolution
        self.crop_fraction = float(crop_fraction)
        self.resize_to = max(resolution, round(resolution / crop_fraction))
        std_t = _per_channel(std, "std")
        if not bool((std_t > 0).all()):
            raise ConfigError(
                "The 'std' parameter of ImagenetPreprocess must be positive. "
                f"Got {std_t.flatten().tolist()}."
            )
        # Non-persistent: wrapping this module must not change a model's state dict.
        self.register_buffer("mean", _per_channel(mean, "mean"), persistent=False)
        self.register_buffer("std", std_t, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, crop_fraction={self.crop_fraction:.4f}, "
            f"resize_to={self.resize_to}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resize, crop and normalise.

        Parameters
        ----------
        x : torch.Tensor
            RGB in [0, 1], shape ``(N, 3, H, W)``, floating point.

        Returns
        -------
        torch.Tensor
            Shape ``(N, 3, resolution, resolution)``, same dtype and device.

        Raises
        ------
        ShapeError
            If ``x`` is not a floating-point ``(N, 3, H, W)`` tensor.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ShapeError(
                f"ImagenetPreprocess expects RGB images of shape (N, 3, H, W). "
                f"Got shape {tuple(x.shape)}. For a single image use x.unsqueeze(0); for "
                "channels-last data use x.permute(0, 3, 1, 2)."
            )
        if not x.is_floating_point():
            raise ShapeError(
                f"ImagenetPreprocess expects floating-point RGB in [0, 1]. Got dtype {x.dtype}. "
                "Convert uint8 images with x.float() / 255."
            )
        res = self.resolution
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if (height, width) != (res, res):
            short = min(height, width)
            if short != self.resize_to:
                scale = self.resize_to / short
                size = (
                    max(self.resize_to, round(height * scale)),
                    max(self.resize_to, round(width * scale)),
                )
                x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
                height, width = size
            top = round((height - res) / 2)
            left = round((width - res) / 2)
            x = x[..., top : top + res, left : left + res]
        mean = self.mean.to(dtype=x.dtype, device=x.device)
        std = self.std.to(dtype=x.dtype, device=x.device)
        return (x - mean) / std


@functools.lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order.

    Returns
    -------
    tuple of str
        ``class_names()[i]`` is the name of class ``i`` (0 ``"tench"``,
        1 ``"goldfish"``, ..., 999 ``"toilet tissue"``). Some names occur twice
        (``"crane"`` the bird and the machine, ``"maillot"``).
    """
    text = (
        resources.files(__package__ or "hoodwink.zoo")
        .joinpath("data")
        .joinpath("imagenet_classes.txt")
        .read_text(encoding="utf-8")
    )
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != NUM_CLASSES:  # pragma: no cover - packaging error
        raise RuntimeError(f"imagenet_classes.txt has {len(names)} names, expected 1000.")
    return names


@functools.lru_cache(maxsize=1)
def class_synonyms() -> tuple[tuple[str, ...], ...]:
    """Every WordNet lemma of each of the 1000 ImageNet-1k classes, in index order.

    Returns
    -------
    tuple of tuple of str
        ``class_synonyms()[i]`` lists the lemmas of class ``i``'s WordNet synset
        (``class_synonyms()[437]`` is ``('beacon', 'lighthouse', 'beacon light',
        'pharos')``); :func:`resolve_class` accepts each of them.
    """
    text = (
        resources.files(__package__ or "hoodwink.zoo")
        .joinpath("data")
        .joinpath("imagenet_synonyms.tsv")
        .read_text(encoding="utf-8")
    )
    rows = [line.split("\t", 1) for line in text.splitlines() if line.strip()]
    lemmas = tuple(
        tuple(lemma.strip() for lemma in row[-1].split(",") if lemma.strip()) for row in rows
    )
    if len(lemmas) != NUM_CLASSES:  # pragma: no cover - packaging error
        raise RuntimeError(f"imagenet_synonyms.tsv has {len(lemmas)} rows, expected 1000.")
    return lemmas


def _normalise(name: str) -> str:
    return " ".join(re.sub(r"[\s_\-]+", " ", name).lower().split())


def _describe(indices: Sequence[int]) -> str:
    names = class_names()
    return ", ".join(f"{i} {names[i]!r}" for i in indices)


def _match(text: str, labels: Sequence[Sequence[str]]) -> list[int]:
    """Classes with a label equal to ``text``: exact spelling, then any case, then with
    spaces, underscores and hyphens interchangeable (the first rule that matches)."""
    lowered, key = text.lower(), _normalise(text)
    rules = (lambda n: n == text, lambda n: n.lower() == lowered, lambda n: _normalise(n) == key)
    for same in rules:
        found = [i for i, ls in enumerate(labels) if any(same(n) for n in ls)]
        if found:
            return found
    return []


def resolve_class(name_or_index: str | int) -> int:
    """Turn an ImageNet class index or name into its index.

    Parameters
    ----------
    name_or_index : int or str
        An index in 0..999 (an int or a string of ASCII digits such as
        ``"368"``), or a name: the class's own name (:func:`class_names`) or
        any WordNet lemma of its synset (:func:`class_synonyms`: "lighthouse"
        for ``beacon``, "taxi" for ``cab``). Case-insensitive (``"Giant
        Panda"``); spaces, underscores and hyphens are interchangeable
        (``"giant_panda"``, ``"hot-dog"``).

    Returns
    -------
    int
        The class index in 0..999.

    Raises
    ------
    ConfigError
        If the index is out of range, the name is unknown (the message
        suggests close names), or the name belongs to more than one class
        (the message lists them; pass the index instead).

    Notes
    -----
    Class names are tried before synonyms, and within each the most specific
    rule wins (exact spelling, then any case, then spaces, underscores and
    hyphens interchangeable). So "crane" is the machine (517, whose name it
    is) rather than the bird (134, "crane bird", whose synonym it is), and
    "Cardigan" (264, the corgi) differs from "cardigan" (474, the sweater). A
    synonym shared by several classes ("panda") is refused with the
    candidates listed.

    Examples
    --------
    >>> resolve_class("Giant Panda"), resolve_class("368"), resolve_class(1)
    (388, 368, 1)
    >>> resolve_class("lighthouse"), resolve_class("hot dog"), resolve_class("taxi")
    (437, 934, 468)
    """
    if isinstance(name_or_index, bool) or not isinstance(name_or_index, (int, str)):
        raise ConfigError(
            "An ImageNet class must be an int index in 0..999 or a class name. "
            f"Got {name_or_index!r} of type {type(name_or_index).__name__}."
        )
    index = name_or_index if isinstance(name_or_index, int) else parse_index(name_or_index)
    if index is not None:
        if not 0 <= index < NUM_CLASSES:
            shown = repr(name_or_index)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ConfigError(
                f"An ImageNet class index must be in 0..{NUM_CLASSES - 1}. Got {shown}."
            )
        return index

    text = str(name_or_index).strip()
    names = class_names()
    matches = _match(text, [(n,) for n in names]) or _match(text, class_synonyms())
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(
            f"The ImageNet class name {name_or_index!r} is ambiguous: it names classes "
            f"{_describe(matches)}. Pass the index instead."
        )

    key = _normalise(text)
    labels = [(i, _normalise(n)) for i, n in enumerate(names)]
    labels += [(i, _normalise(n)) for i, ls in enumerate(class_synonyms()) for n in ls]
    suggestions: list[tuple[int, str]] = []
    if key:
        # Names containing the text as a word ("panda" -> "giant panda").
        pattern = re.compile(rf"\b{re.escape(key)}\b")
        suggestions.extend((i, n) for i, n in labels if pattern.search(n))
    for close in difflib.get_close_matches(key, [n for _, n in labels], n=5, cutoff=0.6):
        suggestions.extend((i, n) for i, n in labels if n == close)
    first: dict[int, str] = {}
    for i, n in suggestions:  # one entry per class, with the label that matched first
        first.setdefault(i, n)
    shown_hints = [
        f"{i} {names[i]!r}" + ("" if n == _normalise(names[i]) else f" ({n})")
        for i, n in list(first.items())[:8]
    ]
    hint = f" Did you mean {', '.join(shown_hints)}?" if shown_hints else ""
    shown = repr(name_or_index)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ConfigError(
        f"Unknown ImageNet class name {shown}.{hint} Names are listed by "
        "hoodwink.zoo.imagenet.class_names(), synonyms by class_synonyms()."
    )
