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

from hoodwink.errors import ConfigError, InputError, MissingDependencyError, ShapeError
from hoodwink.reports import atomic_write_bytes

__all__ = [
    "MAX_PIXELS",
    "MODES",
    "check_writable",
    "decode_png",
    "encode_png",
    "file_mode",
    "load_image",
    "require_regular_file",
    "save_png",
    "to_8bit",
]

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


#: The modes :func:`load_image` and :func:`decode_png` convert to.
MODES: tuple[str, ...] = ("RGB", "L")
#: Pillow modes that hold one grey channel (with or without alpha).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _check_mode(mode: object, func: str, *, allow_none: bool = False) -> None:
    if (mode is None and allow_none) or (isinstance(mode, str) and mode in MODES):
        return
    choices = "'RGB' or 'L'" + (" or None (the file's own mode)" if allow_none else "")
    raise ConfigError(
        f"The 'mode' parameter of {func} must be {choices}: 'RGB' for 3 colour channels, "
        f"'L' for 1 grey channel. Got {mode!r}."
    )


def _check_max_pixels(max_pixels: object) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(
            f"The 'max_pixels' parameter of load_image must be an int >= 1 (width × height). "
            f"Got {max_pixels!r}."
        )
    return max_pixels


def require_regular_file(path: str | Path, what: str = "image") -> None:
    """Refuse what is not a regular file before opening it: a FIFO would block for ever.

    Raises
    ------
    InputError
        ``path`` is missing, a folder, a named pipe, a device or a socket.
    """
    import stat

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"No such {what} file: {p}. Check the path.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p} is a folder; give the path of one {what} file.")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise InputError(
            f"{p} is {kind}, not a regular file; reading it could block for ever. Save the "
            f"{what} to a file first."
        )


