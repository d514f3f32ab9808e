"""`hoodwink attack` with users' models and data, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file

from _helpers import LINEAR_NET_SRC, uint8_samples
from hoodwink.data.mnist import load_mnist


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hoodwink", *args], capture_output=True, text=True, cwd=cwd,
        timeout=300,
    )


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A folder with net.py, its weights, and the same 12 samples in every format."""
    (tmp_path / "net.py").write_text(LINEAR_NET_SRC)  # an L∞ budget of 1 flips every input
    x = uint8_samples(12)
    y = x[:, 0].argmax(1).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    save_numpy({"x": x, "y": y}, str(tmp_path / "d.safetensors"))
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    for i, (arr, label) in enumerate(zip(x, y, strict=True)):
        sub = tmp_path / "imgs" / f"class{label}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(sub / f"{i}.png")
    w = torch.zeros(3, 6)
    w[0, 0], w[1, 1], w[2, 2] = 4.0, 4.0, 4.0
    save_file({"fc.weight": w, "fc.bias": torch.zeros(3)}, str(tmp_path / "w.safetensors"))
    return tmp_path


def _summary(r: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


@pytest.mark.parametrize(
    "model", ["net.py:factory", "w.safetensors --arch net.py:Net"], ids=["factory", "weights"]
)
def test_user_model_npz(work: Path, model: str) -> None:
    """A factory file and a safetensors file + --arch load; the budget flips every sample."""
    r = run("attack", "--model", *model.split(), "--data", "d.npz", "--attack", "fgsm",
            "--eps", "1", "--json", "--out", "res", cwd=work)
    s = _summary(r)
    assert s["n"] == 12 and s["clean_accuracy"] == 1.0 and s["robust_accuracy"] == 0.0
    rec = json.loads((work / "res" / "result.json").read_text())
    assert rec["run"]["model"] == model.split()[0] and rec["run"]["data"].endswith("d.npz")
    assert (work / "res" / "result.safetensors").is_file()


@pytest.mark.parametrize("data", ["imgs", "d.safetensors"])
def test_data_formats(work: Path, data: str) -> None:
    """A folder of class sub-folders and a safetensors file give the same 12 samples."""
    r = run("attack", "--model", "net.py:factory", "--data", data, "--attack", "fgsm",
            "--eps", "0", "--json", cwd=work)
    s = _summary(r)
    assert s["n"] == 12 and s["clean_accuracy"] == 1.0 and s["robust_accuracy"] == 1.0
    assert (work / "out" / "attack" / "result.json").is_file()  # the default output folder


def test_pickle_refused_then_trusted(work: Path) -> None:
    """A pickle loads only with --trust-pickle; the refusal says why and what to do."""
    r = run("attack", "--model", "net.py:factory", "--data", "d.pt", "--eps", "0", cwd=work)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "executes code" in r.stderr and "--trust-pickle" in r.stderr
    r = run("attack", "--model", "net.py:factory", "--data", "d.pt", "--trust-pickle",
            "--eps", "0", "--json", cwd=work)
    assert _summary(r)["clean_accuracy"] == 1.0


def test_n_above_data_is_an_error(work: Path) -> None:
    r = run("attack", "--model", "net.py:factory", "--data", "d.npz", "--n", "13", cwd=work)
    assert r.returncode == 2 and "n=13" in r.stderr and "holds 12" in r.stderr
    r = run("attack", "--model", "net.py:factory", cwd=work)
    assert r.returncode == 2 and "--data is required" in r.stderr


def test_target_drop_is_reported(tmp_path: Path) -> None:
    """--target says how many samples of that class it dropped and how many remain."""
    _, y = load_mnist("test")
    dropped = int((y[:200] == 3).sum())
    assert dropped > 0
    r = run("attack", "--model", "mnist-linear", "--attack", "fgsm", "--eps", "0.2",
            "--target", "3", "--n", "200", "--json", cwd=tmp_path)
    s = _summary(r)
    assert (f"dropped {dropped} samples whose true class is already 3; attacking "
            f"{200 - dropped}") in r.stderr
    assert s["n"] == 200 - dropped and s["targeted"] is True


@pytest.mark.parametrize(("norm", "eps"), [("l2", "0.5"), ("l1", "1.5")])
def test_l2_l1_budgets_print_plain(work: Path, norm: str, eps: str) -> None:
    r = run("attack", "--model", "net.py:factory", "--data", "d.npz", "--norm", norm,
            "--eps", eps, "--steps", "5", cwd=work)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if f"eps ({norm})" in ln)
    assert eps in line and "/255" not in r.stdout


def test_linf_grid_budget(tmp_path: Path) -> None:
    """On an 8-bit model L∞ 0.25 shows as 63.75/255 and moves pixels by 63/255 at most."""
    r = run("attack", "--model", "mnist-linear", "--attack", "fgsm", "--eps", "0.25",
            "--n", "20", "--out", "o", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "0.25 (= 63.75/255)" in r.stdout and "63/255 on the 8-bit grid" in r.stdout
    rec = json.loads((tmp_path / "o" / "result.json").read_text())
    norms = rec["samples"]["perturbation_norm"]
    assert max(norms) == pytest.approx(63 / 255, abs=1e-6)


def test_sweep_writes_curve(work: Path) -> None:
    """A comma list of budgets runs a sweep: curve.json, curve.png and a table."""
    r = run("attack", "--model", "net.py:factory", "--data", "d.npz", "--attack", "fgsm",
            "--eps", "0,1/255,1", "--out", "sw", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "robust_accuracy" in r.stdout and "1/255" in r.stdout
    curve = json.loads((work / "sw" / "curve.json").read_text())
    assert curve["schema"].startswith("hoodwink.curve/")
    assert curve["eps"] == pytest.approx([0, 1 / 255, 1])
    assert curve["robust_accuracy"][0] == 1.0 and curve["robust_accuracy"][-1] == 0.0
    assert (work / "sw" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    r = run("attack", "--model", "net.py:factory", "--data", "d.npz", "--attack", "fgsm",
            "--eps", "0,1", "--json", "--out", "sw2", cwd=work)
    s = _summary(r)
    assert s["robust_accuracy"] == [1.0, 0.0] and s["eps"] == [0.0, 1.0]
