"""``hoodwink fool clip.wav``: the speech path of the fool command, through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("silero_vad")

from hoodwink.audio import read_wav, write_wav  # noqa: E402
from hoodwink.zoo.silero import chunk_probabilities  # noqa: E402


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hoodwink", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _noise_wav(path: Path, level: float = 0.01, n: int = 8000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.round(torch.randn(n, generator=g) * level * 32768).clamp(-32768, 32767) / 32768
    write_wav(path, x)
    return x


def test_show_speech_writes_the_wav_figure_and_record(tmp_path: Path) -> None:
    x = _noise_wav(tmp_path / "noise.wav")
    r = run("fool", "noise.wav", "--show-speech", "--level", "-40dBFS", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    out = tmp_path / "out" / "fool"
    assert rec["success"] is True and rec["mode"] == "show" and rec["model"] == "silero-vad"
    assert rec["eps_pcm"] == 327 and rec["max_change_pcm"] <= 327
    assert sorted(p.name for p in out.iterdir()) == ["noise-adv-figure.png", "noise-adv.json",
                                                     "noise-adv.wav"]
    back = read_wav(out / "noise-adv.wav").samples
    assert int((back - x).abs().max() * 32768) == rec["max_change_pcm"]
    assert bool((chunk_probabilities(back) >= 0.5).all())


def test_eps_in_pcm_units_and_a_failure_leave_nothing(tmp_path: Path) -> None:
    _noise_wav(tmp_path / "n.wav")
    r = run("fool", "n.wav", "--show-speech", "--eps", "1/32768", "--steps", "3",
            "--out", "res/n-adv.wav", cwd=tmp_path)
    assert r.returncode == 2
    assert "read as speech after saving" in r.stderr and "Nothing was written" in r.stderr
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--hide-speech", "--show-speech"), "exactly one of --hide-speech"),
        ((), "exactly one of --hide-speech"),
        (("--hide-speech", "--target", "3"), "--target is for images"),
        (("--hide-speech", "--level", "-40dB", "--eps", "3/32768"), "not both"),
        (("--hide-speech", "--level", "loud"), "Cannot read --level"),
        (("--hide-speech", "--eps", "auto"), "--eps auto is for images"),
        (("--show-speech", "--level", "-40dB", "--model", "mnist-cnn"), "speech model"),
        (("--show-speech", "--level", "-40dB", "--attack", "fgsm"), "attack"),
        (("--show-speech", "--out", "x.mp3"), ".wav"),
    ],
)
def test_bad_options_are_one_clear_line(tmp_path: Path, args: tuple[str, ...],
                                        needle: str) -> None:
    _noise_wav(tmp_path / "n.wav", n=1024)
    r = run("fool", "n.wav", *args, cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_bad_wavs_and_speech_options_on_images(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "st.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(2000, dtype="<i2").tobytes())
    r = run("fool", "st.wav", "--hide-speech", cwd=tmp_path)
    assert r.returncode == 2 and "stereo" in r.stderr and "ffmpeg -i" in r.stderr
    r = run("fool", "photo.png", "--hide-speech", "--level", "-40dB", cwd=tmp_path)
    assert r.returncode == 2
    assert "--hide-speech, --level are for a .wav clip only" in r.stderr
