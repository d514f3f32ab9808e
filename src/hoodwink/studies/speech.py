"""Fool a real speech model on a WAV file, and prove it from disk.

:func:`fool_speech` makes Silero VAD (:mod:`hoodwink.zoo.silero`) read every
speech chunk of a clip as non-speech (``mode="hide"``) or every chunk of
silence or noise as speech (``mode="show"``), with an L∞ perturbation of at
most ``eps``. The result is snapped to the 16-bit grid, encoded as a 16-bit
WAV, decoded again and judged chunk by chunk on *that*, so what is reported is
what is on disk. Files are written only when the attack succeeded, each one
atomically.

The study contract (:mod:`hoodwink.studies`): :func:`run` does the same
attack in memory and returns a plain-data record with the original and the
adversarial WAV inside (base64 text); :func:`report` draws the figure and the
page from that record alone (:mod:`hoodwink.studies.speech_report`).

The budget is a level relative to the signal, as Carlini and Wagner (2018)
measure it: ``dB_x(δ) = 20 log10(max|δ|) − 20 log10(max|x|)``, so
``eps = max|x| · 10^(level_db / 20)``, floored onto the 16-bit grid (a whole
number of steps of 1/32768); or a level relative to full scale (dBFS,
``max|δ| = 10^(level_db / 20)``); or ``eps`` itself in [-1, 1] units.

White box: :class:`~hoodwink.PGD` through the PyTorch rebuild of the
TorchScript model. Black box: any score-based attack of the registry
(``square``, ``simba``, ...) against the wheel's ONNX file through
onnxruntime, with its queries counted by the attacks' query gate.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from hoodwink._validation import check_choice, check_int, check_real
from hoodwink.audio import PCM_SCALE, Waveform, decode_wav, encode_wav, read_wav
from hoodwink.errors import CapabilityError, ConfigError, InputError, InternalError
from hoodwink.models.callable import CallableClassifier
from hoodwink.models.torch import TorchClassifier
from hoodwink.progress import ProgressCallback
from hoodwink.reports import atomic_write_bytes, atomic_write_text, to_jsonable
from hoodwink.studies._record import check_record, to_b64
from hoodwink.studies.speech_report import report

__all__ = ["DEFAULT_QUERIES", "DEFAULT_STEPS", "Mode", "SpeechOutcome", "budget_eps",
           "fool_speech", "report", "run"]

SCHEMA = "hoodwink.speech/1"
Mode = Literal["hide", "show"]
Reference = Literal["signal", "full-scale"]
#: PGD steps by default: about 3 s on a 3-second clip on one CPU thread.
DEFAULT_STEPS = 500
#: Query budget of a black-box attack by default (per clip).
DEFAULT_QUERIES = 2000
#: PGD step length as a fraction of eps (small steps: the recurrent model rewards patience).
_STEP_FRACTION = 0.1
#: Below this peak (-60 dBFS) a level relative to the signal is meaningless.
_QUIET = 1e-3
_TOP = (PCM_SCALE - 1) / PCM_SCALE  # the largest 16-bit sample, 32767 / 32768
_WHITE_BOX = ("pgd",)


@dataclass(frozen=True)
class SpeechOutcome:
    """What :func:`fool_speech` did, judged on the WAV encoded and decoded again.

    ``chunks_target`` counts the chunks that read as the goal after the round
    trip (non-speech for "hide", speech for "show"); ``success`` is
    ``chunks_target == chunks``. ``probs_before``/``probs_after`` are the
    per-chunk speech probabilities. ``level_db`` is the level of the
    perturbation written, relative to the signal's peak (Carlini and Wagner's
    dB_x), and ``max_change_pcm`` its largest sample change in 16-bit steps.
    ``original`` and ``adversarial`` hold the samples (the latter exactly what
    the WAV file decodes to); they are not part of :meth:`to_dict`.
    """

    source: str
    model: str
    mode: Mode
    attack: str
    success: bool
    chunks: int
    chunks_target: int
    speech_chunks_before: int
    speech_chunks_after: int
    probs_before: list[float]
    probs_after: list[float]
    eps: float
    eps_pcm: int
    level_db: float | None
    level_dbfs: float | None
    max_change_pcm: int
    peak_pcm: int
    steps: int | None
    queries: int | None
    max_queries: int | None
    seed: int
    duration_s: float
    time_s: float
    outputs: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    original: torch.Tensor = field(default_factory=lambda: torch.zeros(0), repr=False)
    adversarial: torch.Tensor = field(default_factory=lambda: torch.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (without the samples)."""
        from hoodwink.attacks.result import environment

        d: dict[str, Any] = {"schema": SCHEMA}
        d.update(to_jsonable({k: v for k, v in self.__dict__.items()
                              if k not in ("original", "adversarial")}))
        d["environment"] = environment()
        return d


