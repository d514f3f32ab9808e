"""Hiding speech from silero-vad, and showing it in noise and silence, on the bundled clips.

On every speech clip of ``examples/audio/`` (``speech-*.wav``, 16 kHz mono
16-bit), ``hoodwink.studies.speech.fool_speech`` runs:

``hide``
    white-box PGD through ``zoo.load("silero-vad")`` at each level of
    ``--levels`` (dB relative to the clip's peak, Carlini & Wagner 2018:
    ``max|δ| <= max|x| · 10^(L/20)``), goal: every 512-sample chunk reads below
    0.5 after the 16-bit WAV round trip;
``blackbox``
    the same goal through ``zoo.load("silero-vad-onnx")`` (onnxruntime, scores
    only) with score-based attacks (``--bb-attack square,simba``; L∞) and a budget
    of ``--bb-queries`` model calls per clip, at each level of ``--bb-levels``;
``show``
    on ``noise.wav`` and ``silence.wav``, white-box PGD at each full-scale level
    of ``--show-levels`` (dBFS: ``max|δ| <= 10^(L/20)``, floored onto the 16-bit
    grid and passed as ``eps``), goal: every chunk reads as speech.

Each result is checked twice: ``fool_speech`` judges the clip encoded as a
16-bit WAV and decoded again (``outcome.success``), and this script reads the
WAV it wrote (on a failure, which writes nothing, ``outcome.adversarial``
written here with the stdlib) back with the stdlib ``wave`` module, checks its
format and that ``max|δ|`` in PCM units is within the budget, and scores it
chunk by chunk with silero-vad's own JIT model (``silero_vad.load_silero_vad()``,
fresh state per clip, ``model(chunk, 16000)`` per 512-sample chunk), not
through hoodwink. Both verdicts, and whether they agree, are in every row.
``fool_speech`` runs with ``figure=False``: the figure is drawing, not attack.

Per group (mode, attack, level): the fraction of clips with every chunk at the
goal, with its count and Wilson 95% interval (``hoodwink.stats``, n < 100),
wall time per clip (the whole ``fool_speech`` call: attack, WAV write, re-read,
re-check), and for the black-box attack the queries per clip. Targets: every
speech chunk hidden on >= 90% of the clips at <= -40 dB, and <= 10 s per
3-second clip.

Usage::

    OMP_NUM_THREADS=1 python bench/speech.py [--levels -30,-35,-40] [--show-levels ...]
        [--bb-attack square,simba] [--bb-queries 2000] [--bb-levels -30,-35,-40]
        [--steps N] [--only hide,show,blackbox] [--clips speech-01,speech-02]
        [--threads 1] [--out bench/results/speech.json]

Writes ``bench/results/speech.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib.metadata
import inspect
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blackbox import _jsonable  # noqa: E402
from overhead import machine_facts  # noqa: E402

from hoodwink.stats import rate_text, wilson  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "examples" / "audio"
RESULTS = Path(__file__).resolve().parent / "results" / "speech.json"
RATE = 16_000
CHUNK = 512
THRESHOLD = 0.5
SEED = 0
LEVELS = (-30.0, -35.0, -40.0)
SHOW_LEVELS = (-30.0, -35.0, -40.0)
BB_ATTACK = "square"
BB_QUERIES = 2000
PARTS = ("hide", "show", "blackbox")
NON_SPEECH = ("noise.wav", "silence.wav")
#: Targets (issue 12): every speech chunk hidden on at least this fraction of the clips at
#: a level of TARGET_LEVEL dB or below, in at most TARGET_S seconds per 3 s of audio.
TARGET_RATE = 0.9
TARGET_LEVEL = -40.0
TARGET_S = 10.0


# --------------------------------------------------------------------------- the WAV files
def read_pcm(path: Path) -> list[int]:
    """The int16 samples of a 16 kHz mono 16-bit PCM WAV, read with the stdlib ``wave``."""
    with wave.open(str(path), "rb") as f:
        fmt = (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getcomptype())
        if fmt != (1, 2, RATE, "NONE"):
            raise SystemExit(f"{path}: (channels, bytes per sample, rate, compression) = {fmt}; "
                             f"expected (1, 2, {RATE}, 'NONE')")
        raw = f.readframes(f.getnframes())
    return torch.frombuffer(bytearray(raw), dtype=torch.int16).tolist()


def write_pcm(path: Path, samples: torch.Tensor) -> None:
    """Write float samples k/32768 as a 16 kHz mono 16-bit WAV with the stdlib ``wave``."""
    pcm = torch.round(samples.detach().double().cpu() * 32768).clamp(-32768, 32767)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(pcm.to(torch.int16).numpy().tobytes())


def to_float(pcm: list[int]) -> torch.Tensor:
    """PCM integers as float32 k/32768, the scale every model here reads."""
    return torch.tensor(pcm, dtype=torch.float32) / 32768.0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the reference VAD
class ReferenceVad:
    """silero-vad's own JIT model, scored chunk by chunk: the judge independent of hoodwink."""

    def __init__(self) -> None:
        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad  # sets torch's thread count at import

        torch.set_num_threads(threads)
        self.model = load_silero_vad()

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> list[float]:
        """Speech probability of each whole 512-sample chunk of ``x`` (1-D, 16 kHz)."""
        self.model.reset_states()
        n = x.numel() // CHUNK
        return [float(self.model(c, RATE)) for c in x[: n * CHUNK].reshape(n, CHUNK)]


