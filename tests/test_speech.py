"""Fooling a real speech model (silero-vad): the model, the budget, the 16-bit guarantee."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("silero_vad")  # the extra hoodwink[speech]: the wheel's data files

from hoodwink import zoo  # noqa: E402
from hoodwink.audio import PCM_SCALE, Waveform, read_wav, write_wav  # noqa: E402
from hoodwink.errors import CapabilityError, ConfigError, InputError  # noqa: E402
from hoodwink.studies.speech import budget_eps, fool_speech  # noqa: E402
from hoodwink.zoo import silero  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _grid(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * PCM_SCALE).clamp(-32768, 32767) / PCM_SCALE


def _noise(n: int, level: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return _grid(torch.randn(n, generator=g) * level)


def _mixed(n: int = 5000, seed: int = 1) -> torch.Tensor:
    """Noise, a tone burst and digital silence: every part of the front end is exercised."""
    t = torch.arange(n) / 16000
    x = _noise(n, 0.05, seed)
    x[1000:2500] += 0.4 * torch.sin(2 * math.pi * 440 * t[1000:2500])
    x[3000:3700] = 0
    return _grid(x.clamp(-1, 1))


@pytest.fixture(scope="module")
def speechy() -> torch.Tensor:
    """A clip silero-vad reads as speech in every chunk: noise the model was fooled on."""
    out = fool_speech("silero-vad", Waveform(_noise(8000, 0.05), 16000, "noise"), mode="show",
                      level_db=-20.0, figure=False)
    assert out.success and out.chunks == out.chunks_target == 16
    return out.adversarial


# ------------------------------------------------------------------ the model


@pytest.mark.parametrize("t", [5000, 512 * 7, 300])
def test_batched_network_equals_the_torchscript_models_own_streaming(t: int) -> None:
    x = torch.stack([_mixed(t, 1), _mixed(t, 2) * 0.3])
    ours = silero.chunk_probabilities(x)
    ref = silero.streaming_probabilities(x)  # model(chunk, 16000) with its state and context
    assert ours.shape == ref.shape == (2, silero.n_chunks(t))
    assert float((ours - ref).abs().max()) < 1e-5
    # One clip alone gives what it gives in a batch.
    assert float((silero.chunk_probabilities(x[1]) - ours[1]).abs().max()) < 1e-6


def test_onnx_model_gives_the_same_probabilities() -> None:
    x = _mixed(4000)
    onnx = zoo.load("silero-vad-onnx")
    p = torch.from_numpy(onnx.fn.probabilities(x[None].numpy()))
    assert float((p - silero.chunk_probabilities(x)).abs().max()) < 1e-5


def test_zoo_entry_carries_the_16_bit_domain() -> None:
    clf = zoo.load("Silero-VAD")
    lo, hi = clf.bounds
    assert (float(lo), float(hi), clf.levels) == (-1.0, 1.0, 65537)
    # The grid lower + k * 2 / 65536 is exactly k' / 32768.
    assert clf.class_names == ("no-speech", "speech") and not clf.module.training
    assert "silero-vad" in zoo.available() and "silero-vad-onnx" in zoo.available()


@pytest.mark.parametrize("goal", ["hide", "show"])
def test_clip_decision_is_the_per_chunk_rule(goal: str) -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 9, generator=g) * 3 + torch.randn(400, 1, generator=g) * 4
    s = silero.clip_score(z, goal)  # type: ignore[arg-type]
    speech = (z >= 0).any(dim=1) if goal == "hide" else (z >= 0).all(dim=1)
    assert torch.equal(s > 0, speech & (s != 0))
    assert bool((s > 0).any()) and bool((s < 0).any())  # both decisions occur
    # Through the adapter: predict() is the same rule on real clips.
    clf = silero.load_silero_vad(goal)  # type: ignore[arg-type]
    x = torch.stack([_mixed(3000, i) * a for i, a in enumerate((0.05, 1.0, 0.3, 0.0))])
    p = silero.chunk_probabilities(x)
    want = (p >= 0.5).any(dim=1) if goal == "hide" else (p >= 0.5).all(dim=1)
    assert torch.equal(clf.predict(x).bool(), want)


def test_surrogate_gradient_reaches_every_chunk_short_of_the_goal() -> None:
    clip = silero.SileroClip(silero.load_net(), "hide").eval()
    x = _mixed(4096).requires_grad_(True)
    s = clip(x[None])[0, 1]
    (g,) = torch.autograd.grad(s, x)
    assert torch.isfinite(g).all()
    # Samples of every chunk get a gradient (the LSTM carries later chunks back too).
    per_chunk = g.abs().reshape(8, 512).amax(dim=1)
    assert bool((per_chunk > 0).all())
    # At exact digital silence the gradient is finite (the magnitude's floor).
    z = torch.zeros(1024, requires_grad=True)
    (g0,) = torch.autograd.grad(clip(z[None])[0, 1], z)
    assert torch.isfinite(g0).all()


# ------------------------------------------------------------------ the budget


def test_budget_levels_are_floored_onto_the_16_bit_grid() -> None:
    assert budget_eps(0.5, level_db=-40) == 163 / 32768  # 0.5 * 0.01 * 32768 = 163.84
    assert budget_eps(0.5, level_db=-40, reference="full-scale") == 327 / 32768
    assert budget_eps(0.5, eps=300 / 32768) == 300 / 32768
    assert budget_eps(1.0, level_db=-20) == 3276 / 32768
    with pytest.raises(ConfigError, match="nearly\\) silent.*--eps 300/32768.*dBFS"):
        budget_eps(5e-4, level_db=-40)
    with pytest.raises(ConfigError, match="below one step"):
        budget_eps(0.002, level_db=-80, reference="signal")
    with pytest.raises(ConfigError, match="level_db"):
        budget_eps(0.5, level_db=3)
    with pytest.raises(ConfigError, match="budget"):
        budget_eps(0.5)


# ------------------------------------------------------------------ the study


def test_show_on_noise_is_judged_from_the_wav_on_disk(tmp_path: Path) -> None:
    x = _noise(8000, 0.01, seed=3)
    out = tmp_path / "n-adv.wav"
    res = fool_speech("silero-vad", Waveform(x, 16000, "noise"), mode="show", level_db=-40,
                      reference="full-scale", out=out)
    assert res.success and res.speech_chunks_before == 0
    assert res.chunks == res.chunks_target == res.speech_chunks_after == 16
    # The 16-bit guarantee: the file decodes to exactly the returned samples ...
    back = read_wav(out).samples
    assert torch.equal(back, res.adversarial) and torch.equal(res.original, x)
    # ... and success survives: every chunk of the file reads as speech.
    p = silero.chunk_probabilities(back)[0]
    assert bool((p >= 0.5).all()) and p.tolist() == pytest.approx(res.probs_after, abs=1e-6)
    # The budget holds: 327 steps at -40 dBFS, on the grid.
    change = int((back - x).abs().max() * PCM_SCALE)
    assert res.eps_pcm == 327 and change == res.max_change_pcm <= 327
    assert res.level_dbfs is not None and res.level_dbfs <= -40 + 1e-9
    rec = json.loads((tmp_path / "n-adv.json").read_text())
    assert rec["schema"] == "hoodwink.speech/1" and rec["success"] is True
    assert rec["probs_after"] == res.probs_after and rec["outputs"]["adversarial"] == str(out)
    assert (tmp_path / "n-adv-figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hide_meets_the_level_relative_to_the_signal(tmp_path: Path,
                                                     speechy: torch.Tensor) -> None:
    path = tmp_path / "speechy.wav"
    write_wav(path, speechy)
    res = fool_speech(zoo.load("silero-vad"), path, mode="hide", level_db=-30, figure=False,
                      out=tmp_path / "h.wav")
    assert res.success and res.speech_chunks_before == 16 and res.speech_chunks_after == 0
    peak = float(speechy.abs().max())
    assert res.eps == math.floor(peak * 10 ** (-30 / 20) * PCM_SCALE) / PCM_SCALE
    delta = float((res.adversarial - speechy).abs().max())
    assert 0 < delta <= res.eps
    assert res.level_db is not None and res.level_db <= -30 + 1e-9
    assert res.level_db == pytest.approx(20 * math.log10(delta / peak), abs=1e-3)
    back = read_wav(tmp_path / "h.wav").samples
    assert torch.equal(back, res.adversarial)
    assert bool((silero.chunk_probabilities(back) < 0.5).all())
    assert not (tmp_path / "h-figure.png").exists()  # figure=False


def test_a_failed_attack_writes_nothing(tmp_path: Path, speechy: torch.Tensor) -> None:
    res = fool_speech("silero-vad", Waveform(speechy, 16000, "s"), mode="hide",
                      eps=1 / 32768, steps=5, out=tmp_path / "x.wav")
    assert not res.success and res.outputs == {}
    assert res.chunks_target < res.chunks and res.max_change_pcm <= 1
    assert list(tmp_path.iterdir()) == []


def test_black_box_reports_queries_within_the_budget() -> None:
    x = _noise(4000, 0.01, seed=5)
    res = fool_speech("silero-vad", Waveform(x, 16000, "noise"), mode="show", level_db=-30,
                      reference="full-scale", attack="square", queries=60, seed=1)
    assert res.model == "silero-vad-onnx" and res.attack == "square"
    assert res.queries is not None and 1 <= res.queries <= 60 and res.max_queries == 60
    assert res.max_change_pcm <= res.eps_pcm and res.steps is None
    p = silero.chunk_probabilities(res.adversarial)[0]
    assert res.success == bool((p >= 0.5).all())


def test_refusals() -> None:
    silence = Waveform(torch.zeros(2048), 16000, "silence")
    with pytest.raises(InputError, match="nothing to hide"):
        fool_speech("silero-vad", silence, mode="hide", eps=10 / 32768)
    with pytest.raises(ConfigError, match="silent"):
        fool_speech("silero-vad", silence, mode="show", level_db=-40)
    with pytest.raises(CapabilityError, match="no gradients"):
        fool_speech("silero-vad-onnx", silence, mode="show", eps=10 / 32768)
    with pytest.raises(ConfigError, match="speech model"):
        fool_speech("mnist-cnn", silence, mode="show", eps=10 / 32768)
    with pytest.raises(ConfigError, match="mode"):
        fool_speech("silero-vad", silence, mode="mute", eps=10 / 32768)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=".wav"):
        fool_speech("silero-vad", silence, mode="show", eps=10 / 32768, out="x.mp3")
    with pytest.raises(InputError, match="16 kHz"):
        fool_speech("silero-vad", Waveform(torch.zeros(100), 8000, "s"), mode="show",
                    eps=10 / 32768)
    with pytest.raises(InputError, match="16-bit grid"):
        fool_speech("silero-vad", Waveform(torch.full((600,), 0.1), 16000, "s"), mode="show",
                    eps=10 / 32768)


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"speech-{i:02d}.wav" for i in (2, 3, 4)])
def test_hide_on_committed_clips_at_minus_40_db(name: str, tmp_path: Path) -> None:
    clip = ROOT / "examples" / "audio" / name
    if not clip.is_file():
        pytest.skip("examples/audio not present")
    res = fool_speech("silero-vad", clip, mode="hide", level_db=-40, out=tmp_path / "a.wav")
    assert res.success and res.level_db is not None and res.level_db <= -40 + 1e-9
    back = read_wav(tmp_path / "a.wav").samples
    assert bool((silero.chunk_probabilities(back) < 0.5).all())
    assert np.isfinite(res.time_s) and res.time_s < 30


def test_run_record_round_trips_and_report_needs_only_it(tmp_path: Path) -> None:
    from hoodwink.audio import decode_wav
    from hoodwink.studies import speech
    from hoodwink.studies._record import from_b64

    x = _noise(4096, 0.01, seed=7)
    rec = speech.run("silero-vad", Waveform(x, 16000, "clips/n.wav"), mode="show",
                     level_db=-40, reference="full-scale")
    assert json.loads(json.dumps(rec)) == rec and rec["success"] is True
    assert rec["source_name"] == "n.wav" and rec["figure"] == "n-adv-figure.png"
    adv = decode_wav(from_b64(rec["wavs"]["adversarial"]["wav"])).samples
    assert torch.equal(decode_wav(from_b64(rec["wavs"]["original"]["wav"])).samples, x)
    p = silero.chunk_probabilities(adv)[0]
    assert p.tolist() == pytest.approx(rec["probs_after"], abs=1e-6) and bool((p >= 0.5).all())
    rendered = speech.report(json.loads(json.dumps(rec)))
    assert sorted(rendered.figures) == ["n-adv-figure.png", "n-adv.wav"]
    assert "reads as speech in 8 of 8 chunks" in rendered.markdown()
    paths = rendered.write(tmp_path, "speech")
    assert json.loads(paths.json.read_text())["probs_after"] == rec["probs_after"]
    assert torch.equal(read_wav(tmp_path / "n-adv.wav").samples, adv)


def test_missing_wheel_and_devices_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from hoodwink.errors import MissingDependencyError

    with pytest.raises(ConfigError, match="onnxruntime"):
        silero.load_silero_vad_onnx(device="cuda")
    monkeypatch.setattr(silero.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"hoodwink\[speech\]"):
        silero.data_file("silero_vad.jit")
