"""The speech study's figure and page: what the clip looks like and what the model heard.

:func:`figure` draws the PNG :func:`hoodwink.studies.speech.fool_speech`
writes; :func:`report` draws the page and the figure of a record made by
:func:`hoodwink.studies.speech.run`, from the record alone.

Four rows, drawn with matplotlib's Agg canvas (no pyplot, no global state):
the waveform before and after (they overlap: the change is small), the
spectrograms before and after, the per-chunk speech probability before and
after with the model's threshold 0.5, and the perturbation: 20 ms of it
amplified to fill the plot, with its level, and its spectrogram on the same
scale as the clip's.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hoodwink.errors import MissingDependencyError

__all__ = ["figure", "report"]

_RATE = 16000
_CHUNK = 512
_DPI = 100


def _canvas(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The speech figure needs matplotlib: pip install 'hoodwink[images]'."
        ) from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _spectrogram_db(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Magnitude spectrogram in dB (full scale), shape (n_fft // 2 + 1, frames)."""
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)).T
    out: np.ndarray = 20 * np.log10(np.maximum(spec / (n_fft / 4), 1e-6))
    return out


def figure(
    original: torch.Tensor,
    adversarial: torch.Tensor,
    probs_before: torch.Tensor | Sequence[float],
    probs_after: torch.Tensor | Sequence[float],
    *,
    mode: str,
    model: str,
    eps_pcm: int,
    level_db: float,
    title: str = "",
) -> bytes:
    """The figure as PNG bytes.

    Parameters
    ----------
    original, adversarial : torch.Tensor, shape (T,)
        The clip and the adversarial clip (as read back from the WAV).
    probs_before, probs_after : sequence of float, length C
        Per-chunk speech probabilities.
    mode : {"hide", "show"}
    model : str
    eps_pcm : int
        The budget in 16-bit steps.
    level_db : float
        The level of the perturbation relative to the clip's peak.
    title : str
        Usually the file name.

    Returns
    -------
    bytes
        A PNG image.
    """
    x = original.detach().cpu().double().numpy()
    xa = adversarial.detach().cpu().double().numpy()
    pb = np.asarray(probs_before, dtype=np.float64)
    pa = np.asarray(probs_after, dtype=np.float64)
    t = np.arange(x.size) / _RATE
    fig = _canvas(11, 10)
    grid = fig.add_gridspec(4, 2, height_ratios=[1, 1.3, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    ax.plot(t, x, lw=0.5, color="tab:blue", label="original")
    ax.plot(t, xa, lw=0.5, color="tab:orange", alpha=0.7, label="adversarial")
    ax.set_xlim(0, max(t[-1], 1 / _RATE))
    ax.set_ylabel("amplitude")
    ax.legend(loc="upper right", fontsize=8)
    goal = "every chunk non-speech" if mode == "hide" else "every chunk speech"
    ax.set_title(f"{title}: {model}, {mode} speech ({goal}); budget {eps_pcm}/32768",
                 fontsize=10)
    duration = x.size / _RATE
    for col, (sig, name) in enumerate(((x, "original"), (xa, "adversarial"))):
        axs = fig.add_subplot(grid[1, col])
        spec = _spectrogram_db(sig)
        axs.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=0,
                   extent=(0, duration, 0, _RATE / 2000))
        axs.set_title(f"spectrogram, {name}", fontsize=9)
        axs.set_ylabel("kHz")
    axp = fig.add_subplot(grid[2, :])
    centres = (np.arange(pb.size) + 0.5) * _CHUNK / _RATE
    axp.step(centres, pb, where="mid", color="tab:blue", label="before")
    axp.step(centres, pa, where="mid", color="tab:orange", label="after (read from the WAV)")
    axp.axhline(0.5, color="grey", ls="--", lw=0.8)
    axp.set_ylim(-0.02, 1.02)
    axp.set_xlim(0, max(duration, centres[-1] + _CHUNK / _RATE / 2))
    axp.set_ylabel("P(speech) per chunk")
    before = int((pb >= 0.5).sum())
    after = int((pa >= 0.5).sum())
    axp.set_title(f"speech chunks: {before} of {pb.size} before, {after} after", fontsize=9)
    axp.legend(loc="upper right", fontsize=8)
    delta = xa - x
    peak = float(np.abs(delta).max())
    gain = 1.0 / peak if peak > 0 else 1.0
    # 20 ms around the largest change: at full length the amplified noise is a solid band.
    mid = int(np.abs(delta).argmax())
    lo, hi = max(0, mid - 160), min(x.size, mid + 160)
    axd = fig.add_subplot(grid[3, 0])
    axd.plot(t[lo:hi] * 1000, delta[lo:hi] * gain, lw=0.8, color="tab:red")
    axd.set_ylim(-1.05, 1.05)
    axd.set_xlabel("milliseconds")
    shown = f"{level_db:.1f} dB" if math.isfinite(level_db) else "none"
    axd.set_title(f"perturbation x{gain:.0f}, 20 ms (max {round(peak * 32768)}/32768, {shown} "
                  "re the clip's peak)", fontsize=9)
    axs = fig.add_subplot(grid[3, 1])
    axs.imshow(_spectrogram_db(delta), origin="lower", aspect="auto", cmap="magma", vmin=-100,
               vmax=0, extent=(0, duration, 0, _RATE / 2000))
    axs.set_title("spectrogram of the perturbation (same scale)", fontsize=9)
    axs.set_ylabel("kHz")
    axs.set_xlabel("seconds")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def report(rec: Any) -> Any:
    """The page and the figure of a speech record, from the record alone.

    Parameters
    ----------
    rec : dict
        From :func:`hoodwink.studies.speech.run`, or its JSON read back: the
        original and the adversarial WAV travel in it as base64 text (the very
        bytes the probabilities were measured on).

    Returns
    -------
    Rendered
        Figures: the adversarial WAV under ``wavs["adversarial"]["file"]`` and
        the figure under ``rec["figure"]``.
    """
    from hoodwink.audio import decode_wav
    from hoodwink.reports import Report
    from hoodwink.studies._record import Rendered, from_b64

    wavs = rec["wavs"]
    orig = from_b64(wavs["original"]["wav"])
    adv = from_b64(wavs["adversarial"]["wav"])
    x = decode_wav(orig, source="original").samples
    xa = decode_wav(adv, source="adversarial").samples
    level = rec["level_db"] if rec["level_db"] is not None else -math.inf
    png = figure(x, xa, rec["probs_before"], rec["probs_after"], mode=str(rec["mode"]),
                 model=str(rec["model"]), eps_pcm=int(rec["eps_pcm"]), level_db=float(level),
                 title=str(rec["source_name"]))
    body = {k: v for k, v in rec.items() if k not in ("environment", "schema", "wavs")}
    goal = "non-speech" if rec["mode"] == "hide" else "speech"
    rep = Report("speech", f"Fooling {rec['model']} on {rec['source_name']}", body)
    q = f", {rec['queries']} of {rec['max_queries']} queries" if rec["queries"] is not None \
        else f", {rec['steps']} PGD steps at most"
    rep.text(
        f"{rec['model']} hears speech in {rec['speech_chunks_before']} of {rec['chunks']} "
        f"chunks of {rec['source_name']} ({rec['duration_s']:g} s). {rec['attack']} (L∞, "
        f"seed {rec['seed']}{q}) aimed at {goal} in every chunk within {rec['eps_pcm']}/32768; "
        f"the result, saved as a 16-bit WAV and read back, reads as {goal} in "
        f"{rec['chunks_target']} of {rec['chunks']} chunks. Largest change on disk: "
        f"{rec['max_change_pcm']}/32768"
        + (f" ({rec['level_db']:.1f} dB relative to the clip's peak)."
           if rec["level_db"] is not None else ".")
        + (" Success." if rec["success"] else " Not fooled.")
    )
    rep.figure(rec["figure"], "Waveforms, spectrograms and per-chunk speech probability before "
                              "and after (read from the WAV), and the perturbation.")
    rep.table(["phase", "seconds"], [[k.replace("_", " "), v]
                                     for k, v in rec["timings_s"].items()])
    return Rendered(rep, {wavs["adversarial"]["file"]: adv, rec["figure"]: png})