# --------------------------------------------------------------------------- one run
def run_one(fool_speech: Any, model: Any, ref: ReferenceVad, clip: Path, *, mode: str,
            attack: str, level: float, unit: str, steps: int | None, queries: int | None,
            work: Path) -> dict[str, Any]:
    """One ``fool_speech`` call on ``clip``, then its output re-read and re-judged here."""
    pcm = read_pcm(clip)
    x = to_float(pcm)
    peak = max(abs(v) for v in pcm)
    # The contract's budget, floored onto the 16-bit grid: max|x| · 10^(L/20) (dB, relative
    # to the clip's peak) or 10^(L/20) (dBFS, relative to full scale).
    eps_pcm = math.floor((peak if unit == "dB" else 32768) * 10 ** (level / 20) + 1e-9)
    out = work / f"{clip.stem}-{mode}-{attack}{level:+.0f}-adv.wav"
    kwargs: dict[str, Any] = {"mode": mode, "attack": attack, "seed": SEED, "out": out,
                              "level_db": level}
    accepted = inspect.signature(fool_speech).parameters
    if unit == "dBFS":
        if "reference" in accepted:
            kwargs["reference"] = "full-scale"
        else:
            kwargs.update(level_db=None, eps=eps_pcm / 32768)
    if "figure" in accepted:
        kwargs["figure"] = False  # time the attack and the round trip, not matplotlib
    if steps is not None and attack == "pgd":
        kwargs["steps"] = steps
    if queries is not None:
        kwargs["queries"] = queries
    row: dict[str, Any] = {"clip": clip.name, "mode": mode, "attack": attack, "level": level,
                           "level_unit": unit, "eps_pcm_expected": eps_pcm,
                           "seconds": len(pcm) / RATE}
    t0 = time.perf_counter()
    try:
        outcome = fool_speech(model, clip, **kwargs)
    except Exception as exc:  # record the failure and go on with the next clip
        row.update({"wall_s": time.perf_counter() - t0, "success": False,
                    "success_independent": False, "agree": True,
                    "error": f"{type(exc).__name__}: {exc}"})
        return row
    row["wall_s"] = time.perf_counter() - t0
    row["wall_s_per_3s"] = row["wall_s"] * 3.0 / row["seconds"]
    rec = outcome.to_dict()
    for key in ("success", "chunks", "chunks_target", "speech_chunks_before", "eps",
                "level_db", "max_change_pcm", "queries", "max_queries", "steps", "time_s",
                "timings_s"):
        row[key] = rec.get(key, getattr(outcome, key, None))
    row["level_db_achieved"] = row.pop("level_db")
    outputs = dict(rec.get("outputs") or {})
    if out.is_file():
        row["judged"] = "the WAV fool_speech wrote"
        adv_path = out
    else:
        # fool_speech writes only on success: write the samples it returns here, with the
        # stdlib, so that a failure is judged from a 16-bit file as well.
        row["judged"] = "outcome.adversarial, written here"
        adv_path = work / f"failed-{out.name}"
        write_pcm(adv_path, outcome.adversarial)
    row["outputs"] = sorted(outputs)

    adv = read_pcm(adv_path)
    if len(adv) != len(pcm):
        row.update({"success_independent": False, "agree": False,
                    "error": f"the written WAV has {len(adv)} samples, the clip {len(pcm)}"})
        return row
    change = max(abs(a - b) for a, b in zip(adv, pcm, strict=True))
    probs = ref.probs(to_float(adv))
    before = ref.probs(x)
    on_goal = [p < THRESHOLD if mode == "hide" else p >= THRESHOLD for p in probs]
    after = rec.get("probs_after") or []
    row.update({
        "max_change_pcm_independent": change,
        "within_budget": change <= eps_pcm,
        "level_db_independent": (20 * math.log10(change / peak) if change and peak
                                 else -math.inf),
        "chunks_independent": len(probs),
        "speech_chunks_before_independent": sum(p >= THRESHOLD for p in before),
        "chunks_target_independent": sum(on_goal),
        "success_independent": bool(on_goal) and all(on_goal),
        "max_prob_after_independent": max(probs) if probs else None,
        "min_prob_after_independent": min(probs) if probs else None,
        "probs_max_abs_diff": (max(abs(a - b) for a, b in zip(after, probs, strict=True))
                               if len(after) == len(probs) and probs else None),
    })
    row["agree"] = bool(row["success"]) == row["success_independent"]
    return row


