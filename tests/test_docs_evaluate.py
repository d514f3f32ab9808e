"""The strong-evaluation figures in README.md are re-read from their committed records.

``docs/records/evaluate/*.json`` (made by ``hoodwink evaluate``),
``src/hoodwink/zoo/weights/robust_mnist_metrics.json`` (made by
``scripts/train_robust_mnist.py``) and ``bench/results/peers.json`` (made by
``bench/peers.py``). Each table row is rebuilt here and must appear in the
README exactly, so a rerun without a README update (or the reverse) fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PEER_MODELS = ("mnist-cnn", "mnist-linear", "mnist-cnn-adv", "efficientnet-lite0")
PEERS = ("torchattacks", "art", "foolbox")


def _json(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return data


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _robust(rec: dict[str, Any], eps: float) -> dict[str, Any]:
    (row,) = [r for r in rec["summary"]["robust"] if r["eps"] == eps]
    return row


def evaluate_rows() -> list[str]:
    """The two rows of the README's "Models that tell attacks apart" table."""
    met = _json("src/hoodwink/zoo/weights/robust_mnist_metrics.json")["models"]
    rows = []
    for name, key, eps in (("mnist-cnn-distilled", "mnist_cnn_distilled", 0.2),
                           ("mnist-cnn-adv", "mnist_cnn_adv", 0.3)):
        rec = _json(f"docs/records/evaluate/{name}.json")
        r = _robust(rec, eps)
        first = met[key]["first_100"]
        lo, hi = r["ci95"]
        flags = ", ".join(f"`{f['code']}`" for f in rec["flags"]) or "none"
        rows.append(f"| `{name}`, eps {eps:g} | {_pct(first['test_accuracy'])} "
                    f"| {_pct(first['pgd_robust_accuracy'][str(eps)])} "
                    f"| **{_pct(r['robust_accuracy'])}** ({100 * lo:.0f}–{100 * hi:.0f}%) "
                    f"| {flags} |")
    return rows


def peers_rows() -> list[str]:
    """The rows of the README's peers table (robust accuracy, seconds)."""
    rec = _json("bench/results/peers.json")
    rows = []
    for model in PEER_MODELS:
        std = rec["robust"][model]["standard"]
        eps = rec["targets"][f"robust_accuracy_{model}"]
        cells = [f"{std[lib]['robust_accuracy']:.2f} ({std[lib]['wall_s']:.0f} s)"
                 for lib in ("hoodwink", *PEERS)]
        ratio = rec["targets"][f"time_{model}"]["ratio"]
        del eps
        rows.append(f"| `{model}` | " + " | ".join(cells) + f" | {ratio:.2f}× |")
    return rows


@pytest.mark.parametrize("row", evaluate_rows())
def test_evaluate_table_rows_match_their_records(row: str) -> None:
    assert row in README


@pytest.mark.parametrize("row", peers_rows())
def test_peers_table_rows_match_the_bench_record(row: str) -> None:
    assert row in README


def test_flags_fire_on_the_masked_model_only() -> None:
    assert _json("docs/records/evaluate/mnist-cnn-distilled.json")["flags"]
    assert _json("docs/records/evaluate/mnist-cnn-adv.json")["flags"] == []


def test_the_readme_states_the_missed_targets_the_record_holds() -> None:
    targets = _json("bench/results/peers.json")["targets"]
    missed = sorted(k for k, v in targets.items() if v.get("pass") is False)
    for key in missed:
        assert f"`{key}`" in README, f"README does not list the missed target {key}"


def _p1(v: float) -> str:
    return f"{100 * v:.1f}%"


def test_training_doc_table_matches_the_training_record() -> None:
    doc = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    met = _json("src/hoodwink/zoo/weights/robust_mnist_metrics.json")["models"]
    adv, dis = met["mnist_cnn_adv"], met["mnist_cnn_distilled"]
    a, d = adv["pgd_robust_accuracy"], dis["pgd_robust_accuracy"]
    plain = dis["mnist_cnn_pgd_robust_accuracy"]
    assert (f"| `mnist-cnn-adv` (Madry, L∞ 0.3) | {_p1(adv['test_accuracy'])} | {_p1(a['0.1'])} "
            f"| {_p1(a['0.2'])} | {_p1(a['0.3'])} | – "
            f"| {_p1(adv['pgd_margin_robust_accuracy']['0.3'])} |") in doc
    assert (f"| `mnist-cnn-distilled` (T = 100) | {_p1(dis['test_accuracy'])} | {_p1(d['0.1'])} "
            f"| {_p1(d['0.2'])} | – | {_p1(dis['pgd_margin_robust_accuracy']['0.2'])} | – |") in doc
    assert f"| {_p1(plain['0.1'])} | {_p1(plain['0.2'])} |" in doc
    frac, of = dis["ce_zero_gradient_fraction"], dis["ce_zero_gradient_of"]
    assert f"{_p1(frac)} ({round(frac * of)} of {of})" in doc


def test_docs_evaluate_example_matches_its_record() -> None:
    """docs/evaluate.md's mnist-cnn example: table rows, time and stages from its record."""
    doc = (ROOT / "docs" / "evaluate.md").read_text(encoding="utf-8")
    rec = _json("docs/records/evaluate/mnist-cnn.json")
    assert rec["config"]["eps"] == [0.1, 0.2, 0.3] and rec["data"]["n"] == 100
    for r in rec["summary"]["robust"]:
        lo, hi = r["ci95"]
        row = (f"| {r['eps']:g} | {r['robust']} | {100 * r['robust_accuracy']:.0f}% "
               f"| {100 * lo:.1f}% – {100 * hi:.1f}% |")
        assert row in doc
    assert f"shared machine ({rec['summary']['time_s']:.0f} s;" in doc
    broke = {a["name"]: a["broke"] for a in rec["attacks"] if a["eps"] in (None, 0.1)}
    assert (f"APGD then broke {broke['apgd']} more and APGD-T {broke['apgd-t']},\n"
            "Square's probe none" in doc) and broke["square"] == 0
    assert f"median minimal L∞ norm {rec['summary']['median_min_norm']:.3f}" in doc


