"""Issue 9, "Images and files": each root cause, with a test that failed before its fix."""

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hoodwink.errors import (
    BudgetExhaustedError,
    ConfigError,
    HoodwinkError,
    InputError,
)
from hoodwink.imaging import decode_png, encode_png, load_image, save_png


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hoodwink", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _grey(h: int = 6, w: int = 9) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8)


# ---------------------------------------------------------------------- the mode argument
@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "rgb", "", None, 3])
def test_image_mode_is_validated(tmp_path: Path, mode: object) -> None:
    """Only "RGB" and "L" (and None, the file's own mode, for load_image) are accepted."""
    Image.fromarray(_grey()).save(tmp_path / "g.png")
    png = (tmp_path / "g.png").read_bytes()
    if mode is None:
        assert load_image(tmp_path / "g.png", mode=None).shape == (1, 1, 6, 9)
    else:
        with pytest.raises(ConfigError, match="'mode'.*'RGB' or 'L'"):
            load_image(tmp_path / "g.png", mode=mode)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'mode'"):
        decode_png(png, mode)  # type: ignore[arg-type]


def test_load_image_mode_none_keeps_the_files_mode(tmp_path: Path) -> None:
    """mode=None: a grey file gives 1 channel, a colour file 3, a grey palette file 1."""
    Image.fromarray(_grey()).save(tmp_path / "g.png")
    Image.fromarray(np.stack([_grey()] * 3, axis=-1)).save(tmp_path / "c.png")
    Image.fromarray(_grey()).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "g.png", mode=None).shape[1] == 1
    assert load_image(tmp_path / "c.png", mode=None).shape[1] == 3
    assert load_image(tmp_path / "p.png", mode=None).shape[1] == 1