# --------------------------------------------------------------------------- summaries
def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (mode, attack, level): the rates with n and a Wilson 95% interval."""
    groups: dict[tuple[str, str, float, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["mode"], r["attack"], r["level"], r["level_unit"]), []).append(r)
    out = []
    for (mode, attack, level, unit), rs in groups.items():
        n = len(rs)
        k = sum(bool(r["success"]) for r in rs)
        k_ind = sum(bool(r["success_independent"]) for r in rs)
        walls = [r["wall_s"] for r in rs]
        per3 = [r["wall_s_per_3s"] for r in rs if "wall_s_per_3s" in r]
        queries = [r["queries"] for r in rs if r.get("queries") is not None]
        frac = [r["chunks_target_independent"] / r["chunks_independent"] for r in rs
                if r.get("chunks_independent")]
        out.append({
            "mode": mode, "attack": attack, "level": level, "level_unit": unit,
            "n": n, "successes": k, "rate": k / n, "ci95": list(wilson(k, n)),
            "rate_text": rate_text(k, n),
            "successes_independent": k_ind, "rate_independent": k_ind / n,
            "ci95_independent": list(wilson(k_ind, n)),
            "agree": sum(bool(r.get("agree")) for r in rs),
            "within_budget": sum(bool(r.get("within_budget")) for r in rs),
            "errors": sum("error" in r for r in rs),
            "wall_s_median": statistics.median(walls),
            "wall_s_max": max(walls),
            "wall_s_per_3s_median": statistics.median(per3) if per3 else None,
            "wall_s_per_3s_max": max(per3) if per3 else None,
            "queries_mean": statistics.fmean(queries) if queries else None,
            "queries_median": statistics.median(queries) if queries else None,
            "chunks_on_goal_fraction_mean": statistics.fmean(frac) if frac else None,
        })
    return out


def targets(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's two targets, judged on the white-box hide runs at <= TARGET_LEVEL dB."""
    hide = [s for s in summary if s["mode"] == "hide" and s["attack"] == "pgd"
            and s["level"] <= TARGET_LEVEL]
    if not hide:
        return {"pass": None, "why": f"no white-box hide run at <= {TARGET_LEVEL} dB"}
    best = max(hide, key=lambda s: s["level"])
    k, n = min(best["successes"], best["successes_independent"]), best["n"]
    per3 = best["wall_s_per_3s_max"]
    return {
        "hidden": {"target": f"every speech chunk hidden on >= {TARGET_RATE:.0%} of the clips "
                             f"at <= {TARGET_LEVEL:g} dB (both verdicts)",
                   "level": best["level"], "successes": k, "n": n, "rate": k / n,
                   "ci95": list(wilson(k, n)), "pass": k / n >= TARGET_RATE,
                   "ci_lower_meets": wilson(k, n)[0] >= TARGET_RATE},
        "time": {"target": f"<= {TARGET_S:g} s per 3-second clip (wall time of the whole "
                           "fool_speech call, scaled to 3 s of audio; the slowest clip)",
                 "level": best["level"], "wall_s_per_3s_max": per3,
                 "pass": per3 is not None and per3 <= TARGET_S},
    }


