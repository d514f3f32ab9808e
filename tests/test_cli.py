"""The CLI through its real entry point: outputs and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoodwink.data.mnist import load_mnist


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hoodwink", *args], capture_output=True, text=True, cwd=cwd,
        timeout=300,
    )


def test_version() -> None:
    """--version prints the version and exits 0."""
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == "hoodwink 0.1.0"


def test_attack_json_and_record(tmp_path: Path) -> None:
    """attack --json prints machine-readable figures; --out is the folder of the record."""
    out = tmp_path / "res"
    r = run("attack", "--model", "mnist-cnn", "--attack", "pgd", "--eps", "8/255", "--n", "20",
            "--steps", "5", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["n"] == 20 and s["eps"] == pytest.approx(8 / 255) and s["model"] == "mnist-cnn"
    assert s["data"] == "mnist" and s["n_data"] == 1000
    assert 0 <= s["robust_accuracy"] <= s["clean_accuracy"] <= 1
    rec = json.loads((out / "result.json").read_text())
    assert rec["schema"].startswith("hoodwink.attack_result/")
    assert len(rec["samples"]["success"]) == 20
    assert rec["run"]["model"] == "mnist-cnn"
    from hoodwink import AttackResult

    assert len(AttackResult.load(out / "result.json")) == 20


def test_attack_targeted_table(tmp_path: Path) -> None:
    """A targeted attack prints a summary table; without --out it writes ./out/attack/."""
    r = run("attack", "--model", "mnist-linear", "--attack", "fgsm", "--eps", "0.2",
            "--target", "3", "--n", "30", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "success rate" in r.stdout and "targeted" in r.stdout
    assert (tmp_path / "out" / "attack" / "result.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("attack", "--eps", "-1"), "budget must be"),
        (("attack", "--eps", "abc"), "Cannot read the budget"),
        (("attack", "--attack", "nope"), "Unknown attack"),
        (("attack", "--norm", "l7", "--n", "5"), "norm"),
        (("attack", "--model", "resnet"), "Unknown model"),
        (("attack", "--target", "12", "--n", "5"), "outside the model's classes"),
        (("attack", "--n", "5000"), "holds 1000"),
        (("attack", "--model", "w.pt"), "--trust-pickle"),
        (("attack", "--model", "efficientnet-lite0"), "--data is required"),
        (("attack", "--data", "nope.npz"), "No data at nope.npz"),
        (("attack", "--out", "r.json"), "--out is a folder"),
        (("attack", "--model", "nomodule_xyz:make"), "Cannot import 'nomodule_xyz'"),
        (("attack", "--eps", "8", "--n", "5"), "did you mean 8/255?"),
        (("attack", "--eps", "1/255,8", "--n", "5"), "eps 8 is larger than the whole input"),
        (("attack", "--target", "²", "--n", "5"), "Unknown class '²'"),
        (("--threads", "2147483648", "attack"), "Invalid value for '--threads'"),
        (("attack", "--epz", "8"), "No such option: --epz (did you mean --eps?)"),
    ],
)
def test_library_errors_exit_2_one_line(args: tuple[str, ...], message: str,
                                        tmp_path: Path) -> None:
    """Library errors exit 2 with one clear line and no traceback; nothing is written."""
    (tmp_path / "w.pt").write_bytes(b"not even read")
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "out").exists()


def test_debug_shows_traceback() -> None:
    """--debug adds the traceback."""
    r = run("--debug", "attack", "--attack", "nope")
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_usage_error_exit_2() -> None:
    """An unknown option is a usage error: exit 2, one line (the README's promise)."""
    r = run("attack", "--no-such-flag")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: No such option: --no-such-flag. Try 'python -m hoodwink attack --help'."
    ]


def test_fool_mnist_digit(tmp_path: Path) -> None:
    """fool works on the MNIST model and reports predictions re-read from disk."""
    x, y = load_mnist("test")
    arr = (x[0, 0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(arr, mode="L").save(tmp_path / "d.png")
    target = str((int(y[0]) + 1) % 10)
    r = run("fool", "d.png", "--model", "mnist-cnn", "--target", target, "--eps", "0.3",
            "--steps", "40", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["after"][0]["index"] == int(target)
    assert (tmp_path / "out" / "fool" / "d-adv.png").is_file()  # the default output folder
    on_disk = np.asarray(Image.open(tmp_path / "out" / "fool" / "d-adv.png"), dtype=int)
    assert np.abs(on_disk - arr.astype(int)).max() <= round(0.3 * 255)


def test_fool_missing_file(tmp_path: Path) -> None:
    """A missing image: exit 2, one line, no output written."""
    r = run("fool", "nope.png", "--model", "mnist-cnn", cwd=tmp_path)
    assert r.returncode == 2 and "No such image file" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fool_imagenet_unknown_class_suggests(tmp_path: Path) -> None:
    """An unknown ImageNet class name gets 'did you mean' suggestions."""
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    r = run("fool", "a.png", "--target", "gibon", cwd=tmp_path)
    assert r.returncode == 2 and "gibbon" in r.stderr
