"""Survival of a fooled image under the real codecs (hoodwink.survival, ``hoodwink survival``)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from hoodwink.errors import ConfigError, InputError
from hoodwink.models.torch import TorchClassifier
from hoodwink.stats import wilson
from hoodwink.survival import (
    FIXED_QUALITIES,
    HELDOUT_RANGES,
    RealTransform,
    fixed_transforms,
    heldout_draws,
    survival,
)
from hoodwink.transforms import FAMILIES

CAT = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.jpg"


class MeanBrightness(torch.nn.Module):
    """Class 1 ("bright") when the mean pixel exceeds 0.5, else class 0 ("dark")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-(m - 0.5) * 40, (m - 0.5) * 40], dim=1)


@pytest.fixture(scope="module")
def model() -> TorchClassifier:
    return TorchClassifier(MeanBrightness().eval(), bounds=(0, 1), levels=256,
                           class_names=["dark", "bright"])


def flat(level: int, size: tuple[int, int] = (56, 40)) -> Image.Image:
    """A textured image whose mean is about ``level`` / 255."""
    rng = np.random.default_rng(level)
    arr = np.clip(level + rng.integers(-20, 21, (size[1], size[0], 3)), 0, 255)
    return Image.fromarray(arr.astype(np.uint8))


def test_heldout_draws_are_seeded_in_range_and_cover_the_families() -> None:
    a, b = heldout_draws(300, seed=3), heldout_draws(300, seed=3)
    assert a == b
    assert heldout_draws(10, seed=3) == a[:10]
    assert heldout_draws(10, seed=4) != a[:10]
    assert {d.family for d in a} == {f if f == "jpeg" else f"{f}+jpeg" for f in FAMILIES}
    lo_q, hi_q = HELDOUT_RANGES.quality
    for d in a:
        p = d.params
        assert lo_q <= p["quality"] <= hi_q and isinstance(p["quality"], int)
        if "angle" in p:
            assert abs(p["angle"]) <= HELDOUT_RANGES.angle
        if "scale" in p:
            assert 0.8 <= p["scale"] <= 1.2 and p["resample"] in ("bilinear", "bicubic", "lanczos")
        if "left" in p:
            assert 0.8 - 1e-3 <= p["right"] - p["left"] <= 1 and 0 <= p["left"] and p["right"] <= 1
        if "sigma" in p:
            assert 0 <= p["sigma"] <= 1.5
        if "factor" in p:
            assert 0.8 <= p["factor"] <= 1.2


def test_fixed_rows_are_the_png_and_real_jpeg_95_75_50() -> None:
    fixed = fixed_transforms()
    assert [t.family for t in fixed] == ["png", "jpeg-95", "jpeg-75", "jpeg-50"]
    assert FIXED_QUALITIES == (95, 75, 50)


def test_real_jpeg_is_pillows_codec() -> None:
    with Image.open(CAT) as im:
        img = im.convert("RGB").crop((100, 50, 228, 146))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=75)
    buf.seek(0)
    with Image.open(buf) as dec:
        expected = np.asarray(dec.convert("RGB"))
    got = np.asarray(RealTransform("jpeg-75", "jpeg-75", {"quality": 75})(img))
    assert np.array_equal(got, expected)
    grey = RealTransform("rotate", "rotate+jpeg", {"angle": 5.0, "quality": 80})(img.convert("L"))
    assert grey.mode == "L" and grey.size == img.size