def budget_eps(peak: float, *, level_db: float | None = None, eps: float | None = None,
               reference: Reference = "signal") -> float:
    """The L∞ budget in [-1, 1] units, floored onto the 16-bit grid.

    Parameters
    ----------
    peak : float
        ``max|x|`` of the clip.
    level_db : float, optional
        Level of the budget in dB (negative): relative to ``peak``
        (``reference="signal"``, Carlini and Wagner's dB_x) or to full scale
        (``"full-scale"``, dBFS).
    eps : float, optional
        The budget itself, in (0, 1]; replaces ``level_db`` when given.
    reference : {"signal", "full-scale"}

    Returns
    -------
    float
        ``k / 32768`` for the largest whole ``k`` within the budget.

    Raises
    ------
    ConfigError
        Neither or an invalid budget; a budget below one 16-bit step; a level
        relative to a (near-)silent clip, whose peak is below -60 dBFS.
    """
    reference = check_choice("fool_speech", "reference", reference, get_args(Reference))
    if eps is not None:
        e = check_real("fool_speech", "eps", eps, low=0, high=1, closed="right",
                       hint="E.g. eps=300/32768 (300 steps of a 16-bit sample).")
        what = f"eps = {e:g}"
    elif level_db is not None:
        level = check_real("fool_speech", "level_db", level_db, high=0, closed="both",
                           hint="A level is negative, e.g. -40 (dB).")
        if not math.isfinite(level):
            raise ConfigError(f"The 'level_db' parameter must be finite. Got {level_db!r}.")
        if reference == "signal":
            if peak < _QUIET:
                raise ConfigError(
                    f"The clip is (nearly) silent (peak {peak * PCM_SCALE:.0f}/32768, below "
                    "-60 dBFS), so a level relative to the signal means nothing. Give the "
                    "budget in PCM units (eps=300/32768; on the command line --eps 300/32768) "
                    "or relative to full scale (reference='full-scale'; --level -40dBFS)."
                )
            e = peak * 10 ** (level / 20)
            what = f"{level:g} dB below the peak {peak * PCM_SCALE:.0f}/32768"
        else:
            e = 10 ** (level / 20)
            what = f"{level:g} dBFS"
    else:
        raise ConfigError("Give a budget: level_db (e.g. -40) or eps (e.g. 300/32768).")
    # A hair above the float: 0.1 * 32768 must stay 3276.8, not lose a step to rounding.
    k = math.floor(e * PCM_SCALE * (1 + 1e-9))
    if k < 1:
        raise ConfigError(
            f"The budget ({what}) is {e * PCM_SCALE:.3g}/32768, below one step of a 16-bit "
            "sample (1/32768), so no change can be written. Give a larger budget."
        )
    return k / PCM_SCALE


def _resolve_model(model: Any, mode: Mode, attack: str) -> tuple[str, Any]:
    """(name, classifier) with the clip decision of ``mode``, fitting ``attack``."""
    from hoodwink.zoo import canonical_name
    from hoodwink.zoo.silero import SileroClip, _OnnxStream, load_silero_vad, load_silero_vad_onnx

    black = attack not in _WHITE_BOX
    if isinstance(model, str):
        name = canonical_name(model)
        if name not in ("silero-vad", "silero-vad-onnx"):
            raise ConfigError(
                f"fool_speech takes a speech model: 'silero-vad' (white box) or "
                f"'silero-vad-onnx' (black box). Got {model!r}, which is not one."
            )
        if name == "silero-vad-onnx" and not black:
            raise CapabilityError(
                "silero-vad-onnx gives scores only, no gradients, so PGD cannot run on it. "
                "Use a black-box attack (attack='square' or 'simba'), or the white-box "
                "model 'silero-vad'."
            )
        if black:
            return "silero-vad-onnx", load_silero_vad_onnx(mode)
        return "silero-vad", load_silero_vad(mode)
    if isinstance(model, TorchClassifier) and isinstance(model.module, SileroClip):
        if black:
            raise CapabilityError(
                f"The black-box attack {attack!r} is meant for the ONNX model; pass "
                "'silero-vad-onnx' (or attack='pgd' for this PyTorch model)."
            )
        clip = model.module
        if clip.goal != mode:
            clip = SileroClip(clip.net, mode, margin=clip.margin,
                              temperature=clip.temperature).eval()
            model = TorchClassifier(clip, bounds=(-1.0, 1.0), levels=model.levels,
                                    class_names=model.class_names, device=model.device,
                                    batch_size=model.batch_size)
        return "silero-vad", model
    if isinstance(model, CallableClassifier) and isinstance(model.fn, _OnnxStream):
        if not black:
            raise CapabilityError(
                "silero-vad-onnx gives scores only, no gradients, so PGD cannot run on it. "
                "Use attack='square' or 'simba'."
            )
        return "silero-vad-onnx", (model if model.fn.goal == mode
                                   else load_silero_vad_onnx(mode))
    raise ConfigError(
        "fool_speech takes 'silero-vad', 'silero-vad-onnx' or a model loaded from them with "
        f"hoodwink.zoo.load; got {type(model).__name__}. The per-chunk judgement needs the "
        "model's chunk probabilities."
    )


