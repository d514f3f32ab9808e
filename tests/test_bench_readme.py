"""bench/README.md's measured figures are re-read from the records under ``bench/results/``.

Each quoted figure is rebuilt here from its record (``small_steps.json``, ``fool_e2e.json``,
``overhead.json``, ``blackbox.json``, ``peers.json``, ``speech.json``) and formatted the way the
page prints it, so a rerun without a page update (or an edit of the page alone) fails. The
peers' robust and minimum-norm tables are also checked by ``tests/test_docs_evaluate.py`` and
the speech table rows by ``tests/test_speech_clips.py``; the prose around them is checked here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
MIB = 2**20


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "bench" / "results" / name).read_text("utf-8"))
    return data


def _section(script: str) -> str:
    """The page's text for one script, whitespace folded, up to the next ``## `` heading."""
    start = PAGE.index(f"## `{script}`")
    end = PAGE.find("\n## ", start + 1)
    return " ".join(PAGE[start:None if end < 0 else end].split())


def _in(sentence: str, text: str) -> None:
    folded = " ".join(sentence.split())
    assert folded in text, folded


def test_small_steps_prose_is_the_record() -> None:
    rec = _json("small_steps.json")
    text = _section("small_steps.py")
    fgsm = rec["fgsm"]
    assert fgsm["passes_with_samples"] == 2 and set(fgsm["queries_per_sample"]) == {2}
    _in(f"FGSM: {fgsm['passes_with_samples']} forward passes with samples per call", text)
    _in(f"`queries == {fgsm['queries_per_sample'][0]}` for every sample", text)
    (b64,) = [c for c in rec["conv"] if c["batch"] == 64]
    pairs = b64["time"]["pair_ratios"]
    _in(f"at batch 64 the single pairs of the recorded run ranged {min(pairs):.2f}–"
        f"{max(pairs):.2f}", text)
    grid = rec["linear"]["hoodwink_zoo_levels256"]
    plain = rec["linear"]["hoodwink_no_grid"]
    assert grid["meets_target"] and grid["ratio"] <= rec["config"]["targets"][
        "linear_vs_torchattacks"]
    _in(f"the grid case runs at {grid['ratio']:.2f}× torchattacks' time in the record (target "
        f"met), the case without a grid at {plain['ratio']:.2f}×", text)
    assert "Not met" not in text


def test_fool_e2e_prose_is_the_record() -> None:
    med = _json("fool_e2e.json")["fool_timings_s_median"]
    text = _section("fool_e2e.py")
    _in(f"instead of matplotlib: {med['figure']:.2f} s in the record (median `figure`)", text)
    _in(f"**Model load** was already {med['model_load']:.2f} s", text)


def test_overhead_table_is_the_record() -> None:
    rec = _json("overhead.json")
    text = _section("overhead.py")
    start, end = rec["machine"]["load_average_start"], rec["machine"]["load_average_end"]
    _in(f"(load average {start[0]:.1f} at the start, {end[0]:.1f} at the end)", text)
    for r in rec["results"]:
        t, m = r["time"], r["memory"]
        row = (f"| {r['model']} | {r['batch']} | {t['median_s']['floor']:.2f} | "
               f"{t['median_s']['pgd']:.2f} | **{t['ratio']:.3f}** | {t['cpu_ratio']:.3f} | "
               f"{m['floor']['delta'] / MIB:.1f} | {m['pgd']['delta'] / MIB:.1f} | "
               f"**{m['ratio']:.2f}** | {t['median_s']['pgd_early_stop']:.2f} | "
               f"{t['early_stop_mean_queries']:.1f} |")
        assert row in text, row
    (cnn,) = [r for r in rec["results"] if r["model"] == "mnist_cnn"]
    wall, cpu = cnn["time"]["pair_ratios"], cnn["time"]["cpu_pair_ratios"]
    _in(f"On `mnist_cnn` the single pairs ranged {min(wall):.2f}–{max(wall):.2f} in wall time "
        f"and {min(cpu):.2f}–{max(cpu):.2f} in CPU time.", text)
    targets = rec["config"]["targets"]
    _in(f"Targets: time ≤ {targets['time_ratio']:.2f}, memory ≤ {targets['memory_ratio']:.1f}×. "
        "Both are met.", text)
    assert all(r["meets_targets"]["time"] and r["meets_targets"]["memory"]
               for r in rec["results"])
    (deep,) = [r for r in rec["results"] if r["model"] == "deep_mnist_cnn"]
    passes = deep["time"]["early_stop_mean_queries"]
    assert passes == rec["config"]["steps"] + 3
    _in(f"That is why its early-stopping run makes all {passes:.0f} passes.", text)


