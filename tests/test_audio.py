"""16-bit PCM WAV in and out (hoodwink.audio): exact round trips and clear refusals."""

from __future__ import annotations

import re
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from hoodwink.audio import PCM_SCALE, Waveform, decode_wav, encode_wav, read_wav, write_wav
from hoodwink.errors import ConfigError, InputError, ShapeError


def _wav(path: Path, ints: np.ndarray, *, rate: int = 16000, channels: int = 1,
         width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return path


def test_every_16_bit_value_round_trips_exactly(tmp_path: Path) -> None:
    ints = np.arange(-32768, 32768, dtype="<i2")  # every 16-bit sample once
    clip = read_wav(_wav(tmp_path / "all.wav", ints))
    assert clip.samples.dtype == torch.float32 and clip.rate == 16000
    assert torch.equal(clip.samples, torch.from_numpy(ints.astype(np.float32)) / 32768)
    write_wav(tmp_path / "back.wav", clip.samples)
    with wave.open(str(tmp_path / "back.wav"), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        again = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.array_equal(again, ints)
    assert torch.equal(read_wav(tmp_path / "back.wav").samples, clip.samples)


def test_write_rounds_to_the_nearest_step_and_clips_plus_one() -> None:
    x = torch.tensor([0.4 / 32768, 0.6 / 32768, -1.0, 1.0, 100.25 / 32768], dtype=torch.float64)
    back = decode_wav(encode_wav(x)).samples * PCM_SCALE
    # round(x * 32768); +1.0 has no 16-bit code and becomes 32767.
    assert back.tolist() == [0.0, 1.0, -32768.0, 32767.0, 100.0]


def test_decode_keeps_the_source_and_duration() -> None:
    clip = decode_wav(encode_wav(np.zeros(8000, dtype=np.float32)), source="mem")
    assert isinstance(clip, Waveform) and clip.source == "mem" and clip.duration_s == 0.5


def _rewrite_header_rate(data: bytes, rate: int) -> bytes:
    return data[:24] + struct.pack("<II", rate, rate * 2) + data[32:]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("empty", "empty (0 bytes)"),
        ("no samples", "no samples"),
        ("8-bit", "8-bit samples"),
        ("24-bit", "24-bit samples"),
        ("stereo", "stereo"),
        ("8 kHz", "8000 Hz"),
        ("truncated", "truncated"),
        ("float", "not a 16-bit PCM WAV"),
        ("not a wav", "not a 16-bit PCM WAV"),
    ],
)
def test_bad_wavs_are_refused_with_the_problem_and_the_fix(tmp_path: Path, case: str,
                                                           needle: str) -> None:
    p = tmp_path / "bad.wav"
    tone = (np.sin(np.arange(1600) / 5) * 1000).astype("<i2")
    if case == "empty":
        p.write_bytes(b"")
    elif case == "no samples":
        _wav(p, np.zeros(0, dtype="<i2"))
    elif case == "8-bit":
        _wav(p, (tone // 256 + 128).astype(np.uint8), width=1)
    elif case == "24-bit":
        _wav(p, np.zeros(300, dtype=np.uint8), width=3)
    elif case == "stereo":
        _wav(p, np.repeat(tone, 2), channels=2)
    elif case == "8 kHz":
        _wav(p, tone, rate=8000)
    elif case == "truncated":
        _wav(p, tone)
        p.write_bytes(p.read_bytes()[:-1000])
    elif case == "float":
        _wav(p, tone)
        data = bytearray(p.read_bytes())
        data[20:22] = struct.pack("<H", 3)  # WAVE_FORMAT_IEEE_FLOAT
        p.write_bytes(bytes(data))
    else:
        p.write_text("this is not audio\n")
    with pytest.raises(InputError, match=re.escape(needle)) as info:
        read_wav(p)
    message = str(info.value)
    assert str(p) in message
    if case not in ("empty", "no samples"):
        # The fix: the exact conversion command.
        assert "ffmpeg -i" in message and "-ac 1 -ar 16000 -sample_fmt s16" in message


def test_other_rates_are_read_only_when_asked(tmp_path: Path) -> None:
    p = _wav(tmp_path / "a.wav", np.arange(10, dtype="<i2"), rate=44100)
    with pytest.raises(InputError, match="44100 Hz"):
        read_wav(p)
    clip = read_wav(p, rate=None)
    assert clip.rate == 44100 and clip.samples[3].item() == 3 / 32768


def test_missing_file_and_folder_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="is a folder"):
        read_wav(tmp_path)


@pytest.mark.parametrize(
    ("samples", "error", "needle"),
    [
        (torch.tensor([0.0, float("nan")]), InputError, "NaN"),
        (torch.tensor([0.0, 1.5]), InputError, "outside \\[-1, 1\\]"),
        (torch.zeros(2, 3), ShapeError, "shape"),
        (torch.zeros(0), ShapeError, "non-empty"),
        (torch.zeros(3, dtype=torch.int16), ShapeError, "dtype"),
        ([0.0, 0.1], InputError, "list"),
    ],
)
def test_bad_samples_are_refused(samples: object, error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        encode_wav(samples)  # type: ignore[arg-type]


def test_write_is_atomic_and_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        write_wav(tmp_path / "no" / "such" / "x.wav", torch.zeros(10))
    assert not (tmp_path / "no").exists()
    target = tmp_path / "x.wav"
    write_wav(target, torch.zeros(10))
    with pytest.raises(InputError):
        write_wav(target, torch.tensor([2.0]))  # refused before anything is written
    assert read_wav(target).samples.tolist() == [0.0] * 10
    assert sorted(q.name for q in tmp_path.iterdir()) == ["x.wav"]  # no temporary left