# ---------------------------------------------------------------------- writing PNGs
@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.full((1, 1, 2, 2), 200.0), r"values in \[.*200.*divide.*255"),
        (torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), r"dtype torch.uint8.*255"),
        (torch.tensor([[[[0.5, float("nan")]]]]), "NaN"),
        (torch.tensor([[[[0.5, float("inf")]]]]), "infinite|NaN"),
        (torch.full((1, 1, 2, 2), -0.5), r"values in \[-0.5"),
    ],
)
def test_encode_png_refuses_out_of_range_and_non_finite(tmp_path: Path, x: torch.Tensor,
                                                        match: str) -> None:
    """8-bit tensors not divided by 255 and NaN are refused, not binarised or written as 0."""
    with pytest.raises(InputError, match=match):
        encode_png(x)
    with pytest.raises(InputError, match=match):
        save_png(x, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_encode_png_refuses_non_tensors() -> None:
    with pytest.raises(InputError, match="torch.Tensor"):
        encode_png(np.zeros((1, 1, 2, 2)))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- float image files
def test_float_image_in_unit_range_loads_scaled(tmp_path: Path) -> None:
    """A 32-bit float TIFF (mode "F") with values in [0, 1] loads as its values, not black."""
    arr = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(arr, mode="F").save(tmp_path / "f.tif")
    x = load_image(tmp_path / "f.tif", mode="L")
    assert (x[0, 0] * 255).round().tolist() == [[0, 64], [128, 255]]


def test_float_image_in_8bit_range_loads(tmp_path: Path) -> None:
    """A float image holding 0..255 (as Pillow's convert("F") makes) keeps its levels."""
    arr = np.array([[0.0, 17.0], [128.0, 255.0]], dtype=np.float32)
    Image.fromarray(arr, mode="F").save(tmp_path / "f.tif")
    x = load_image(tmp_path / "f.tif", mode="L")
    assert (x[0, 0] * 255).round().tolist() == [[0, 17], [128, 255]]


@pytest.mark.parametrize("bad", [[[-1.0, 0.5]], [[0.0, 1000.0]], [[0.0, float("nan")]]])
def test_float_image_out_of_range_refused(tmp_path: Path, bad: list[list[float]]) -> None:
    Image.fromarray(np.array(bad, dtype=np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(InputError, match=r"float.*\[0, 1\]"):
        load_image(tmp_path / "f.tif")


def test_image_folder_reads_float_and_16_bit_images(tmp_path: Path) -> None:
    """The folder reader converts float and 16-bit files the same way as load_image."""
    from hoodwink.data.readers import load_image_folder

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
    Image.fromarray(np.array([[0.0, 1.0]], dtype=np.float32), mode="F").save(tmp_path / "a/f.tif")
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(tmp_path / "b/h.png")
    x, y, names = load_image_folder(tmp_path)
    assert names == ("a", "b") and x.shape == (2, 1, 1, 2)
    assert x[:, 0, 0].tolist() == [[0.0, 1.0], [0.0, 1.0]]


# ---------------------------------------------------------------------- FIFOs and devices
def _fifo(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    os.mkfifo(p)
    return p


def _no_hang(fn: object) -> BaseException | None:
    """Run ``fn`` in a thread; fail if it blocks (the old behaviour on a FIFO)."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box[0] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        # Unblock the reader so the thread ends, then fail.
        pytest.fail("blocked on a named pipe")
    return box[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_named_pipe_refused_without_blocking(tmp_path: Path) -> None:
    from hoodwink.data import load_dataset
    from hoodwink.data.readers import load_npz

    for fn in (lambda: load_image(_fifo(tmp_path, "a.png")),
               lambda: load_dataset(_fifo(tmp_path, "d.npz")),
               lambda: load_npz(_fifo(tmp_path, "e.npz"))):
        exc = _no_hang(fn)
        assert isinstance(exc, InputError), exc
        assert "not a regular file" in str(exc)
    with pytest.raises(InputError, match="not a regular file"):
        load_image("/dev/null")


# ---------------------------------------------------------------------- output locations
def test_check_output_refuses_bad_locations(tmp_path: Path) -> None:
    """Existing folder for a file, path under a file, /proc: one clear ConfigError, no work."""
    from hoodwink.cli._common import check_output

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path / "d", "fool", kind="file")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "f" / "x.png", "fool", kind="file")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "f" / "sub", "dream")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "f", "dream")
    with pytest.raises(ConfigError, match="Cannot write"):
        check_output(Path("/proc/hoodwink-test/out"), "dream")
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path, "attack", files=("d",))
    # Nothing is created by the check; a good location passes and is returned.
    assert check_output(tmp_path / "new" / "deeper", "dream") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


def test_atomic_write_errors_are_library_errors(tmp_path: Path) -> None:
    from hoodwink.reports import atomic_write_bytes

    (tmp_path / "f").write_text("x")
    with pytest.raises(HoodwinkError, match="Cannot write"):
        atomic_write_bytes(tmp_path / "f" / "x.json", b"{}")
    with pytest.raises(HoodwinkError, match="Cannot write"):
        atomic_write_bytes("/proc/hoodwink.json", b"{}")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(HoodwinkError, match="is a folder"):
        atomic_write_bytes(tmp_path / "d.json", b"{}")


def test_report_write_into_a_file_is_a_library_error(tmp_path: Path) -> None:
    from hoodwink.reports import Report

    (tmp_path / "f").write_text("x")
    with pytest.raises(HoodwinkError, match="is a file, not a folder"):
        Report("t", "t", {}).write(tmp_path / "f" / "sub")


#: Every command that writes, with arguments that would otherwise fail only later (an
#: unknown model): the output check must come first.
WRITERS = [
    ("fool", "nope.png", "--model", "no-such-model"),
    ("attack", "--model", "no-such-model"),
    ("dream", "--target", "1", "--model", "no-such-model"),
    ("defend", "background", "--rounds", "0", "--train-size", "10"),
    ("transfer", "--source", "no-such-model", "--to", "no-such-model"),
    ("linear", "train", "--data", "no-such-data"),
    ("linear", "templates", "--model", "no-such-model.safetensors"),
    ("linear", "fool", "--model", "no-such-model.safetensors"),
    ("linear", "regularization", "--data", "no-such-data"),
    ("linear", "dimension", "--data", "no-such-data"),
    ("linear", "toy"),
]


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: "-".join(a[:2]))
def test_unwritable_output_is_one_line_exit_2_checked_first(tmp_path: Path,
                                                            args: tuple[str, ...]) -> None:
    """An output under a regular file (unwritable, for root too): one line, exit 2, no work."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "blocker" / ("adv.png" if args[0] == "fool" else "report")
    r = _cli(*args, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Cannot write" in r.stderr and "blocker" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


@pytest.mark.parametrize("args", [WRITERS[1], WRITERS[2], WRITERS[10]],
                         ids=lambda a: "-".join(a[:2]))
def test_output_under_proc_is_refused_first(tmp_path: Path, args: tuple[str, ...]) -> None:
    """/proc refuses new files even to root: found by trying, before any work."""
    r = _cli(*args, "--out", "/proc/hoodwink-test/report", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Cannot write" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_fool_out_existing_folder_refused(tmp_path: Path) -> None:
    (tmp_path / "adv.png").mkdir()
    r = _cli("fool", "nope.png", "--model", "no-such-model", "--out", "adv.png", cwd=tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr and "Traceback" not in r.stderr


def test_fool_image_checks_every_output_before_the_work(tmp_path: Path) -> None:
    """The triptych or record path being a folder is found before the attack, not after."""
    from hoodwink.studies.fool import fool_image

    Image.fromarray(_grey(12, 16)).save(tmp_path / "g.png")
    (tmp_path / "adv-triptych.png").mkdir()
    with pytest.raises(ConfigError, match="adv-triptych.png: it is a folder"):
        fool_image(_tiny_rgb_model(), tmp_path / "g.png", out=tmp_path / "adv.png", eps=0.1)


# ---------------------------------------------------------------------- greyscale in fool
class _TinyRGB(nn.Module):
    """A fixed, random classifier of 3-channel 12×16 images (its first layer needs 3)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 12 * 16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


def _tiny_rgb_model():  # type: ignore[no-untyped-def]
    from hoodwink.models.torch import TorchClassifier

    return TorchClassifier(_TinyRGB().eval(), bounds=(0, 1), levels=256,
                           class_names=[f"c{i}" for i in range(5)])


def test_fool_keeps_a_greyscale_input_grey(tmp_path: Path) -> None:
    """A grey photo gives a grey adversarial PNG (no colour noise), classified as printed."""
    from hoodwink.studies.fool import fool_image

    model = _tiny_rgb_model()
    Image.fromarray(_grey(12, 16)).save(tmp_path / "g.png")
    res = fool_image(model, tmp_path / "g.png", out=tmp_path / "adv.png", eps=0.3, steps=40)
    saved = Image.open(tmp_path / "adv.png")
    assert saved.mode == "L"
    # Classified as printed: the original RGB model on the file read back as RGB.
    x_rgb = load_image(tmp_path / "adv.png", mode="RGB")
    probs = model.probabilities(x_rgb)[0]
    assert int(probs.argmax()) == res.after[0].index
    assert float(probs.max()) == pytest.approx(res.after[0].probability, abs=1e-5)
    assert json.loads((tmp_path / "adv.json").read_text())["mode"] == "L"


def test_fool_study_run_keeps_a_greyscale_input_grey(tmp_path: Path) -> None:
    from hoodwink.studies import fool

    Image.fromarray(_grey(12, 16)).save(tmp_path / "g.png")
    rec = fool.run(_tiny_rgb_model(), tmp_path / "g.png", eps=0.3)
    assert rec["mode"] == "L"
    adv = Image.open(io.BytesIO(__import__("base64").b64decode(
        rec["images"]["adversarial"]["png"])))
    assert adv.mode == "L"
    fool.report(rec)  # renders from the record


# ---------------------------------------------------------------------- the triptych
def _triptych(eps: float, target: str | None = "c3") -> Image.Image:
    from hoodwink.studies.fool import Prediction
    from hoodwink.studies.fool_report import triptych

    rng = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 40, 60, generator=rng)
    delta = (torch.rand(x.shape, generator=rng) * 2 - 1) * eps / 3
    before = [Prediction(0, "c0", 0.8), Prediction(1, "c1", 0.1), Prediction(2, "c2", 0.05)]
    after = [Prediction(3, "c3", 0.9), Prediction(0, "c0", 0.05), Prediction(1, "c1", 0.01)]
    png = triptych(x, (x + delta).clamp(0, 1), before, after, "m", eps,
                   int(eps * 255 / 3), target=target)
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_triptych_amplification_is_fixed_by_eps() -> None:
    """The perturbation panel maps ±eps to the full range: amplification 0.5/eps, whatever
    the perturbation reached."""
    from hoodwink.studies.fool_report import amplification, triptych_captions

    assert amplification(2 / 255) == pytest.approx(63.75)
    caps = triptych_captions(None, None, 2 / 255, 5, target="goldfish")
    assert "x64 amplified" in caps[1] and "+/-2/255" in caps[1]


def test_triptych_names_target_mode_and_top1() -> None:
    from hoodwink.studies.fool import Prediction
    from hoodwink.studies.fool_report import triptych_captions

    before = [Prediction(0, "tabby", 0.8)]
    after = [Prediction(1, "goldfish", 0.93)]
    caps = triptych_captions(before, after, 2 / 255, 2, target="goldfish")
    assert "tabby" in caps[0] and "0.80" in caps[0]
    assert "target: goldfish" in caps[2] and "0.93" in caps[2]
    untargeted = triptych_captions(before, after, 2 / 255, 2, target=None)
    assert "untargeted" in untargeted[2] and "goldfish" in untargeted[2]


@pytest.mark.parametrize("eps", [2 / 255, 16 / 255])
def test_triptych_has_no_blank_band(eps: float) -> None:
    """Below the captions there is at most the padding: no band of blank rows."""
    img = np.asarray(_triptych(eps))
    ink = np.nonzero((img < 200).any(axis=(1, 2)))[0]
    assert img.shape[0] - 1 - ink.max() <= 16


# ---------------------------------------------------------------------- messages
@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_max_pixels_is_validated(tmp_path: Path, bad: object) -> None:
    Image.fromarray(_grey()).save(tmp_path / "g.png")
    with pytest.raises(ConfigError, match="'max_pixels'"):
        load_image(tmp_path / "g.png", max_pixels=bad)  # type: ignore[arg-type]


def test_pixel_limit_message_names_the_numbers(tmp_path: Path) -> None:
    Image.fromarray(_grey(50, 50)).save(tmp_path / "g.png")
    with pytest.raises(InputError) as info:
        load_image(tmp_path / "g.png", max_pixels=100)
    msg = str(info.value)
    assert "2,500 pixels" in msg and "100 pixels" in msg and "-0" not in msg
    assert "0.0 MP" not in msg


def test_fool_image_speaks_in_library_terms(tmp_path: Path) -> None:
    """The library suggests eps=..., not the CLI flag --eps."""
    from hoodwink import zoo
    from hoodwink.data.mnist import load_mnist
    from hoodwink.studies.fool import fool_image

    x, y = load_mnist("test")
    Image.fromarray((x[0, 0] * 255).round().to(torch.uint8).numpy()).save(tmp_path / "d.png")
    with pytest.raises(BudgetExhaustedError) as info:
        fool_image(zoo.load("mnist-cnn"), tmp_path / "d.png", out=tmp_path / "adv.png",
                   eps=1 / 255, steps=2, target=(int(y[0]) + 1) % 10, mode="L")
    msg = str(info.value)
    assert "--" not in msg and "eps=" in msg


def test_dataset_with_nan_inputs_refused(tmp_path: Path) -> None:
    from hoodwink.data import load_dataset

    np.savez(tmp_path / "d.npz", x=np.array([[np.nan, 0.5]], dtype=np.float32), y=[0])
    with pytest.raises(InputError, match="NaN or infinite"):
        load_dataset(tmp_path / "d.npz")


@pytest.mark.parametrize("size", [(0, 3), "4x4", (2**40, 2), (2.5, 3)])
def test_folder_size_is_validated(tmp_path: Path, size: object) -> None:
    from hoodwink.data.readers import load_image_folder

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.fromarray(_grey()).save(tmp_path / c / "i.png")
    with pytest.raises(ConfigError, match="'size'"):
        load_image_folder(tmp_path, size=size)  # type: ignore[arg-type]
