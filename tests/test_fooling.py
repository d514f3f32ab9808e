"""The main job: fool an image file, and check what is on disk."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoodwink import zoo
from hoodwink.data.mnist import load_mnist
from hoodwink.errors import BudgetExhaustedError, ConfigError, InputError
from hoodwink.imaging import load_image
from hoodwink.studies.fool import fool_image


@pytest.fixture(scope="module")
def mnist_cnn():  # type: ignore[no-untyped-def]
    return zoo.load("mnist-cnn")


@pytest.fixture()
def digit_png(tmp_path: Path, mnist_cnn) -> tuple[Path, int]:  # type: ignore[no-untyped-def]
    """A correctly classified held-out digit saved as an 8-bit PNG."""
    x, y = load_mnist("test")
    pred = mnist_cnn.predict(x[:20])
    i = int((pred == y[:20]).nonzero()[0, 0])
    arr = (x[i, 0] * 255).round().to(torch.uint8).numpy()
    p = tmp_path / "digit.png"
    Image.fromarray(arr, mode="L").save(p)
    return p, int(y[i])


def test_targeted_png_on_disk(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """The saved PNG, read back, is the target class and within eps of the original."""
    src, label = digit_png
    target = (label + 3) % 10
    out = tmp_path / "adv.png"
    res = fool_image(mnist_cnn, src, target=target, eps=0.3, out=out, steps=40, mode="L")
    x0 = load_image(src, mode="L")
    x1 = load_image(out, mode="L")
    assert int(mnist_cnn.predict(x1)[0]) == target
    assert res.after[0].index == target
    change = int((np.abs(np.asarray(Image.open(out), dtype=int) -
                         np.asarray(Image.open(src), dtype=int))).max())
    assert change <= round(0.3 * 255) and change == res.max_change_255
    assert x1.shape == x0.shape
    rec = json.loads((tmp_path / "adv.json").read_text())
    assert rec["schema"] == "hoodwink.fool/1" and rec["after"][0]["index"] == target
    assert (tmp_path / "adv-triptych.png").is_file()


def test_untargeted(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """Without a target the PNG on disk is classified as any other class."""
    src, label = digit_png
    res = fool_image(mnist_cnn, src, eps=0.3, out=tmp_path / "u.png", mode="L", figure=False)
    assert res.after[0].index != label
    assert not (tmp_path / "u-triptych.png").exists()


def test_budget_too_small_writes_nothing(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """A budget that cannot work raises, says so, and leaves no file."""
    src, label = digit_png
    with pytest.raises(BudgetExhaustedError, match="not enough.*Nothing was written"):
        fool_image(mnist_cnn, src, target=(label + 1) % 10, eps=1 / 255,
                   out=tmp_path / "f.png", mode="L", steps=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digit.png"]


def test_eps_auto_picks_smallest_working(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """eps='auto' reports the first budget that worked, after trying the smaller ones."""
    src, label = digit_png
    res = fool_image(mnist_cnn, src, eps="auto", out=tmp_path / "a.png", mode="L",
                     figure=False, steps=20)
    assert res.eps_auto and res.eps == res.eps_tried[-1]
    assert res.eps_tried == sorted(res.eps_tried)
    assert res.max_change_255 <= round(res.eps * 255)


def test_bad_outputs_and_inputs(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """Clear errors: non-PNG output, unwritable folder, wrong image size, bad eps."""
    src, label = digit_png
    with pytest.raises(ConfigError, match=".png"):
        fool_image(mnist_cnn, src, out=tmp_path / "x.jpg", mode="L")
    with pytest.raises(InputError, match="does not exist"):
        fool_image(mnist_cnn, src, out=tmp_path / "no" / "x.png", mode="L")
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 30), dtype=np.uint8), mode="L").save(big)
    with pytest.raises(InputError, match="28, 28"):
        fool_image(mnist_cnn, big, out=tmp_path / "b.png", mode="L")
    with pytest.raises(ConfigError, match="eps"):
        fool_image(mnist_cnn, src, eps=3.0, out=tmp_path / "c.png", mode="L")


@pytest.mark.slow
def test_imagenet_photo_to_goldfish(tmp_path: Path) -> None:
    """Lite0: a real photo (downscaled for CI time) becomes a goldfish at 2/255, on disk."""
    import skimage.data

    model = zoo.load("efficientnet-lite0")
    src = tmp_path / "cat.png"
    Image.fromarray(skimage.data.chelsea()).resize((240, 160)).save(src)
    out = tmp_path / "cat-adv.png"
    res = fool_image(model, src, target=1, eps=2 / 255, out=out)
    x1 = load_image(out)
    assert int(model.predict(x1)[0]) == 1
    assert res.after[0].probability >= 0.5
    assert res.max_change_255 <= 2
    assert Image.open(out).size == (240, 160)


def test_record_has_timings_and_the_figure_is_a_png(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """timings_s splits the run (caller's phases first); the triptych is a real 3-panel PNG."""
    src, label = digit_png
    res = fool_image(mnist_cnn, src, target=(label + 1) % 10, eps=0.3, out=tmp_path / "t.png",
                     mode="L", timings={"startup": 0.5, "model_load": 0.25})
    rec = json.loads((tmp_path / "t.json").read_text())
    t = rec["timings_s"]
    assert list(t) == ["startup", "model_load", "attack", "png_roundtrip", "figure", "total"]
    assert t["startup"] == 0.5 and t["model_load"] == 0.25
    assert t["attack"] > 0 and t["png_roundtrip"] > 0 and t["figure"] > 0
    assert t["attack"] + t["png_roundtrip"] + t["figure"] <= t["total"]
    assert res.timings_s == t
    fig = Image.open(tmp_path / "t-triptych.png")
    assert fig.format == "PNG" and fig.width > 3 * 28 * 2 and fig.height > 28 * 2
    # The middle of the left panel is the (enlarged) original digit, not blank paper.
    assert len(np.unique(np.asarray(fig.convert("L")))) > 10


def test_create_folders_only_after_success(tmp_path: Path, mnist_cnn, digit_png) -> None:  # type: ignore[no-untyped-def]
    """create_folders makes missing folders on success and nothing at all on failure."""
    src, label = digit_png
    with pytest.raises(BudgetExhaustedError):
        fool_image(mnist_cnn, src, target=(label + 1) % 10, eps=1 / 255, steps=2,
                   out=tmp_path / "a" / "b" / "x.png", mode="L", create_folders=True)
    assert not (tmp_path / "a").exists()
    fool_image(mnist_cnn, src, target=(label + 1) % 10, eps=0.3,
               out=tmp_path / "a" / "b" / "x.png", mode="L", create_folders=True)
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == [
        "x-triptych.png", "x.json", "x.png"]