def test_every_draw_kept_far_from_the_boundary(model: TorchClassifier) -> None:
    """Mean 200/255: no real operation in the set brings it below 0.5 (worst: 0.8 × 0.78)."""
    rep = survival(model, flat(200), target=1, original_label=None, draws=40, seed=1)
    assert len(rep.rows) == 4 + 40
    assert all(r["kept"] and r["pred"] == 1 and r["pred_name"] == "bright" for r in rep.rows)
    table = {r["family"]: r for r in rep.table}
    assert table["all draws"]["n"] == 40 and table["all draws"]["kept"] == 40
    assert table["jpeg-75"] == {"family": "jpeg-75", "kept": 1, "n": 1, "rate": 1.0,
                                "ci95": [round(wilson(1, 1)[0], 4), 1.0]}
    assert sum(r["n"] for r in rep.table if r["family"] not in
               ("png", "jpeg-95", "jpeg-75", "jpeg-50", "all draws")) == 40
    assert rep.rate("all draws") == 1.0
    # Untargeted: anything but "dark" is kept.
    assert survival(model, flat(200), target=None, original_label=0, draws=5).rate("jpeg-50") == 1


def test_nothing_kept_on_the_wrong_side(model: TorchClassifier) -> None:
    rep = survival(model, flat(50), target=1, original_label=None, draws=12, seed=0)
    assert not any(r["kept"] for r in rep.rows)
    assert rep.rate("all draws") == 0.0
    assert rep.table[-1]["ci95"] == [0.0, round(wilson(0, 12)[1], 4)]
    assert all(0 <= r["p_target"] < 0.5 for r in rep.rows)


def test_measured_with_the_real_codecs_never_the_approximation(
        model: TorchClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    import hoodwink.transforms as tr

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("survival used a differentiable approximation")

    for name in ("DiffJPEG", "Rescale", "Rotate", "Crop", "Blur", "Brightness", "Contrast"):
        monkeypatch.setattr(getattr(tr, name), "__call__", refuse)
    rep = survival(model, flat(200), target=1, original_label=None, draws=30)
    assert len(rep.rows) == 34


def test_path_and_image_agree_and_the_record_is_json(model: TorchClassifier,
                                                     tmp_path: Path) -> None:
    p = tmp_path / "adv.png"
    flat(140).save(p)
    a = survival(model, p, target=1, original_label=None, draws=8, seed=2).to_dict()
    b = survival(model, flat(140), target=1, original_label=None, draws=8, seed=2).to_dict()
    assert a == b == json.loads(json.dumps(a))
    assert a["schema"] == "hoodwink.survival/1"
    assert {"transform", "params", "kept", "pred", "prob"} <= set(a["rows"][0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target": None, "original_label": None}, "target= .*original_label="),
    ({"target": 2, "original_label": None}, "'target'"),
    ({"target": 1, "original_label": None, "draws": "many"}, "'draws'"),
    ({"target": 1, "original_label": None, "seed": -1}, "'seed'"),
    ({"target": 1, "original_label": None, "draws": 0, "include_fixed": False}, "nothing"),
])
def test_bad_arguments(model: TorchClassifier, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        survival(model, flat(100), **kwargs)  # type: ignore[arg-type]


def test_not_an_image(model: TorchClassifier) -> None:
    with pytest.raises(InputError, match="PIL.Image"):
        survival(model, np.zeros((8, 8)), target=1, original_label=None)  # type: ignore[arg-type]


def _app() -> typer.Typer:
    from hoodwink.cli.survival import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so the command keeps its name
        pass

    register(app)
    return app


def test_cli_survival_json_and_errors(tmp_path: Path) -> None:
    with Image.open(CAT) as im:
        im.convert("RGB").crop((120, 40, 280, 200)).save(tmp_path / "cat.png")
    runner = CliRunner()
    res = runner.invoke(_app(), ["survival", str(tmp_path / "cat.png"), "--original",
                                 str(tmp_path / "cat.png"), "--draws", "3", "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output)
    assert rec["max_change_255"] == 0 and rec["target"] is None
    # Kept means: not the original class; the original itself is never "kept".
    assert rec["rows"][0]["family"] == "png" and rec["rows"][0]["kept"] is False
    assert len(rec["rows"]) == 4 + 3
    bad = runner.invoke(_app(), ["survival", str(tmp_path / "cat.png")])
    assert bad.exit_code == 2 and "--target" in bad.output
