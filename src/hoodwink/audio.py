"""16-bit PCM WAV files in and out, exactly: :func:`read_wav` and :func:`write_wav`.

The speech domain's equivalent of 8-bit PNG images. A sample of a 16-bit
PCM file is an integer ``k`` in [-32768, 32767]; hoodwink reads it as the
float ``k / 32768`` (exact in float32) and writes a float ``x`` as
``round(x * 32768)`` clipped to that range, so a waveform on the 16-bit grid
survives a write and a read bit for bit. ``1 / 32768`` is the smallest change
a 16-bit recording can hold, as ``1 / 255`` is for an 8-bit pixel.

Only what the speech models take is read: mono, 16-bit PCM, 16 kHz (or
another ``rate`` when asked). Anything else (an empty file, 8-, 24- or 32-bit
samples, floating-point samples, stereo, another sample rate, a truncated or
corrupt file) is an :class:`~hoodwink.errors.InputError` naming the problem
and the ``ffmpeg`` (or ``sox``) line that converts the file. Nothing is
resampled or mixed down silently.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoodwink._validation import check_int
from hoodwink.errors import InputError, ShapeError

__all__ = ["PCM_SCALE", "Waveform", "decode_wav", "encode_wav", "read_wav", "write_wav"]

#: Full scale of 16-bit PCM: sample ``k`` is the float ``k / PCM_SCALE``.
PCM_SCALE = 32768
#: The sample rate the speech models take.
_RATE = 16000
_INT16_MIN, _INT16_MAX = -32768, 32767


def _fix(path: str, rate: int) -> str:
    out = Path(path).with_suffix("").name + "-16k.wav"
    return (f"Convert it first: ffmpeg -i {path} -ac 1 -ar {rate} -sample_fmt s16 {out} "
            f"(or: sox {path} -r {rate} -c 1 -b 16 {out}).")


@dataclass(frozen=True)
class Waveform:
    """A mono 16-bit recording, as floats on the 16-bit grid.

    Parameters
    ----------
    samples : torch.Tensor, shape (T,), float32
        Values ``k / 32768`` with integer ``k`` in [-32768, 32767].
    rate : int
        Samples per second.
    source : str
        Where the samples came from (a path, or ``"<bytes>"``).
    """

    samples: torch.Tensor
    rate: int
    source: str

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return int(self.samples.shape[0]) / self.rate


def decode_wav(data: bytes, *, source: str = "<bytes>", rate: int | None = _RATE) -> Waveform:
    """Decode the bytes of a 16-bit PCM mono WAV file.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        Named in error messages and kept in the result.
    rate : int or None, default 16000
        The sample rate required; None accepts any.

    Returns
    -------
    Waveform

    Raises
    ------
    InputError
        Not a WAV file, empty, truncated, not 16-bit PCM, not mono, or not at
        ``rate``; the message names the conversion command.
    """
    if rate is not None:
        rate = check_int("decode_wav", "rate", rate, low=1)
    fix = _fix(source, rate or _RATE)
    if len(data) == 0:
        raise InputError(f"{source} is empty (0 bytes), not a WAV file.")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, fr, frames = (w.getnchannels(), w.getsampwidth(),
                                           w.getframerate(), w.getnframes())
            raw = w.readframes(frames)
    except (wave.Error, EOFError) as exc:
        why = str(exc)
        if "unknown format" in why:
            why = (f"{why}: only integer PCM is read (format 1), not floating-point (3) or "
                   "compressed samples")
        raise InputError(f"{source} is not a 16-bit PCM WAV file that can be read ({why}). "
                         f"{fix}") from exc
    if width != 2:
        raise InputError(
            f"{source} has {8 * width}-bit samples; hoodwink reads 16-bit PCM only (the grid "
            f"its speech models are attacked on). {fix}"
        )
    if channels != 1:
        kind = "stereo" if channels == 2 else f"{channels} channels"
        raise InputError(f"{source} is {kind}; the speech models take mono audio. {fix}")
    if rate is not None and fr != rate:
        raise InputError(
            f"{source} is sampled at {fr} Hz; the model takes {rate} Hz and hoodwink does not "
            f"resample silently. {fix}"
        )
    if frames == 0:
        raise InputError(f"{source} holds no samples (an empty recording).")
    if len(raw) != frames * 2:
        raise InputError(
            f"{source} is truncated: its header announces {frames} samples but only "
            f"{len(raw) // 2} are there. Re-export the file. {fix}"
        )
    ints = np.frombuffer(raw, dtype="<i2")
    samples = torch.from_numpy(ints.astype(np.float32) / np.float32(PCM_SCALE))
    return Waveform(samples=samples, rate=fr, source=source)


def read_wav(path: str | Path, *, rate: int | None = _RATE) -> Waveform:
    """Read a 16-bit PCM mono WAV file.

    Parameters
    ----------
    path : str or Path
    rate : int or None, default 16000
        The sample rate required (the speech models take 16 kHz); None
        accepts any.

    Returns
    -------
    Waveform
        ``samples`` are ``k / 32768`` for the file's integers ``k``.

    Raises
    ------
    InputError
        The file is missing or unreadable, empty, truncated, not 16-bit PCM,
        not mono, or not at ``rate``; the message names the ``ffmpeg`` (and
        ``sox``) command that converts it.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "a.wav"
    >>> write_wav(p, torch.tensor([0.0, 0.5, -1.0]))
    >>> read_wav(p).samples.tolist()
    [0.0, 0.5, -1.0]
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"No such file: {p}.") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{p} is a folder; give a .wav file.") from exc
    except OSError as exc:
        raise InputError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    return decode_wav(data, source=str(p), rate=rate)


