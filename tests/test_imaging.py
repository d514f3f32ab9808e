"""Image files: every odd format is handled correctly or refused clearly."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoodwink.errors import InputError
from hoodwink.imaging import check_writable, decode_png, encode_png, load_image, save_png


def _rgb(h: int = 5, w: int = 7) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_exact(tmp_path: Path) -> None:
    """An RGB PNG loads as k/255 exactly, shape (1, 3, H, W)."""
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 5, 7)
    assert torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(arr).float() / 255)


def test_png_roundtrip_is_lossless() -> None:
    """encode_png then decode_png returns the identical tensor."""
    x = torch.from_numpy(_rgb()).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(decode_png(encode_png(x)), x)


def test_grayscale_to_rgb_and_back(tmp_path: Path) -> None:
    """A grayscale file becomes 3 equal channels in RGB mode, 1 channel in L mode."""
    g = _rgb()[:, :, 0]
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert x.shape == (1, 3, 5, 7) and torch.equal(x[:, 0], x[:, 1])
    assert load_image(tmp_path / "g.png", mode="L").shape == (1, 1, 5, 7)


def test_alpha_composited_on_white(tmp_path: Path) -> None:
    """Fully transparent pixels become white, opaque ones keep their colour."""
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[0, 0] = (10, 20, 30, 255)
    Image.fromarray(arr, mode="RGBA").save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x[0, :, 0, 0].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    assert x[0, :, 1, 1].tolist() == [1.0, 1.0, 1.0]


def test_palette_image(tmp_path: Path) -> None:
    """A palette image is converted to its RGB colours."""
    img = Image.fromarray(_rgb()).convert("P")
    img.save(tmp_path / "p.png")
    x = load_image(tmp_path / "p.png")
    ref = np.asarray(img.convert("RGB"))
    assert torch.equal(x[0].permute(1, 2, 0), torch.from_numpy(ref.copy()).float() / 255)


def test_16_bit_image(tmp_path: Path) -> None:
    """A 16-bit grayscale image is scaled to 8 bits, not clipped."""
    arr = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "h.png")
    x = load_image(tmp_path / "h.png", mode="L")
    assert (x[0, 0] * 255).round().tolist() == [[0, 255], [128, 1]]


def test_exif_rotation_applied(tmp_path: Path) -> None:
    """An EXIF orientation tag (90° rotation) is applied: width and height swap."""
    img = Image.fromarray(_rgb(4, 9))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif)
    x = load_image(tmp_path / "r.jpg")
    assert x.shape[-2:] == (9, 4)


def test_missing_file() -> None:
    """A missing file names the path."""
    with pytest.raises(InputError, match="No such image file"):
        load_image("/nonexistent/cat.png")


def test_not_an_image(tmp_path: Path) -> None:
    """A text file is refused as not an image."""
    p = tmp_path / "notes.png"
    p.write_text("hello")
    with pytest.raises(InputError, match="not an image"):
        load_image(p)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    """A folder is refused with a hint."""
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_very_large_image_refused(tmp_path: Path) -> None:
    """Images above max_pixels are refused with advice to downscale."""
    Image.fromarray(_rgb(50, 50)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="Downscale"):
        load_image(tmp_path / "big.png", max_pixels=100)


def test_unwritable_output(tmp_path: Path) -> None:
    """Writing into a missing folder fails before any work, clearly."""
    with pytest.raises(InputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "x.png")
    with pytest.raises(InputError, match="is a folder"):
        check_writable(tmp_path)


def test_save_png_atomic(tmp_path: Path) -> None:
    """save_png writes the file and leaves no temporary files behind."""
    x = torch.zeros(1, 3, 2, 3)
    save_png(x, tmp_path / "z.png")
    assert [p.name for p in tmp_path.iterdir()] == ["z.png"]
