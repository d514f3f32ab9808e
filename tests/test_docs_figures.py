"""Prose figures of README.md and docs/ that no table test covers, re-read from their records."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _text(path: str) -> str:
    """The page with its line breaks folded, so a sentence may wrap anywhere."""
    return " ".join((ROOT / path).read_text(encoding="utf-8").split())


def _json(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return data


def _p1(v: float) -> str:
    return f"{100 * v:.1f}%"


def test_readme_bundled_models_table_is_the_training_records() -> None:
    readme = _text("README.md")
    plain = _json("src/hoodwink/zoo/weights/mnist_metrics.json")["models"]
    robust = _json("src/hoodwink/zoo/weights/robust_mnist_metrics.json")["models"]
    adv, dis = robust["mnist_cnn_adv"], robust["mnist_cnn_distilled"]
    assert (f"| **{_p1(plain['mnist_cnn']['test_accuracy'])}** on the 1,000 held-out digits |"
            in readme)
    assert (f"| linear softmax classifier, same data | "
            f"**{_p1(plain['mnist_linear']['test_accuracy'])}** |") in readme
    assert (f"| **{_p1(adv['test_accuracy'])}**; PGD-40 at eps 0.3: "
            f"{_p1(adv['pgd_robust_accuracy']['0.3'])} |") in readme
    assert f"for testing evaluations | **{_p1(dis['test_accuracy'])}** |" in readme


def test_readme_run_times_are_the_records() -> None:
    readme = _text("README.md")
    forests = _json("docs/records/forests.json")["time_s"]
    assert f"docs/records/forests.json`, {forests / 60:.0f} min" in readme
    bb = _json("bench/results/blackbox.json")["total_s"]
    assert f"`python bench/blackbox.py`, {bb / 60:.0f} min" in readme
    peers = _json("bench/results/peers.json")["total_s"]
    assert f"`python bench/peers.py` ({peers / 60:.0f} min" in readme


def test_readme_hopskipjump_digit_counts_are_the_record() -> None:
    readme = _text("README.md")
    t = _json("bench/results/blackbox.json")["targets"]["hsj_median_l2_1000"]
    solved = t["images_solved_by_all"]
    assert f"over the {solved} digits every library solved" in readme
    assert f"fail on the {100 - solved} eights" in readme


def test_evaluate_example_prose_is_its_record() -> None:
    doc = _text("docs/evaluate.md")
    rec = _json("docs/records/evaluate/mnist-cnn.json")
    s = rec["summary"]
    fmn = rec["attacks"][0]
    assert fmn["name"] == "fmn"
    assert (f"Clean accuracy {s['clean_correct']}/{s['n']}, median minimal L∞ norm "
            f"{s['median_min_norm']:.3f}. FMN broke all {fmn['broke']}") in doc
    assert fmn["broke"] == s["clean_correct"]
    assert ("No flags." in doc) == (rec["flags"] == [])


def test_training_prose_is_the_training_records() -> None:
    doc = _text("docs/training.md")
    plain = _json("src/hoodwink/zoo/weights/mnist_metrics.json")["models"]["mnist_cnn"]
    robust = _json("src/hoodwink/zoo/weights/robust_mnist_metrics.json")["models"]
    adv, dis = robust["mnist_cnn_adv"], robust["mnist_cnn_distilled"]
    assert f"| `mnist-cnn` (plain) | {_p1(plain['test_accuracy'])} |" in doc
    assert f"cosine decay: {adv['training']['train_time_s'] / 60:.0f} minutes" in doc
    assert (f"median gap between the top two: {dis['median_top_logit_margin']:.0f} against "
            f"{dis['median_top_logit_margin_mnist_cnn']:.1f}") in doc
    assert f"reports {_p1(dis['pgd_robust_accuracy']['0.2'])} \"robust accuracy\" at eps 0.2" in doc
    margin = dis["pgd_margin_robust_accuracy"]
    plain_pgd = dis["mnist_cnn_pgd_robust_accuracy"]
    assert (f"brings it down to {_p1(margin['0.2'])} ({_p1(margin['0.1'])} at eps 0.1), the "
            f"level of the plain network ({_p1(plain_pgd['0.2'])} and "
            f"{_p1(plain_pgd['0.1'])})") in doc


def test_survival_intro_and_prose_are_the_record() -> None:
    doc = _text("docs/survival.md")
    by = {(r["mode"], r["eps_255"]): r for r in _json("bench/results/survival.json")["summary"]}
    j75 = by[("plain", 4.0)]["jpeg75"]
    draws = by[("plain", 8.0)]["heldout_draws"]
    assert (f"{100 * j75['rate']:.0f}% ({j75['kept']}/{j75['n']}) of runs at 4/255, and on "
            f"{100 * draws['rate']:.0f}% ({draws['kept']}/{draws['n']}) of random real edits "
            "at 8/255") in doc
    lo = by[("robust", 4.0)]["jpeg75"]["ci95"][0]
    lo8 = by[("robust", 8.0)]["jpeg75"]["ci95"][0]
    n = by[("robust", 8.0)]["jpeg75"]["n"]
    low = 100 * min(lo, lo8)
    assert f"With n = {n} runs the JPEG-75 interval reaches down to {low:.0f}%" in doc
    ratio = by[("robust", 8.0)]["seconds_median"] / by[("plain", 8.0)]["seconds_median"]
    m = re.search(r"Robust mode costs about (\d+) times a plain run", doc)
    assert m is not None and abs(int(m.group(1)) - ratio) <= 0.1 * ratio


def test_silero_model_size_quoted_is_the_wheels() -> None:
    """README and docs/speech.md quote the TorchScript file's size in MB (10^6 bytes)."""
    import pytest

    pytest.importorskip("silero_vad")
    from hoodwink.zoo.silero import data_file

    mb = Path(data_file("silero_vad.jit")).stat().st_size / 1e6
    assert f"a {mb:.2f} MB offline speech model" in _text("README.md")
    assert f"`silero_vad/data/silero_vad.jit`, {mb:.2f} MB)" in _text("docs/speech.md")