def load_image(
    path: str | Path,
    *,
    mode: Literal["RGB", "L"] | None = "RGB",
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Load an image file as a float tensor in [0, 1].

    Parameters
    ----------
    path : str or Path
        A regular file (named pipes and devices are refused before opening).
    mode : {"RGB", "L"} or None
        Colour (3 channels) or grayscale (1 channel); None keeps the file's own
        mode: 1 channel for a grey file (including a palette of greys), else 3.
    max_pixels : int
        Refuse larger images (width × height).

    Returns
    -------
    torch.Tensor, shape (1, C, H, W), float32
        Values ``k / 255`` for integers ``k``, exactly as an 8-bit file holds them.
        16-bit files are scaled to 8 bits; float files (mode "F") must hold
        values in [0, 1] (scaled by 255) or in [0, 255] (8-bit levels).

    Raises
    ------
    ConfigError
        ``mode`` or ``max_pixels`` is invalid.
    InputError
        A missing file, a folder, something that is not a regular file, not an
        image, too large, or a float image with values outside [0, 255].
    """
    _check_mode(mode, "load_image", allow_none=True)
    limit = _check_max_pixels(max_pixels)
    image_mod, ops = _pil()
    p = Path(path)
    require_regular_file(p)
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
    if w * h > limit:
        raise InputError(
            f"{p} is {w}×{h} = {w * h:,} pixels, over the limit of {limit:,} pixels "
            "(max_pixels) for attacking at full size. Downscale it first."
        )
    img = ops.exif_transpose(img)
    return _to_tensor(to_8bit(img, mode, source=str(p)))


def file_mode(img: Any) -> Literal["RGB", "L"]:
    """The mode that keeps a Pillow image's own channels: "L" for grey, else "RGB".

    A palette image whose colours are all grey counts as grey.
    """
    m = img.mode
    if m in _GREY_MODES:
        return "L"
    if m in ("P", "PA"):
        palette = img.getpalette() or []
        used = [c for c, _ in (img.getcolors(256) or [])]
        rgb = [palette[3 * i:3 * i + 3] for i in used if 3 * i + 3 <= len(palette)]
        if rgb and all(c[0] == c[1] == c[2] for c in rgb):
            return "L"
    return "RGB"


def to_8bit(img: Any, mode: Literal["RGB", "L"] | None, *, source: str = "the image") -> Any:
    """Convert a Pillow image to an 8-bit "RGB" or "L" image (None: its own mode).

    16-bit and 32-bit integer images are scaled to 8 bits; float images (mode
    "F") with values in [0, 1] are multiplied by 255, with values in [0, 255]
    rounded to the nearest level; transparency is composited on white.

    Raises
    ------
    InputError
        A float image with values outside [0, 255] or not finite; an integer
        image with values outside 0..65535; a mode Pillow cannot convert.
    """
    image_mod, _ = _pil()
    want = file_mode(img) if mode is None else mode
    im = img
    m = im.mode
    if m in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        im = image_mod.fromarray(_levels_8bit(np.asarray(im, dtype=np.float64), m, source),
                                 mode="L")
        m = "L"
    if m in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = image_mod.alpha_composite(background, rgba)
        _log.info("composited the image's transparency on white")
    try:
        return im.convert(want)
    except (ValueError, OSError) as exc:
        raise InputError(
            f"Cannot convert {source} from Pillow mode {img.mode!r} to {want!r} ({exc}). Save "
            "it as an 8-bit RGB or greyscale PNG first."
        ) from exc


def _levels_8bit(arr: np.ndarray, m: str, source: str) -> np.ndarray:
    """8-bit levels of a 16-bit, 32-bit integer or float image."""
    finite = bool(np.isfinite(arr).all())
    lo = float(arr.min()) if arr.size else 0.0
    hi = float(arr.max()) if arr.size else 0.0
    if m == "F":
        if not finite or lo < 0 or hi > 255:
            shown = "NaN or infinite values" if not finite else f"values in [{lo:g}, {hi:g}]"
            raise InputError(
                f"{source} is a float image with {shown}; hoodwink reads float images with "
                "values in [0, 1] (or 8-bit levels in [0, 255]). Rescale it to [0, 1] or "
                "save it as an 8-bit image."
            )
        # [0, 1] is the usual float convention; larger values can only be 8-bit levels.
        scale = 255.0 if hi <= 1.0 else 1.0
        _log.info("read a float image with values in [%g, %g] as %s", lo, hi,
                  "[0, 1]" if scale == 255.0 else "8-bit levels")
        return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
    if lo < 0 or hi > 65535:
        raise InputError(
            f"{source} is a 32-bit integer image with values in [{lo:g}, {hi:g}]; hoodwink "
            "reads integer images with values in 0..255 (8-bit) or 0..65535 (16-bit). "
            "Rescale it or save it as an 8-bit image."
        )
    top = 65535.0 if m.startswith("I;16") or hi > 255 else 255.0
    return np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)


def _to_tensor(im: Any) -> torch.Tensor:
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
    return t[None]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """8-bit pixels of a (1, 1|3, H, W) float tensor in [0, 1]; anything else is refused."""
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"The image must be a torch.Tensor of shape (1, C, H, W); got "
            f"{type(x).__name__}. Convert it with torch.from_numpy(...)."
        )
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
        raise ShapeError(
            f"The image must have shape (1, C, H, W) with C = 1 (grey) or 3 (RGB) and H, W "
            f">= 1; got {tuple(x.shape)}. Save one image at a time (x[i:i + 1])."
        )
    if not x.is_floating_point():
        raise InputError(
            f"The image has dtype {x.dtype}; give floats in [0, 1]. For 8-bit pixels in "
            "0..255, divide by 255: x.float() / 255."
        )
    xf = x.detach().cpu().to(torch.float64)
    bad = ~torch.isfinite(xf)
    if bool(bad.any()):
        n_nan = int(torch.isnan(xf).sum())
        raise InputError(
            f"The image holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values of "
            f"{xf.numel()}; it cannot be saved. Check the computation that made it."
        )
    lo, hi = float(xf.min()), float(xf.max())
    if lo < 0 or hi > 1:
        hint = (" It looks like 8-bit pixels: divide by 255." if hi > 1 and hi <= 255
                else " Clamp or rescale it to [0, 1].")
        raise InputError(
            f"The image has values in [{lo:.9g}, {hi:.9g}], outside [0, 1].{hint}"
        )
    arr = torch.round(xf[0] * 255).to(torch.uint8)
    out = arr.permute(1, 2, 0).numpy()
    return out[:, :, 0] if out.shape[2] == 1 else out


def encode_png(x: torch.Tensor) -> bytes:
    """Encode a (1, C, H, W) float tensor in [0, 1] as 8-bit PNG bytes (lossless).

    Raises
    ------
    InputError
        ``x`` is not a float tensor, holds NaN or infinite values, or values
        outside [0, 1] (8-bit pixels must be divided by 255 first).
    ShapeError
        ``x`` is not shaped (1, 1 or 3, H, W).
    """
    image_mod, _ = _pil()
    buf = io.BytesIO()
    image_mod.fromarray(_to_uint8(x)).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes, mode: Literal["RGB", "L"] = "RGB") -> torch.Tensor:
    """Decode PNG bytes back to a (1, C, H, W) tensor in [0, 1]."""
    _check_mode(mode, "decode_png")
    image_mod, _ = _pil()
    try:
        img = image_mod.open(io.BytesIO(data))
        img.load()
    except (image_mod.UnidentifiedImageError, OSError, SyntaxError, ValueError,
            TypeError) as exc:
        raise InputError(f"The bytes are not a PNG image Pillow can read ({exc}).") from exc
    return _to_tensor(to_8bit(img, mode))


def save_png(x: torch.Tensor, path: str | Path) -> None:
    """Write a (1, C, H, W) float tensor in [0, 1] as an 8-bit PNG, atomically.

    Raises
    ------
    InputError
        As :func:`encode_png`; nothing is written.
    ConfigError
        ``path`` cannot be written.
    """
    atomic_write_bytes(path, encode_png(x))


def check_writable(path: str | Path, *, create: bool = False) -> Path:
    """Fail early, before any work, when the file ``path`` cannot be written.

    Nothing is created: the folder that will hold the file (or, with
    ``create``, the nearest existing folder above it) is probed by creating
    and removing a temporary file, which also catches ``/proc``, read-only
    mounts and root-only folders where permission bits say nothing.

    Parameters
    ----------
    path : str or Path
    create : bool
        The caller will create missing folders (see :func:`make_parent`): then
        the nearest existing ancestor must be a writable folder.

    Raises
    ------
    InputError
        The folder does not exist (unless ``create``), refuses new files, lies
        under a regular file, or ``path`` is a folder or not a regular file.
    """
    from hoodwink.reports import output_problem

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not create and not parent.exists():
        raise InputError(f"Cannot write {p}: folder {parent} does not exist. Create it first.")
    problem = output_problem(p, kind="file")
    if problem is not None:
        raise InputError(problem)
    return p


def make_parent(path: str | Path) -> None:
    """Create the folders above ``path`` (no error when they exist)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"Cannot create the folder for {path}: {exc.strerror or exc}. Choose another output "
            "location."
        ) from exc
