"""The differentiable transformations used by robust fooling (EOT), against Pillow's real ones."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter

from hoodwink.errors import ConfigError, ShapeError
from hoodwink.transforms import (
    FAMILIES,
    TRAIN_RANGES,
    Blur,
    Brightness,
    Contrast,
    Crop,
    DiffJPEG,
    Rescale,
    Rotate,
    TransformRanges,
    crop_pixels,
    jpeg_quant_tables,
    sample_transform,
)

CAT = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.jpg"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A natural photo, cut to 160×120 (not a multiple of 16, not square) to keep tests fast."""
    with Image.open(CAT) as im:
        return im.convert("RGB").crop((150, 60, 310, 180))


def to_t(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 255
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None]


def levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Absolute differences in 8-bit levels."""
    return (a - b).abs() * 255


def pil_jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    with Image.open(buf) as dec:
        return dec.convert(img.mode)


def test_quant_tables_follow_libjpeg_scaling() -> None:
    luma50, chroma50 = jpeg_quant_tables(50)
    assert luma50[0].tolist() == [16, 11, 10, 16, 24, 40, 51, 61]
    assert chroma50[0].tolist() == [17, 18, 24, 47, 99, 99, 99, 99]
    assert int(jpeg_quant_tables(75)[0][0, 0]) == (16 * 50 + 50) // 100 == 8
    assert int(jpeg_quant_tables(10)[0][0, 0]) == (16 * 500 + 50) // 100 == 80
    assert float(jpeg_quant_tables(1)[0].max()) == 255  # baseline clamp
    assert float(jpeg_quant_tables(100)[0].max()) == 1 == float(jpeg_quant_tables(100)[1].max())


@pytest.mark.parametrize("q", [50, 75, 95])
def test_diffjpeg_matches_pillow(photo: Image.Image, q: int) -> None:
    """Within a level on average of Pillow's own round trip, much closer than no JPEG at 50/75."""
    x = to_t(photo)
    real = to_t(pil_jpeg(photo, q))
    approx = DiffJPEG(q)(x)
    assert approx.shape == x.shape
    err = float(levels(approx, real).mean())
    assert err < 0.8
    if q <= 75:
        assert err < 0.5 * float(levels(x, real).mean())
    # The decoder's output is 8-bit.
    assert torch.equal(torch.round(approx * 255), approx * 255)


def test_diffjpeg_grey_and_gradients(photo: Image.Image) -> None:
    grey = to_t(photo.convert("L"))
    real = to_t(pil_jpeg(photo.convert("L"), 60))
    x = grey.clone().requires_grad_(True)
    out = DiffJPEG(60)(x)
    assert out.shape == grey.shape and float(levels(out.detach(), real).mean()) < 1.0
    out.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    # Straight-through rounding: the JPEG is linear around the quantiser, DC preserved.
    assert 0.9 < float(x.grad.mean()) < 1.1
    xc = to_t(photo).requires_grad_(True)
    DiffJPEG(60, rounding="cubic")(xc).sum().backward()
    assert xc.grad is not None and float(xc.grad.abs().sum()) > 0


def test_rotate_matches_pillow(photo: Image.Image) -> None:
    square = photo.crop((0, 0, 96, 96))
    # 90 degrees samples exactly at pixel centres: equal to Pillow's, pixel for pixel.
    assert torch.allclose(Rotate(90)(to_t(square)), to_t(square.rotate(90)), atol=1e-5)
    assert torch.allclose(Rotate(0)(to_t(photo)), to_t(photo), atol=1e-5)
    real = to_t(photo.rotate(11.0, resample=Image.Resampling.BILINEAR, fillcolor=0))
    approx = Rotate(11.0)(to_t(photo))
    assert float(levels(approx, real)[..., 8:-8, 8:-8].mean()) < 1.0


def test_crop_is_pillows_crop(photo: Image.Image) -> None:
    box = (0.1, 0.05, 0.93, 0.9)
    pix = crop_pixels(box, *photo.size)
    assert torch.equal(Crop(box)(to_t(photo)), to_t(photo.crop(pix)))


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_brightness_and_contrast_match_pillow(photo: Image.Image, factor: float) -> None:
    x = to_t(photo)
    bright = to_t(ImageEnhance.Brightness(photo).enhance(factor))
    # Pillow's blend truncates to a whole level: under a level apart.
    assert float(levels(Brightness(factor)(x), bright).max()) < 1.0
    contrast = to_t(ImageEnhance.Contrast(photo).enhance(factor))
    # Pillow also rounds the mean grey to a whole level first.
    assert float(levels(Contrast(factor)(x), contrast).max()) < 2.0


def test_blur_and_rescale_match_pillow(photo: Image.Image) -> None:
    x = to_t(photo)
    real = to_t(photo.filter(ImageFilter.GaussianBlur(1.2)))
    assert float(levels(Blur(1.2)(x), real)[..., 4:-4, 4:-4].mean()) < 1.0
    assert torch.equal(Blur(0)(x), x)
    for s in (0.8, 1.2):
        w, h = photo.size
        real = to_t(photo.resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC))
        approx = Rescale(s)(x)
        assert approx.shape == real.shape
        assert float(levels(approx, real).mean()) < 1.0


def test_sample_transform_is_seeded_and_covers_every_family() -> None:
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    a = [sample_transform(torch.Generator().manual_seed(5))(x) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    g = torch.Generator().manual_seed(0)
    draws = [sample_transform(g) for _ in range(200)]
    kinds = {type(d.steps[0]).__name__ for d in draws}
    assert kinds == {"DiffJPEG", "Rescale", "Rotate", "Crop", "Blur", "Brightness", "Contrast"}
    assert len(FAMILIES) == 7
    for d in draws[:20]:
        jpeg = d.steps[-1]
        assert isinstance(jpeg, DiffJPEG)
        assert TRAIN_RANGES.quality[0] <= jpeg.quality <= TRAIN_RANGES.quality[1]
        y = d(x)
        assert float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("make", [
    lambda: DiffJPEG(0), lambda: DiffJPEG(101), lambda: DiffJPEG(50, rounding="floor"),  # type: ignore[arg-type]
    lambda: Rescale(0), lambda: Rotate(400), lambda: Crop((0.5, 0, 0.4, 1)),
    lambda: Blur(-1), lambda: Brightness(float("nan")),
    lambda: TransformRanges(quality=(90, 50)), lambda: TransformRanges(crop=(0.0, 1.0)),
    lambda: sample_transform(0),  # type: ignore[arg-type]
])
def test_bad_parameters_raise_config_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="parameter of"):
        make()


def test_not_an_image_batch_raises_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        DiffJPEG(75)(torch.rand(3, 8, 8))
    with pytest.raises(ShapeError):
        Rotate(5)(torch.zeros(1, 4, 8, 8))
