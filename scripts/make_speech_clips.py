"""Synthesise the speech clips of ``examples/audio/`` with espeak-ng, and the two non-speech files.

Writes, into ``examples/audio/`` (or ``--out``)::

    speech-01.wav ... speech-10.wav   English sentences, one espeak-ng voice each
    noise.wav                         63 chunks (2.016 s) of seeded white noise, RMS -50 dBFS
    silence.wav                       32 chunks (1.024 s) of digital zeros, then 31 chunks
                                      (0.992 s) of white noise at RMS -84 dBFS (about 2 LSB)

every one a 16 kHz mono 16-bit PCM WAV whose length is a whole number of
512-sample chunks (the window silero-vad scores at 16 kHz).

Each speech clip is made in four steps:

1. ``espeak-ng -v VOICE -s WPM -p PITCH -w raw.wav TEXT`` (espeak-ng writes
   22,050 Hz mono 16-bit PCM);
2. resampled to 16,000 Hz with :func:`scipy.signal.resample_poly` (up 320, down
   441: 22,050 · 320/441 = 16,000 exactly; scipy's default Kaiser-windowed FIR,
   beta 5.0, which also low-pass filters below the new Nyquist frequency);
3. peak-normalised to -6 dBFS (``max|x| = 0.5``) so every clip has the same
   level whatever the voice;
4. padded with zeros at the end to a multiple of 512 samples and written as
   int16 = round(x · 32768) with the stdlib ``wave`` module.

The noise files use ``numpy.random.default_rng(SEED)``; nothing here touches a
global generator. The run is deterministic for a given espeak-ng build: with
``--check`` the files are regenerated in a temporary folder and compared byte
for byte with the committed ones (a different espeak-ng version may change the
speech clips; the noise files never change).

Needs Debian's ``espeak-ng`` (``apt-get install espeak-ng``; 1.51 was used)
and scipy. ``--vad`` also scores every file with silero-vad
(``pip install silero-vad==6.2.3``), chunk by chunk, and prints the number of
chunks that read as speech (probability >= 0.5).

Usage::

    python scripts/make_speech_clips.py [--out examples/audio] [--check] [--vad]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "examples" / "audio"
RATE = 16_000
ESPEAK_RATE = 22_050
UP, DOWN = 320, 441
CHUNK = 512
PEAK = 0.5
SEED = 0
NOISE_RMS_DBFS = -50.0
FLOOR_RMS_DBFS = -84.0
MIN_S, MAX_S = 2.0, 4.0


@dataclass(frozen=True)
class Clip:
    """One espeak-ng utterance: file name, voice (language+variant), words per minute, pitch."""

    name: str
    voice: str
    wpm: int
    pitch: int
    text: str


CLIPS = (
    Clip("speech-01.wav", "en-us", 165, 50, "The little boat drifted slowly across the lake."),
    Clip("speech-02.wav", "en-gb+f3", 150, 60, "Please remember to water the plants on Friday."),
    Clip("speech-03.wav", "en-us+f2", 175, 70, "Seven green apples fell from the old tree."),
    Clip("speech-04.wav", "en-gb-scotland+m3", 140, 40, "Open the window, it is warm in here."),
    Clip("speech-05.wav", "en-029+f4", 160, 55, "We will meet at the station at half past nine."),
    Clip("speech-06.wav", "en-gb-x-rp+m1", 180, 35,
         "Turn left at the second light and keep going."),
    Clip("speech-07.wav", "en-us+f5", 130, 65, "Where did you put the blue notebook?"),
    Clip("speech-08.wav", "en-us-nyc+m5", 190, 45,
         "Twelve small boxes were stacked beside the kitchen door."),
    Clip("speech-09.wav", "en-gb+f1", 145, 50, "The weather tomorrow will be cold and windy."),
    Clip("speech-10.wav", "en-gb-x-gbclan+m2", 170, 30, "Can you hear me clearly on this line?"),
)


def espeak_command(clip: Clip, wav: Path) -> list[str]:
    """The espeak-ng command line that synthesises ``clip`` into ``wav`` (22,050 Hz)."""
    return ["espeak-ng", "-v", clip.voice, "-s", str(clip.wpm), "-p", str(clip.pitch),
            "-w", str(wav), clip.text]


def read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    """Samples of a mono 16-bit PCM WAV as float64 in [-1, 1), and its rate."""
    with wave.open(str(path), "rb") as f:
        if f.getnchannels() != 1 or f.getsampwidth() != 2:
            raise SystemExit(f"{path}: expected mono 16-bit PCM, got {f.getnchannels()} "
                             f"channel(s) of {8 * f.getsampwidth()} bits")
        rate = f.getframerate()
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return data.astype(np.float64) / 32768.0, rate


def write_pcm16(path: Path, x: np.ndarray) -> None:
    """Write ``x`` (float in [-1, 1]) as 16 kHz mono int16 = round(x · 32768), clipped."""
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(pcm.tobytes())


def pad_to_chunks(x: np.ndarray) -> np.ndarray:
    """``x`` with zeros appended up to a whole number of :data:`CHUNK`-sample chunks."""
    n = -(-x.size // CHUNK) * CHUNK
    return np.concatenate([x, np.zeros(n - x.size)])


def synthesise(clip: Clip, tmp: Path) -> np.ndarray:
    """One speech clip at 16 kHz, peak -6 dBFS, padded to whole chunks (float64)."""
    raw = tmp / f"raw-{clip.name}"
    subprocess.run(espeak_command(clip, raw), check=True, capture_output=True)
    x, rate = read_pcm16(raw)
    if rate != ESPEAK_RATE:
        raise SystemExit(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_RATE}; change UP/DOWN")
    y = resample_poly(x, UP, DOWN)
    y = y * (PEAK / np.abs(y).max())
    return pad_to_chunks(y)


def noise(chunks: int, rms_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """``chunks`` chunks of white Gaussian noise with RMS ``rms_dbfs`` (full scale 1.0)."""
    return rng.normal(0.0, 10 ** (rms_dbfs / 20), chunks * CHUNK)


def make_all(out: Path) -> dict[str, np.ndarray]:
    """Write every file into ``out``; return the float samples written, by name."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed. On Debian or Ubuntu: "
                         "sudo apt-get install espeak-ng (1.51 made the committed clips)")
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in CLIPS:
            made[clip.name] = synthesise(clip, Path(tmp))
    rng = np.random.default_rng(SEED)
    made["noise.wav"] = noise(63, NOISE_RMS_DBFS, rng)
    made["silence.wav"] = np.concatenate([np.zeros(32 * CHUNK), noise(31, FLOOR_RMS_DBFS, rng)])
    for name, x in made.items():
        seconds = x.size / RATE
        if name.startswith("speech-") and not MIN_S <= seconds <= MAX_S:
            raise SystemExit(f"{name} lasts {seconds:.2f} s, outside [{MIN_S}, {MAX_S}] s; "
                             "shorten its sentence or change its speed")
        write_pcm16(out / name, x)
    return made


