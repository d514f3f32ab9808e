"""Reading and writing images safely for the demos and the CLI.

Images become float tensors in [0, 1] on the 8-bit grid, shape (1, C, H, W).
Every odd file a user may have is either handled correctly or refused with a
clear :class:`~hoodwink.errors.InputError`: EXIF rotation is applied; palette,
grayscale, CMYK and 16-bit images are converted; transparency is composited on
white; very large images and non-images are refused. Writes are atomic.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hoodwink.errors import ConfigError, InputError, MissingDependencyError
from hoodwink.reports import atomic_write_bytes

__all__ = ["MAX_PIXELS", "check_writable", "decode_png", "encode_png", "load_image", "save_png"]

_log = logging.getLogger(__name__)

#: Largest image accepted (width × height): attacking is done at full size.
MAX_PIXELS = 40_000_000


def _pil() -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "Reading images needs Pillow: pip install 'hoodwink[images]'."
        ) from exc
    return Image, ImageOps


def load_image(
    path: str | Path, *, mode: Literal["RGB", "L"] = "RGB", max_pixels: int = MAX_PIXELS
) -> torch.Tensor:
    """Load an image file as a float tensor in [0, 1].

    Parameters
    ----------
    path : str or Path
    mode : {"RGB", "L"}
        Colour (3 channels) or grayscale (1 channel).
    max_pixels : int
        Refuse larger images (width × height).

    Returns
    -------
    torch.Tensor, shape (1, C, H, W), float32
        Values ``k / 255`` for integers ``k``, exactly as an 8-bit file holds them.
    """
    image_mod, ops = _pil()
    p = Path(path)
    if not p.exists():
        raise InputError(f"No such image file: {p}. Check the path.")
    if p.is_dir():
        raise InputError(f"{p} is a folder; give the path of one image file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_mod.DecompressionBombWarning)
            img = image_mod.open(p)
            img.load()
    except (image_mod.DecompressionBombError, image_mod.DecompressionBombWarning) as exc:
        raise InputError(
            f"{p} is too large to attack at full size ({exc}). Downscale it first."
        ) from exc
    except (image_mod.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{p} is not an image Pillow can read ({type(exc).__name__}). Give a PNG, JPEG, "
            "BMP, GIF, TIFF or WebP file."
        ) from exc
    w, h = img.size
    if w * h > max_pixels:
        raise InputError(
            f"{p} is {w}×{h} = {w * h / 1e6:.1f} MP, over the {max_pixels / 1e6:.0f} MP limit "
            "for attacking at full size. Downscale it first."
        )
    img = ops.exif_transpose(img)
    return _to_tensor(img, mode)


def _to_tensor(img: object, mode: str) -> torch.Tensor:
    image_mod, _ = _pil()
    im = img
    m = im.mode  # type: ignore[attr-defined]
    if m in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if m.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        im = image_mod.fromarray(arr8, mode="L")
        m = "L"
    if m in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in im.info:  # type: ignore[attr-defined]
        rgba = im.convert("RGBA")  # type: ignore[attr-defined]
        background = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = image_mod.alpha_composite(background, rgba)
        _log.info("composited the image's transparency on white")
    im = im.convert(mode)  # type: ignore[attr-defined]
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
    return t[None]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ConfigError(f"expected an image tensor of shape (1, 1|3, H, W); got {tuple(x.shape)}")
    arr = torch.round(x[0].detach().cpu().clamp(0, 1) * 255).to(torch.uint8)
    out = arr.permute(1, 2, 0).numpy()
    return out[:, :, 0] if out.shape[2] == 1 else out


def encode_png(x: torch.Tensor) -> bytes:
    """Encode a (1, C, H, W) tensor in [0, 1] as 8-bit PNG bytes (lossless)."""
    image_mod, _ = _pil()
    buf = io.BytesIO()
    image_mod.fromarray(_to_uint8(x)).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes, mode: Literal["RGB", "L"] = "RGB") -> torch.Tensor:
    """Decode PNG bytes back to a (1, C, H, W) tensor in [0, 1]."""
    image_mod, _ = _pil()
    img = image_mod.open(io.BytesIO(data))
    img.load()
    return _to_tensor(img, mode)


def save_png(x: torch.Tensor, path: str | Path) -> None:
    """Write a (1, C, H, W) tensor in [0, 1] as an 8-bit PNG, atomically."""
    atomic_write_bytes(path, encode_png(x))


def check_writable(path: str | Path, *, create: bool = False) -> Path:
    """Fail early, before any work, when ``path`` cannot be written.

    Parameters
    ----------
    path : str or Path
    create : bool
        The caller will create missing folders (see :func:`make_parent`): then
        the nearest existing ancestor must be a writable folder.

    Raises
    ------
    InputError
        The folder does not exist (unless ``create``), is not writable, or
        ``path`` is a folder.
    """
    import os

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder; give a file name such as {p / 'out.png'}.")
    parent = p.parent if str(p.parent) else Path(".")
    if create:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise InputError(f"Cannot write {p}: {parent} is a file, not a folder.")
    if not parent.is_dir():
        raise InputError(f"Cannot write {p}: folder {parent} does not exist. Create it first.")
    if not os.access(parent, os.W_OK):
        raise InputError(f"Cannot write {p}: folder {parent} is not writable.")
    return p


def make_parent(path: str | Path) -> None:
    """Create the folders above ``path`` (no error when they exist)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the folder for {path}: {exc.strerror}.") from exc