def test_readme_minimum_norm_prose_matches_the_bench_record() -> None:
    """The README's minimum-norm bullets are the record's medians over the commonly solved."""
    t = _json("bench/results/peers.json")["targets"]
    mm = _json("bench/results/peers.json")["minnorm"]["mnist-cnn"]
    text = " ".join(README.split())
    cw = t["minnorm_cw-l2_l2"]
    p = cw["peers"]
    assert (f"CW L2: {cw['hoodwink']:.3f} over {cw['images']} digits, against torchattacks "
            f"{p['torchattacks']:.3f}, ART {p['art']:.3f} and foolbox {p['foolbox']:.3f}") in text
    solved = {lib: mm["cw-l2"][lib]["verified"] for lib in ("hoodwink", *PEERS)}
    assert (f"hoodwink solves {solved['hoodwink']} of {mm['cw-l2']['hoodwink']['clean_correct']}, "
            f"torchattacks {solved['torchattacks']}, ART {solved['art']}, foolbox "
            f"{solved['foolbox']}") in text
    df = t["minnorm_deepfool-l2_l2"]
    p = df["peers"]
    assert (f"DeepFool L2: {df['hoodwink']:.4f} over {df['images']}, against torchattacks "
            f"{p['torchattacks']:.4f}, foolbox {p['foolbox']:.4f} and ART {p['art']:.4f}") in text
    dfi = t["minnorm_deepfool-linf_linf"]
    assert (f"DeepFool L∞: {dfi['hoodwink']:.4f}, against foolbox "
            f"{dfi['peers']['foolbox']:.4f}") in text
    f2, fi = t["minnorm_fmn-l2_l2"], t["minnorm_fmn-linf_linf"]
    assert (f"FMN L2: {f2['hoodwink']:.3f}, against foolbox's {f2['peers']['foolbox']:.3f}. "
            f"FMN L∞: {fi['hoodwink']:.4f}, against foolbox's {fi['peers']['foolbox']:.4f}") in text
    checks = _json("bench/results/peers.json")["checks"]
    rate = checks["torchattacks_deepfool_fools_about_45_percent"]["success_rate"]
    assert f"torchattacks' DeepFool fools {100 * rate:.0f}% of the digits" in text
    cwc = checks["foolbox_cw_counts_placeholders_as_successes"]
    assert (f"foolbox 3.3.4's CW claims {cwc['claimed']} of 99 digits; "
            f"{cwc['claimed_constant_images']} of those are all-black images") in text
    if all(v.get("pass") for v in t.values()):
        assert "**Every target is met.**" in text
    else:
        assert "**Every target is met.**" not in text


def test_readme_peers_strength_sentence_matches_the_record() -> None:
    """"Equal to the strongest peer's on every model, lower than torchattacks' on ..."."""
    rec = _json("bench/results/peers.json")
    text = " ".join(README.split())
    lower = []
    for model in PEER_MODELS:
        std = rec["robust"][model]["standard"]
        mine = std["hoodwink"]["robust_accuracy"]
        assert mine == min(std[lib]["robust_accuracy"] for lib in PEERS)
        if mine < std["torchattacks"]["robust_accuracy"]:
            lower.append(model)
        assert rec["targets"][f"time_{model}"]["ratio"] <= 0.5
    assert ("Robust accuracy is equal to the strongest peer's on every model and lower than "
            f"torchattacks' on {' and '.join(lower)}.") in text
    assert "takes at most half the time of torchattacks' AutoAttack on every model" in text


def test_bench_readme_peers_results_are_the_record() -> None:
    """bench/README.md's robust and minimum-norm tables, rebuilt from the record."""
    rec = _json("bench/results/peers.json")
    doc = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    names = {"mnist-cnn": "mnist-cnn, 25/255", "mnist-linear": "mnist-linear, 25/255",
             "mnist-cnn-adv": "mnist-cnn-adv, 76/255",
             "efficientnet-lite0": "Lite0, 1/255 (7 photos)"}
    for model, label in names.items():
        std = rec["robust"][model]["standard"]
        cells = [f"{std[lib]['robust_accuracy']:.2f}, {std[lib]['wall_s']:.1f} s" if lib in std
                 else "—" for lib in ("hoodwink", "hoodwink (no grid)", *PEERS)]
        ratio = rec["targets"][f"time_{model}"]["ratio"]
        assert f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f}× |" in doc
    mm = rec["minnorm"]["mnist-cnn"]
    for method, label in (("cw-l2", "CW L2"), ("deepfool-l2", "DeepFool L2"),
                          ("deepfool-linf", "DeepFool L∞"), ("fmn-l2", "FMN L2"),
                          ("fmn-linf", "FMN L∞")):
        norm = method.split("-")[1]
        t = rec["targets"][f"minnorm_{method}_{norm}"]
        cells = [f"**{t['hoodwink']:.4g}**"] + [f"{t['peers'][lib]:.4g}" if lib in t["peers"]
                                                else "—" for lib in ("torchattacks", "foolbox",
                                                                     "art")]
        assert f"| {label} | {t['images']} | " + " | ".join(cells) + " | " in doc
        r = mm[method]["hoodwink"]
        key = "median_l2" if norm == "l2" else "median_linf"
        assert f"| {r['verified']}, {r[key]:.4g} ({r['wall_s']:.1f} s) |" in doc
