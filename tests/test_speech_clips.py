"""The committed speech clips (examples/audio) and the speech benchmark's record.

The clips are 16 kHz mono 16-bit PCM WAVs of the lengths examples/audio/README.md
documents, made by scripts/make_speech_clips.py; silero-vad hears speech in
every speech clip and none in noise.wav or silence.wav. The record that
bench/speech.py writes, when committed, must agree with itself: every rate is
its count over its n, every interval is the Wilson interval of that count, and
the counts are those of its per-clip rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import wave
from pathlib import Path
from typing import Any

import pytest
import torch

from hoodwink.stats import rate_text, wilson

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "audio"
RECORD = ROOT / "bench" / "results" / "speech.json"
CHUNK = 512
#: Whole 512-sample chunks of each file, as in examples/audio/README.md.
CHUNKS = {
    "speech-01.wav": 87, "speech-02.wav": 101, "speech-03.wav": 81, "speech-04.wav": 85,
    "speech-05.wav": 99, "speech-06.wav": 87, "speech-07.wav": 83, "speech-08.wav": 96,
    "speech-09.wav": 97, "speech-10.wav": 67, "noise.wav": 63, "silence.wav": 63,
}
SPEECH = sorted(n for n in CHUNKS if n.startswith("speech-"))
NON_SPEECH = ("noise.wav", "silence.wav")
#: Every speech clip has at least this many chunks that silero-vad scores >= 0.5
#: (the fewest is 58 of 67, in speech-10.wav).
MIN_SPEECH_CHUNKS = 50


def _read(path: Path) -> tuple[tuple[int, int, int, str], torch.Tensor]:
    with wave.open(str(path), "rb") as f:
        fmt = (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getcomptype())
        raw = f.readframes(f.getnframes())
    return fmt, torch.frombuffer(bytearray(raw), dtype=torch.int16).clone()


def test_every_committed_clip_is_listed() -> None:
    assert sorted(p.name for p in AUDIO.glob("*.wav")) == sorted(CHUNKS)


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_clip_is_16k_mono_16bit_of_the_documented_length(name: str) -> None:
    fmt, pcm = _read(AUDIO / name)
    assert fmt == (1, 2, 16_000, "NONE")
    assert pcm.numel() == CHUNKS[name] * CHUNK
    readme = (AUDIO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
    seconds = CHUNKS[name] * CHUNK / 16_000
    assert f"{seconds:.2f} s" in row
    if name in SPEECH:
        assert 2.0 <= seconds <= 4.0
        # Peak-normalised to -6 dBFS: max|x| = 0.5, i.e. 16384 in PCM units.
        assert int(pcm.abs().max()) == 16384


def test_noise_and_silence_levels() -> None:
    _, noise = _read(AUDIO / "noise.wav")
    rms_dbfs = 20 * math.log10(float((noise.double() / 32768).pow(2).mean().sqrt()))
    assert -50.5 < rms_dbfs < -49.5
    _, silence = _read(AUDIO / "silence.wav")
    assert int(silence[: 32 * CHUNK].abs().max()) == 0
    floor = silence[32 * CHUNK:].double()
    assert 0 < int(floor.abs().max()) <= 16  # about 2 LSB RMS, a few LSB at most
    assert 1.0 < float(floor.pow(2).mean().sqrt()) < 3.0


def test_clips_stay_small() -> None:
    assert sum(p.stat().st_size for p in AUDIO.glob("*.wav")) < 1_500_000


@pytest.fixture(scope="module")
def reference_counts() -> dict[str, int]:
    """Speech chunks per file by silero-vad's own JIT model, chunk by chunk from a fresh state."""
    threads = torch.get_num_threads()
    silero_vad = pytest.importorskip("silero_vad")  # sets one torch thread at import
    torch.set_num_threads(threads)
    model = silero_vad.load_silero_vad()
    counts = {}
    with torch.no_grad():
        for name in CHUNKS:
            _, pcm = _read(AUDIO / name)
            model.reset_states()
            x = pcm.float() / 32768
            probs = [float(model(c, 16_000)) for c in x.reshape(-1, CHUNK)]
            counts[name] = sum(p >= 0.5 for p in probs)
    return counts


def test_silero_vad_hears_speech_only_in_the_speech_clips(
        reference_counts: dict[str, int]) -> None:
    for name in SPEECH:
        assert reference_counts[name] >= MIN_SPEECH_CHUNKS, (name, reference_counts[name])
    for name in NON_SPEECH:
        assert reference_counts[name] == 0, (name, reference_counts[name])


def test_zoo_silero_vad_counts_the_same_speech_chunks(reference_counts: dict[str, int]) -> None:
    from hoodwink.zoo.silero import chunk_probabilities

    for name in CHUNKS:
        _, pcm = _read(AUDIO / name)
        probs = chunk_probabilities(pcm.float() / 32768)
        assert tuple(probs.shape) == (1, CHUNKS[name])
        assert int((probs >= 0.5).sum()) == reference_counts[name], name


# --------------------------------------------------------------------------- the record
def _record() -> dict[str, Any]:
    if not RECORD.is_file():
        pytest.skip("bench/results/speech.json is not committed")
    data: dict[str, Any] = json.loads(RECORD.read_text(encoding="utf-8"))
    return data


def test_record_rates_are_counts_over_n() -> None:
    record = _record()
    rows, summary = record["rows"], record["summary"]
    assert summary
    seen = 0
    for s in summary:
        group = [r for r in rows if (r["mode"], r["attack"], r["level"], r["level_unit"])
                 == (s["mode"], s["attack"], s["level"], s["level_unit"])]
        seen += len(group)
        n = len(group)
        k = sum(bool(r["success"]) for r in group)
        k_ind = sum(bool(r["success_independent"]) for r in group)
        assert (s["n"], s["successes"], s["successes_independent"]) == (n, k, k_ind)
        assert s["rate"] == k / n and s["rate_independent"] == k_ind / n
        assert s["ci95"] == list(wilson(k, n))
        assert s["ci95_independent"] == list(wilson(k_ind, n))
        assert s["rate_text"] == rate_text(k, n)
        assert s["agree"] == sum(bool(r.get("agree")) for r in group)
    assert seen == len(rows)


def test_record_rows_respect_their_budgets_and_clips() -> None:
    record = _record()
    for r in record["rows"]:
        assert "error" not in r, r
        assert r["max_change_pcm_independent"] <= r["eps_pcm_expected"], r
        assert r["within_budget"] is True
        assert r["agree"] is True, r
        assert r["chunks_independent"] == CHUNKS[r["clip"]]
    for c in record["clips"]:
        digest = hashlib.sha256((AUDIO / c["name"]).read_bytes()).hexdigest()
        assert c["sha256"] == digest, f"{c['name']} changed since the benchmark ran"
        assert c["chunks"] == CHUNKS[c["name"]]


def test_bench_readme_quotes_the_record() -> None:
    record = _record()
    text = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## `speech.py`"):]
    for s in record["summary"]:
        q = f"{s['queries_mean']:.0f}" if s["queries_mean"] is not None else "–"
        frac = s["chunks_on_goal_fraction_mean"]
        per3 = s["wall_s_per_3s_max"]
        row = (f"| {s['mode']} | {s['attack']} | {s['level']:g} {s['level_unit']} "
               f"| {s['rate_text']} | {s['successes_independent']}/{s['n']} "
               f"| {'–' if frac is None else f'{frac:.1%}'} | {s['wall_s_median']:.2f} s "
               f"| {'–' if per3 is None else f'{per3:.2f} s'} | {q} |")
        assert row in section, row