def sources() -> dict[str, str | None]:
    """SHA-256 of the speech modules the figures come from (None where a file is missing)."""
    src = ROOT / "src" / "hoodwink"
    return {name: _sha256(src / name) if (src / name).is_file() else None
            for name in ("audio.py", "zoo/silero.py", "studies/speech.py")}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("torch", "numpy", "scipy", "onnxruntime", "silero-vad", "hoodwink"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _espeak_version() -> str | None:
    if shutil.which("espeak-ng") is None:
        return None
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or None


def _floats(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]


def print_table(summary: list[dict[str, Any]]) -> None:
    print(f"{'mode':5} {'attack':7} {'level':>10} {'every chunk at goal':34} "
          f"{'indep.':>6} {'chunks at goal':>14} {'s/clip med':>10} {'s per 3 s max':>13} "
          f"{'queries':>8}")
    for s in summary:
        lvl = f"{s['level']:g} {s['level_unit']}"
        q = f"{s['queries_mean']:.0f}" if s["queries_mean"] is not None else "-"
        per3 = f"{s['wall_s_per_3s_max']:.2f}" if s["wall_s_per_3s_max"] is not None else "-"
        print(f"{s['mode']:5} {s['attack']:7} {lvl:>10} {s['rate_text']:34} "
              f"{s['successes_independent']:>3}/{s['n']:<2} "
              f"{s['chunks_on_goal_fraction_mean'] or 0:14.1%} {s['wall_s_median']:10.2f} "
              f"{per3:>13} {q:>8}")


def markdown_rows(summary: list[dict[str, Any]]) -> list[str]:
    """The summary as the rows of bench/README.md's speech table (a test re-derives them)."""
    rows = []
    for s in summary:
        q = f"{s['queries_mean']:.0f}" if s["queries_mean"] is not None else "–"
        frac = s["chunks_on_goal_fraction_mean"]
        per3 = s["wall_s_per_3s_max"]
        rows.append(
            f"| {s['mode']} | {s['attack']} | {s['level']:g} {s['level_unit']} "
            f"| {s['rate_text']} | {s['successes_independent']}/{s['n']} "
            f"| {'–' if frac is None else f'{frac:.1%}'} | {s['wall_s_median']:.2f} s "
            f"| {'–' if per3 is None else f'{per3:.2f} s'} | {q} |")
    return rows


def clip_rows(rows: list[dict[str, Any]], attack: str, level: float) -> list[str]:
    """Per-clip rows of docs/speech.md's tables (hide mode; a test re-derives them).

    Columns: clip, chunks, speech chunks before, speech chunks after (from the
    WAV, the independent verdict), queries (black box) and the wall time of the
    whole ``fool_speech`` call.
    """
    out = []
    for r in rows:
        if r["mode"] != "hide" or r["attack"] != attack or r["level"] != level:
            continue
        after = r["chunks"] - r["chunks_target_independent"]
        mark = "" if r["success_independent"] else " (not all hidden)"
        q = "–" if r["queries"] is None else (
            f"{r['queries']}" + (" (budget spent)" if r["queries"] == r["max_queries"] else ""))
        out.append(f"| {r['clip'].removesuffix('.wav')} | {r['chunks']} | "
                   f"{r['speech_chunks_before']} | {after}{mark} | {q} | {r['wall_s']:.1f} s |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default=",".join(f"{v:g}" for v in LEVELS),
                   help="hide levels in dB relative to the clip's peak (default -30,-35,-40)")
    p.add_argument("--show-levels", default=",".join(f"{v:g}" for v in SHOW_LEVELS),
                   help="show levels in dBFS, on noise.wav and silence.wav")
    p.add_argument("--bb-attack", default=BB_ATTACK,
                   help="score-based attack(s), comma-separated: square, simba (default square)")
    p.add_argument("--bb-queries", type=int, default=BB_QUERIES,
                   help=f"black-box budget per clip (default {BB_QUERIES})")
    p.add_argument("--bb-levels", default=None, help="black-box hide levels (default --levels)")
    p.add_argument("--steps", type=int, default=None,
                   help="PGD steps (default: fool_speech's own default)")
    p.add_argument("--only", default=None, help="comma-separated subset of: " + ", ".join(PARTS))
    p.add_argument("--clips", default=None,
                   help="comma-separated speech clip stems (default: every speech-*.wav)")
    p.add_argument("--folder", type=Path, default=CLIPS, help="where the clips are")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON record to write")
    args = p.parse_args(argv)
    parts = [s.strip() for s in (args.only or ",".join(PARTS)).split(",") if s.strip()]
    if bad := [s for s in parts if s not in PARTS]:
        p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    levels, show_levels = _floats(args.levels), _floats(args.show_levels)
    bb_levels = _floats(args.bb_levels) if args.bb_levels else levels
    bb_attacks = [s.strip() for s in args.bb_attack.split(",") if s.strip()]
    if bad := [s for s in bb_attacks if s not in ("square", "simba")]:
        p.error(f"--bb-attack: unknown attack(s) {bad}; choose from square, simba")
    speech = sorted(args.folder.glob("speech-*.wav"))
    if args.clips:
        wanted = {s.strip() for s in args.clips.split(",")}
        speech = [c for c in speech if c.stem in wanted]
    if not speech:
        p.error(f"no speech clips in {args.folder}; run scripts/make_speech_clips.py")
    torch.set_num_threads(args.threads)

    from hoodwink import zoo
    from hoodwink.studies import speech as speech_study

    fool_speech = speech_study.fool_speech

    facts = machine_facts(args, torch.device("cpu"))
    t_start = time.perf_counter()
    t0 = time.perf_counter()
    white = zoo.load("silero-vad")
    load_s = {"silero-vad": time.perf_counter() - t0}
    black = None
    if "blackbox" in parts:
        t0 = time.perf_counter()
        black = zoo.load("silero-vad-onnx")
        load_s["silero-vad-onnx"] = time.perf_counter() - t0
    ref = ReferenceVad()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def go(model: Any, clip: Path, **kw: Any) -> None:
            row = run_one(fool_speech, model, ref, clip, work=work, steps=args.steps, **kw)
            rows.append(row)
            print(f"{row['clip']:14} {row['mode']:5} {row['attack']:7} {row['level']:g} "
                  f"{row['level_unit']:5} success={row['success']} "
                  f"indep={row['success_independent']} {row['wall_s']:.2f} s"
                  + (f" q={row.get('queries')}" if row["attack"] != "pgd" else "")
                  + (f"  {row['error']}" if "error" in row else ""), flush=True)

        for clip in speech:
            if "hide" in parts:
                for level in levels:
                    go(white, clip, mode="hide", attack="pgd", level=level, unit="dB",
                       queries=None)
            if "blackbox" in parts:
                for bb in bb_attacks:
                    for level in bb_levels:
                        go(black, clip, mode="hide", attack=bb, level=level, unit="dB",
                           queries=args.bb_queries)
        if "show" in parts:
            for name in NON_SPEECH:
                for level in show_levels:
                    go(white, args.folder / name, mode="show", attack="pgd", level=level,
                       unit="dBFS", queries=None)

    clips = []
    for path in [*speech, *(args.folder / n for n in NON_SPEECH)]:
        x = to_float(read_pcm(path))
        probs = ref.probs(x)
        clips.append({"name": path.name, "samples": x.numel(), "seconds": x.numel() / RATE,
                      "chunks": len(probs), "speech_chunks": sum(q >= THRESHOLD for q in probs),
                      "peak_pcm": int(round(float(x.abs().max()) * 32768)),
                      "sha256": _sha256(path)})
    summary = summarise(rows)
    record: dict[str, Any] = {
        "format_version": 1,
        "benchmark": "speech",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", ""),
                             "python", "bench/speech.py", *(argv or sys.argv[1:])]),
        "config": {
            "parts": parts, "levels_db": levels, "show_levels_dbfs": show_levels,
            "bb_attacks": bb_attacks, "bb_queries": args.bb_queries,
            "bb_levels_db": bb_levels if "blackbox" in parts else [],
            "steps": args.steps, "seed": SEED, "threshold": THRESHOLD, "chunk": CHUNK,
            "models": {"white_box": "zoo.load('silero-vad')",
                       "black_box": "zoo.load('silero-vad-onnx')",
                       "independent_judge": "silero_vad.load_silero_vad() (JIT), fresh state "
                                            "per clip, model(chunk, 16000) per 512 samples"},
            "budget": "hide: max|delta| <= floor(max|x_pcm| * 10^(L/20)) PCM units (dB "
                      "relative to the clip's peak); show: eps = floor(32768 * 10^(L/20)) / "
                      "32768 (dBFS)",
            "success": "hide: every chunk < 0.5; show: every chunk >= 0.5; judged on the "
                       "16-bit WAV written and read back",
            "wall_s": "the whole fool_speech call (attack, WAV encode, decode, re-check; "
                      "figure=False)",
            "targets": {"rate": TARGET_RATE, "level_db": TARGET_LEVEL,
                        "seconds_per_3s_clip": TARGET_S},
        },
        "machine": {**facts, "versions": versions(), "espeak_ng": _espeak_version(),
                    "model_load_s": load_s},
        "sources": sources(),
        "clips": clips,
        "rows": rows,
        "summary": summary,
        "targets": targets(summary),
    }
    record["machine"]["load_average_end"] = (os.getloadavg() if hasattr(os, "getloadavg")
                                             else None)
    record["total_s"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(record), indent=1, allow_nan=False) + "\n",
                        encoding="utf-8")
    print()
    print_table(summary)
    print("\nbench/README.md rows:")
    print("\n".join(markdown_rows(summary)))
    for name, t in record["targets"].items():
        if isinstance(t, dict):
            print(f"target {name}: {'pass' if t['pass'] else 'FAIL'}")
    print(f"wrote {args.out} ({record['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