def test_blackbox_prose_is_the_record() -> None:
    rec = _json("blackbox.json")
    text = _section("blackbox.py")
    _in(f"everything, 1 thread: {rec['total_s'] / 60:.0f} min in the recorded run", text)
    assert rec["imagenet"]["wall_s"] < 60
    _in("ImageNet takes under a minute.", text)
    failures = {rec["hsj"]["libraries"][lib]["failures"][str(q)]
                for lib in ("foolbox", "art") for q in rec["hsj"]["budgets"]}
    assert len(failures) == 1
    (fails,) = failures
    solved = rec["targets"]["hsj_median_l2_1000"]["images_solved_by_all"]
    assert solved == rec["config"]["n"] - fails
    _in(f"so they fail on the 8s ({fails} of the {rec['config']['n']} images)", text)
    _in(f"next to the Square paper's {rec['imagenet']['paper_mean_queries']} mean queries", text)


def _peers_results() -> str:
    text = _section("peers.py")
    return text[text.index("### Latest results"):]


def test_peers_prose_is_the_record() -> None:
    rec = _json("peers.json")
    text = _section("peers.py")
    minutes = f"{rec['total_s'] / 60:.0f} min"
    _in(f"everything, 1 thread: {minutes} in the recorded run", text)
    res = _peers_results()
    _in(f"`{rec['command']}` (written to /tmp, then copied to `results/peers.json`), {minutes}, "
        f"2-core AMD EPYC (load {rec['machine']['load_average_start'][0]:.1f} at the start", res)
    apgd = {m: rec["robust"][m]["apgd-ce"] for m in ("mnist-cnn", "mnist-linear",
                                                      "mnist-cnn-adv")}
    libs = ("hoodwink", "torchattacks", "art")

    def accs(model: str) -> str:
        return " / ".join(f"{apgd[model][lib]['robust_accuracy']:.2f}" for lib in libs)

    times = " / ".join(f"{apgd['mnist-cnn'][lib]['wall_s']:.1f}" for lib in libs)
    _in(f"hoodwink / torchattacks / ART: mnist-cnn {accs('mnist-cnn')} ({times} s), "
        f"mnist-linear {accs('mnist-linear')}, mnist-cnn-adv {accs('mnist-cnn-adv')}.", res)
    targets = rec["targets"]
    assert all(t["pass"] for t in targets.values())
    _in("Targets: all met (`targets` in the record).", res)
    ratios = [t["ratio"] for k, t in targets.items() if k.startswith("time_")]
    _in(f"`evaluate`'s time is {min(ratios):.2f}–{max(ratios):.2f}× torchattacks' AutoAttack.",
        res)
    assert rec["minnorm"]["mnist-cnn"]["cw-l2"]["hoodwink"]["verified"] == 99
    _in("CW warm-starts each binary-search step from the last success and solves all 99.", res)
    checks = rec["checks"]
    assert all(c["holds"] for c in checks.values())
    rate = checks["torchattacks_deepfool_fools_about_45_percent"]["success_rate"]
    _in(f"torchattacks' DeepFool fools {100 * rate:.0f} % of the digits.", res)
    cwc = checks["foolbox_cw_counts_placeholders_as_successes"]
    _in(f"foolbox's CW claims {cwc['claimed']} successes, {cwc['claimed_constant_images']} of "
        "them all-zero images.", res)
    (steps,) = set(checks["torchattacks_autoattack_apgd_steps"]["steps"])
    _in(f"torchattacks' AutoAttack runs {steps}-step APGD.", res)