def _int16(samples: Any) -> np.ndarray:
    """``samples`` (1-D floats in [-1, 1]) as int16 ``round(x * 32768)``, clipped."""
    if isinstance(samples, torch.Tensor):
        if not samples.is_floating_point():
            raise ShapeError(f"samples have dtype {samples.dtype}; give floats in [-1, 1].")
        arr = samples.detach().cpu().double().numpy()
    elif isinstance(samples, np.ndarray) and samples.dtype.kind == "f":
        arr = samples.astype(np.float64)
    else:
        raise InputError(
            f"samples must be a 1-D float torch.Tensor or NumPy array; got "
            f"{type(samples).__name__}."
        )
    if arr.ndim != 1 or arr.size == 0:
        raise ShapeError(
            f"samples have shape {arr.shape}; give one non-empty channel of shape (T,)."
        )
    if not np.isfinite(arr).all():
        raise InputError("samples contain NaN or infinite values.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
        raise InputError(
            f"samples lie in [{lo:.4g}, {hi:.4g}], outside [-1, 1], the range of a WAV file. "
            "Scale them first (e.g. x / x.abs().max())."
        )
    ints: np.ndarray = np.clip(np.round(arr * PCM_SCALE), _INT16_MIN, _INT16_MAX).astype("<i2")
    return ints


def encode_wav(samples: torch.Tensor | np.ndarray, rate: int = _RATE) -> bytes:
    """The bytes of a 16-bit PCM mono WAV file holding ``samples``.

    Parameters
    ----------
    samples : torch.Tensor or numpy.ndarray, shape (T,), float
        In [-1, 1]. Written as ``round(x * 32768)`` clipped to [-32768, 32767]
        (so +1.0 becomes 32767 / 32768, the largest 16-bit sample).
    rate : int, default 16000

    Returns
    -------
    bytes

    Raises
    ------
    InputError, ShapeError
        Not a non-empty 1-D float array of finite values in [-1, 1].
    """
    rate = check_int("encode_wav", "rate", rate, low=1, high=2**31 - 1)
    ints = _int16(samples)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, samples: torch.Tensor | np.ndarray, rate: int = _RATE) -> None:
    """Write ``samples`` as a 16-bit PCM mono WAV file, atomically.

    Parameters
    ----------
    path : str or Path
        The folder must exist. The file appears complete or not at all.
    samples : torch.Tensor or numpy.ndarray, shape (T,), float
        In [-1, 1]; see :func:`encode_wav` for the conversion.
    rate : int, default 16000

    Raises
    ------
    InputError, ShapeError
        Bad samples (see :func:`encode_wav`).
    ConfigError
        The file cannot be written.
    """
    from hoodwink.reports import atomic_write_bytes

    atomic_write_bytes(path, encode_wav(samples, rate))