def vad_counts(folder: Path, names: list[str]) -> dict[str, tuple[int, int, float]]:
    """Speech chunks, chunks and max probability per file, from silero-vad chunk by chunk."""
    import torch
    from silero_vad import load_silero_vad

    model = load_silero_vad()
    counts: dict[str, tuple[int, int, float]] = {}
    for name in names:
        x, _ = read_pcm16(folder / name)
        model.reset_states()
        with torch.no_grad():
            probs = [float(model(torch.from_numpy(c).float(), RATE))
                     for c in x.reshape(-1, CHUNK)]
        counts[name] = (sum(p >= 0.5 for p in probs), len(probs), max(probs))
    return counts


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    p.add_argument("--check", action="store_true",
                   help="regenerate in a temporary folder and compare with --out byte for byte")
    p.add_argument("--vad", action="store_true", help="score every file with silero-vad")
    args = p.parse_args(argv)
    names = [c.name for c in CLIPS] + ["noise.wav", "silence.wav"]
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            make_all(Path(tmp))
            differ = [n for n in names if _sha256(Path(tmp) / n) != _sha256(args.out / n)]
        print("identical" if not differ else f"differ: {', '.join(differ)}")
        return 1 if differ else 0
    made = make_all(args.out)
    counts = vad_counts(args.out, names) if args.vad else {}
    total = 0
    for name in names:
        size = (args.out / name).stat().st_size
        total += size
        line = f"{name:14} {made[name].size / RATE:5.2f} s {size:7d} B  {_sha256(args.out / name)}"
        if name in counts:
            k, n, top = counts[name]
            line += f"  speech chunks {k:3d}/{n:3d} (max p {top:.3f})"
        print(line)
    print(f"total {total} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