def test_peers_minimum_norm_solved_columns_are_the_record() -> None:
    """Every library's "solved" cell (test_docs_evaluate checks hoodwink's only)."""
    rec = _json("peers.json")
    res = _peers_results()
    mm = rec["minnorm"]["mnist-cnn"]
    for method in ("cw-l2", "deepfool-l2", "deepfool-linf", "fmn-l2", "fmn-linf"):
        key = "median_l2" if method.endswith("l2") else "median_linf"
        cells = []
        for lib in ("hoodwink", "torchattacks", "foolbox", "art"):
            r = mm[method].get(lib)
            if r is None:
                cells.append("—")
                continue
            solved = f"{r['verified']}"
            if r.get("claimed") is not None and r["claimed"] != r["verified"]:
                solved = f"{r['verified']} real of {r['claimed']} claimed"
            cells.append(f"{solved}, {r[key]:.4g} ({r['wall_s']:.1f} s)")
        row = " | ".join(cells) + " |"
        assert row in res, row


def test_speech_prose_is_the_record() -> None:
    rec = _json("speech.json")
    text = _section("speech.py")
    _in(f"--bb-attack square,simba # ≈ {rec['total_s'] / 60:.0f} min on this 2-core machine", text)
    speech = [c for c in rec["clips"] if c["name"].startswith("speech-")]
    secs = [c["seconds"] for c in speech]
    _in(f"On each of the {len(speech)} speech clips of `examples/audio/` ({min(secs):.1f}–"
        f"{max(secs):.1f} s,", text)
    steps = {r["level"]: r["eps_pcm_expected"] for r in rec["rows"] if r["mode"] == "hide"}
    _in(f"{steps[-30.0]}, {steps[-35.0]} and {steps[-40.0]} PCM steps for these "
        f"{20 * math.log10(speech[0]['peak_pcm'] / 32768):.0f} dBFS clips", text.replace("−", "-"))
    assert len({c["peak_pcm"] for c in speech}) == 1
    rows = rec["rows"]
    assert all(r["agree"] and r["within_budget"] for r in rows)
    _in(f"the two agreed on all {len(rows)} runs, and no run exceeded its budget", text)
    hidden = rec["targets"]["hidden"]
    pgd40 = [r for r in rows if r["mode"] == "hide" and r["attack"] == "pgd"
             and r["level"] == hidden["level"]]
    (miss,) = [r for r in pgd40 if not r["success"]]
    slow = max(pgd40, key=lambda r: r["wall_s_per_3s"])
    name = miss["clip"].removesuffix(".wav")
    lo, hi = hidden["ci95"]
    _in(f"**met at the point estimate, {hidden['successes']}/{hidden['n']}** ({name} keeps "
        f"{miss['chunks'] - miss['chunks_target']} of its {miss['chunks']} chunks above 0.5 after "
        f"all {miss['steps']} steps), but the 95 % interval ({100 * lo:.0f}–{100 * hi:.0f} %)",
        text)
    per3 = rec["targets"]["time"]["wall_s_per_3s_max"]
    assert slow["wall_s_per_3s"] == per3
    _in(f"({per3:.2f} s for the slowest, {slow['clip'].removesuffix('.wav')}, which runs every "
        "step)", text)
    frac = {(s["attack"], s["level"]): s["chunks_on_goal_fraction_mean"]
            for s in rec["summary"] if s["mode"] == "hide"}
    square = [v for (a, _), v in frac.items() if a == "square"]
    simba = {round(100 * v) for (a, _), v in frac.items() if a == "simba"}
    (simba_pct,) = simba
    assert rec["config"]["bb_queries"] == 2000
    _in(f"(afterwards only {100 * min(square):.0f}–{100 * max(square):.0f} % of a clip's chunks "
        f"read as non-speech with Square, {simba_pct} % with SimBA)", text)
    mean_chunks = sum(c["chunks"] for c in speech) / len(speech)
    assert round(mean_chunks, -1) == 90
    _in("a conjunction over ~90 chunks", text)