def _chunk_probs(clf: Any, x: torch.Tensor) -> torch.Tensor:
    """Per-chunk speech probabilities (C,) of one clip (1, T), by the attacked model itself."""
    if isinstance(clf, TorchClassifier):
        net: Any = clf.module.net
        with clf.evaluating(), torch.no_grad():
            return torch.sigmoid(net(x.to(clf.device)))[0].cpu()
    return torch.from_numpy(clf.fn.probabilities(x.numpy()))[0]


def _on_goal(p: torch.Tensor, mode: Mode) -> torch.Tensor:
    """Which chunks read as the goal: below 0.5 (hide) or at least 0.5 (show)."""
    return p < 0.5 if mode == "hide" else p >= 0.5


def _paths(out: Path) -> dict[str, str]:
    if out.suffix.lower() != ".wav":
        raise ConfigError(
            f"The output must be a .wav file (16-bit PCM, lossless); got {out}. E.g. "
            f"out={out.with_suffix('.wav')}."
        )
    stem = str(out.with_suffix(""))
    return {"adversarial": str(out), "figure": f"{stem}-figure.png", "record": f"{stem}.json"}


def _check_outputs(outputs: dict[str, str], create: bool) -> None:
    from hoodwink.imaging import check_writable
    from hoodwink.reports import check_output_path

    for written in outputs.values():
        p = Path(written)
        if not create and not p.parent.is_dir():
            check_writable(p)
        check_output_path(p, kind="file")


def fool_speech(
    model: str | TorchClassifier | CallableClassifier,
    wav: str | Path | Waveform,
    *,
    mode: Mode = "hide",
    level_db: float | None = -40.0,
    eps: float | None = None,
    reference: Reference = "signal",
    attack: str = "pgd",
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    queries: int | None = None,
    out: str | Path | None = None,
    figure: bool = True,
    create_folders: bool = False,
    progress: ProgressCallback | None = None,
) -> SpeechOutcome:
    """Make Silero VAD miss the speech in a clip (or hear speech in noise), judged from disk.

    Parameters
    ----------
    model : str, TorchClassifier or CallableClassifier
        ``"silero-vad"`` (white box), ``"silero-vad-onnx"`` (black box), or a
        model loaded from them with :func:`hoodwink.zoo.load`. With a
        black-box ``attack``, ``"silero-vad"`` is attacked through its ONNX file.
    wav : path or Waveform
        A 16 kHz mono 16-bit PCM clip (:func:`hoodwink.audio.read_wav`), of
        any length.
    mode : {"hide", "show"}
        "hide": every chunk must read below 0.5 (non-speech); "show": every
        chunk at least 0.5 (speech).
    level_db : float or None, default -40
        The budget as a level in dB, relative to the clip's peak (see the
        module) or, with ``reference="full-scale"``, to full scale.
    eps : float, optional
        The budget in [-1, 1] units (e.g. 300/32768); replaces ``level_db``.
    reference : {"signal", "full-scale"}
        What ``level_db`` is relative to.
    attack : str, default "pgd"
        "pgd" (white box), or a score-based attack of
        :func:`hoodwink.attacks.registry.available` ("square", "simba", ...).
    steps : int, default 500
        PGD steps (ignored by black-box attacks).
    seed : int
    queries : int, optional
        Query budget of a black-box attack per clip (default 2000).
    out : path, optional
        The adversarial WAV; ``<stem>-figure.png`` and ``<stem>.json`` go
        beside it. Written only on success. None writes nothing.
    figure : bool
        Draw (and write) the figure.
    create_folders : bool
        Create missing folders above ``out`` (only once the attack succeeded).
    progress : callable, optional
        ``progress(done, total, message)`` for PGD's steps.

    Returns
    -------
    SpeechOutcome
        ``success`` False when the budget was not enough (nothing written).

    Raises
    ------
    InputError
        An unreadable or unsuitable WAV; a clip already at the goal (nothing
        to hide or to show).
    ConfigError
        A bad parameter or output path (checked before any work).
    CapabilityError
        PGD on the scores-only ONNX model.
    """
    from hoodwink.attacks import registry
    from hoodwink.attacks.pgd import PGD

    t0 = time.perf_counter()
    mode = check_choice("fool_speech", "mode", mode, get_args(Mode))
    attack = check_choice("fool_speech", "attack", attack.strip().lower() if isinstance(
        attack, str) else attack, tuple(i.name for i in registry.available()
                                       if i.threat in ("white-box", "scores")))
    if attack not in _WHITE_BOX and registry.get(attack).threat == "white-box":
        raise ConfigError(f"fool_speech runs 'pgd' or a score-based attack; got {attack!r}.")
    steps = check_int("fool_speech", "steps", steps, low=1, high=1_000_000)
    seed = check_int("fool_speech", "seed", seed, low=0)
    black = attack not in _WHITE_BOX
    max_q = check_int("fool_speech", "queries", queries if queries is not None
                      else DEFAULT_QUERIES, low=2, high=10**9) if black else None
    outputs = _paths(Path(out)) if out is not None else {}
    if outputs and not figure:
        del outputs["figure"]
    _check_outputs(outputs, create_folders)
    if isinstance(wav, Waveform):
        if wav.rate != 16000:
            raise InputError(
                f"The waveform is sampled at {wav.rate} Hz; Silero VAD takes 16 kHz. Resample "
                "it first (ffmpeg -i in.wav -ac 1 -ar 16000 -sample_fmt s16 out.wav)."
            )
        clip = wav
    else:
        clip = read_wav(wav)
    x = clip.samples.float()[None]
    if not bool(((x * PCM_SCALE) == torch.round(x * PCM_SCALE)).all()) or x.abs().max() > 1:
        raise InputError("The waveform's samples must lie on the 16-bit grid k/32768 in [-1, 1]; "
                         "read it with hoodwink.audio.read_wav.")
    peak = float(x.abs().max())
    e = budget_eps(peak, level_db=level_db, eps=eps, reference=reference)
    name, clf = _resolve_model(model, mode, attack)
    t_load = time.perf_counter()
    p0 = _chunk_probs(clf, x)
    goal0 = _on_goal(p0, mode)
    if bool(goal0.all()):
        what = ("no chunk reads as speech: there is nothing to hide" if mode == "hide"
                else "every chunk reads as speech already: there is nothing to show")
        raise InputError(f"In {clip.source} {what}. Try mode="
                         f"{'show' if mode == 'hide' else 'hide'!r}.")
    y0 = torch.tensor([1 if mode == "hide" else 0])
    atk: Any
    if black:
        atk = registry.make(attack, norm="linf", max_queries=max_q, seed=seed)
    else:
        # "show" starts from a random point of the ball: at exact digital silence the
        # model's spectral magnitude is flat (zero gradient), so PGD could not move.
        atk = PGD(norm="linf", steps=steps, stepsize=e * _STEP_FRACTION,
                  random_start=mode == "show", early_stop=True, loss="margin", seed=seed)
    t1 = time.perf_counter()
    res = atk(clf, x, y0, eps=e, progress=progress) if progress is not None \
        else atk(clf, x, y0, eps=e)
    t2 = time.perf_counter()
    # 16-bit PCM has no +32768: a sample the attack pushed to +1.0 is written as 32767, which
    # is closer to the clip (whose samples are at most 32767) and so stays within eps.
    x_adv = res.x_adv.detach().cpu().clamp(max=_TOP)
    wav_bytes = encode_wav(x_adv[0])
    back = decode_wav(wav_bytes, source="<adversarial>").samples[None]
    if not torch.equal(back, x_adv):
        raise InternalError("The adversarial clip did not survive the 16-bit WAV round trip "
                            "unchanged; this is a hoodwink bug.")
    delta = (back - x).abs().max()
    change = int(torch.round(delta * PCM_SCALE))
    if change > round(e * PCM_SCALE):
        raise InternalError(f"The perturbation written ({change}/32768) exceeds the budget "
                            f"({e * PCM_SCALE:.0f}/32768); this is a hoodwink bug.")
    p1 = _chunk_probs(clf, back)
    goal1 = _on_goal(p1, mode)
    ok = bool(goal1.all())
    t3 = time.perf_counter()
    d = float(delta)
    level = 20 * math.log10(d / peak) if d > 0 and peak > 0 else -math.inf
    fields: dict[str, Any] = dict(
        source=clip.source, model=name, mode=mode, attack=attack, success=ok,
        chunks=int(p1.numel()), chunks_target=int(goal1.sum()),
        speech_chunks_before=int((p0 >= 0.5).sum()), speech_chunks_after=int((p1 >= 0.5).sum()),
        probs_before=[round(float(v), 6) for v in p0], probs_after=[round(float(v), 6) for v in p1],
        eps=e, eps_pcm=round(e * PCM_SCALE), level_db=round(level, 3) if d > 0 else None,
        level_dbfs=round(20 * math.log10(d), 3) if d > 0 else None, max_change_pcm=change,
        peak_pcm=round(peak * PCM_SCALE), steps=None if black else steps,
        queries=int(res.queries[0]) if black and res.queries is not None else None,
        max_queries=max_q, seed=seed, duration_s=round(clip.duration_s, 4),
        original=x[0], adversarial=back[0],
    )
    timing = {"model_load": t_load - t0, "attack": t2 - t1, "wav_roundtrip": t3 - t2}
    if ok and outputs:
        if create_folders:
            from hoodwink.imaging import make_parent

            make_parent(outputs["adversarial"])
        fig = None
        if figure:
            from hoodwink.studies.speech_report import figure as draw

            t_fig = time.perf_counter()
            fig = draw(x[0], back[0], p0, p1, mode=mode, model=name, eps_pcm=fields["eps_pcm"],
                       level_db=level, title=Path(clip.source).name)
            timing["figure"] = time.perf_counter() - t_fig
        atomic_write_bytes(outputs["adversarial"], wav_bytes)
        if fig is not None:
            atomic_write_bytes(outputs["figure"], fig)
    else:
        outputs = {}
    now = time.perf_counter()
    timing["total"] = now - t0
    outcome = SpeechOutcome(**fields, time_s=now - t0, outputs=outputs,
                            timings_s={k: round(v, 4) for k, v in timing.items()})
    if ok and outputs:
        atomic_write_text(outputs["record"], json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome


def run(
    model: str | TorchClassifier | CallableClassifier,
    wav: str | Path | Waveform,
    *,
    mode: Mode = "hide",
    level_db: float | None = -40.0,
    eps: float | None = None,
    reference: Reference = "signal",
    attack: str = "pgd",
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    queries: int | None = None,
    stem: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """:func:`fool_speech` in memory: the record, with both WAVs inside; nothing is written.

    Parameters
    ----------
    model, wav, mode, level_db, eps, reference, attack, steps, seed, queries, progress
        As in :func:`fool_speech`.
    stem : str, optional
        File names in the record: ``<stem>.wav`` and ``<stem>-figure.png``;
        default ``<clip stem>-adv``, the names ``hoodwink fool`` writes.

    Returns
    -------
    dict
        Data only: the fields of :meth:`SpeechOutcome.to_dict`, plus
        ``source_name``, ``wavs`` (``original`` and ``adversarial``, each
        with its ``wav`` as base64; the adversarial one with its ``file``
        name) and ``figure`` (the figure's file name). Also on failure, with
        ``success`` False.
    """
    res = fool_speech(model, wav, mode=mode, level_db=level_db, eps=eps, reference=reference,
                      attack=attack, steps=steps, seed=seed, queries=queries, figure=False,
                      progress=progress)
    name = Path(res.source).name
    file_stem = stem if stem is not None else f"{Path(res.source).stem}-adv"
    rec = res.to_dict()
    rec.update(
        source_name=name,
        wavs={"original": {"wav": to_b64(encode_wav(res.original))},
              "adversarial": {"file": f"{file_stem}.wav",
                              "wav": to_b64(encode_wav(res.adversarial))}},
        figure=f"{file_stem}-figure.png",
    )
    return check_record(rec, "speech.run")
