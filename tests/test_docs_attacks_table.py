"""docs/attacks.md's minimum-norm tables and prose are what their committed records say."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from _helpers import load_bench
from hoodwink.stats import differ, rate_text, wilson

ROOT = Path(__file__).resolve().parents[1]
RAW = (ROOT / "docs" / "attacks.md").read_text(encoding="utf-8")
DOC = " ".join(RAW.split())
RECORD = "bench/results/minnorm_table.json"


def _json(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return data


@functools.cache
def _bench() -> ModuleType:
    """bench/minnorm_table.py, whose renderers made the docs' tables."""
    mod: ModuleType = load_bench("minnorm_table")
    return mod


def _param(attack_repr: str, name: str) -> str:
    """One parameter's value in an attack's repr, ``steps=100`` -> ``"100"``."""
    found = re.search(rf"\b{name}=([^,)]+)", attack_repr)
    assert found is not None, (name, attack_repr)
    return found.group(1)


def _pct(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"95% CI {lo * 100:.0f}–{hi * 100:.0f}%"


def test_table_is_the_record() -> None:
    rec = _json(RECORD)
    text: str = _bench().markdown(rec)
    assert text in RAW
    # The record is self-consistent: every success is among the correctly classified digits.
    for r in rec["rows"]:
        assert 0 <= r["fooled"] <= r["correct"] <= rec["n"]


def test_prose_is_the_records() -> None:
    rows = {(r["model"], r["label"]): r for r in _json(RECORD)["rows"]}
    cw = rows[("mnist-cnn", "`CarliniWagner(steps=200, binary_search_steps=5, "
                            "initial_const=0.1, stepsize=0.05)`")]["median"]
    df = rows[("mnist-cnn", '`DeepFool(norm="l2")`')]["median"]
    assert f"CW finds {100 * (1 - cw / df):.0f}% smaller perturbations than DeepFool" in DOC
    t = _json("bench/results/peers.json")["targets"]
    c, p = t["minnorm_cw-l2_l2"], t["minnorm_cw-l2_l2"]["peers"]
    assert (f"On the {c['images']} digits that torchattacks', foolbox's and ART's CW all fool "
            f"(`bench/peers.py`, 9 × 100 steps), hoodwink's median L2 is {c['hoodwink']:.2f}, "
            f"against {p['torchattacks']:.2f}, {p['foolbox']:.2f} and {p['art']:.2f}") in DOC
    d2, di = t["minnorm_deepfool-l2_l2"], t["minnorm_deepfool-linf_linf"]
    assert (f"its DeepFool's medians ({d2['hoodwink']:.3f} L2 over the {d2['images']} digits "
            f"every peer fooled, {di['hoodwink']:.3f} L∞) are at or below theirs") in DOC
    assert d2["pass"] and di["pass"]


def test_fmn_table_is_the_record() -> None:
    rec = _json(RECORD)
    text: str = _bench().fmn_markdown(rec)
    assert text in RAW
    rows = rec["fmn_rows"]
    assert [(r["model"], r["norm"]) for r in rows] == [
        (m, n) for m in ("mnist-cnn", "mnist-linear") for n in ("linf", "l2", "l1")]
    # The same digits and models as the table above: the same correctly classified count.
    correct = {r["model"]: r["correct"] for r in rec["rows"]}
    for r in rows:
        assert r["correct"] == correct[r["model"]]
        assert 0 <= r["fooled"] <= r["correct"] <= rec["n"]
        assert _param(r["attack"], "steps") == "100"
    (levels,) = {r["levels"] for r in rows}
    assert (f"Measured on the first {rec['n']} test digits (`levels={levels}`, 100 steps, one "
            "CPU thread; the `fmn_linear` section of the same record") in DOC
    assert ("(Made by `OMP_NUM_THREADS=1 python bench/minnorm_table.py`, section `fmn_rows` of "
            "`bench/results/minnorm_table.json`") in DOC
    assert rec["command"] == "OMP_NUM_THREADS=1 python bench/minnorm_table.py"


def test_within_rounds_the_excess_up_to_one_digit() -> None:
    within = _bench().within
    assert within(1.0000063) == "0.0007"
    assert within(1.0056452) == "0.6"
    assert within(1.0006) == "0.06"
    assert within(1.0099999) == "1"
    assert within(1.0) == within(0.99) == "0"


def test_fmn_linear_prose_is_the_record() -> None:
    lin = _json(RECORD)["fmn_linear"]
    within = _bench().within
    for r in lin:  # every sample fooled, none below the closed form (beyond float error)
        assert r["fooled"] == r["samples"] and r["min_ratio"] >= 1 - 1e-4
        assert r["features"] == 20
    cases = sorted({(r["classes"], r["samples"]) for r in lin})
    assert cases == [(2, 16), (5, 32)]
    smooth = max(r["median_ratio"] for r in lin if r["norm"] != "l1")
    l1 = max(r["median_ratio"] for r in lin if r["norm"] == "l1")
    assert (f"On a linear model it reaches the closed-form distance `margin / ‖w_y − w_j‖_dual` "
            f"to within {within(smooth)} % (L2, L∞) and {within(l1)} % (L1) for the median "
            f"sample (the seeded 20-feature models of `tests/test_fmn.py`, {cases[0][0]} classes "
            f"and {cases[0][1]} samples, {cases[1][0]} classes and {cases[1][1]})") in DOC
    many = [r for r in lin if r["classes"] == 5]
    l2 = next(r for r in many if r["norm"] == "l2")
    crossed = max(r["max_crossed_ratio"] for r in many)
    assert (f"(on the 5-class model, the nearest for {rate_text(l2['nearest'], l2['samples'])} "
            f"of the samples in L2); then it sits on that class's hyperplane instead, within "
            f"{within(crossed)} %.") in DOC
    assert l2["nearest"] < l2["samples"]  # "not always the nearest one"


def test_fmn_held_prose_is_the_record() -> None:
    rec = _json(RECORD)
    held = rec["fmn_held"]
    full = next(r for r in rec["fmn_rows"] if (r["model"], r["norm"]) == ("mnist-linear", "l2"))
    assert (held["model"], held["norm"], held["correct"]) == ("mnist-linear", "l2",
                                                              full["correct"])
    assert _param(held["attack"], "steps") == "100"
    assert held["fooled"] < full["fooled"]
    assert (f"the bundled `mnist-linear` was fooled on only "
            f"{rate_text(held['fooled'], held['correct'])} of its correctly classified digits "
            f"in L2, against {full['fooled']}/{full['correct']} with it; `hold_bounds=False` "
            "takes the paper's step; section `fmn_held`") in DOC
    assert _param(held["attack"], "hold_bounds") == "False"


def test_apgd_prose_is_the_record() -> None:
    a = _json(RECORD)["apgd"]
    n, ra, rp = a["n"], a["apgd"]["robust"], a["pgd"]["robust"]
    assert (a["model"], a["norm"]) == ("mnist-cnn", "linf")
    for key in ("apgd", "pgd"):
        assert _param(a[key]["attack"], "steps") == "100"
        assert _param(a[key]["attack"], "seed") == "0"
        assert 0 <= a[key]["robust"] <= a[key]["correct"] <= n
    # Paired counts agree with the totals: robust_pgd - robust_apgd = apgd_only - pgd_only.
    assert rp - ra == a["apgd_only"] - a["pgd_only"]
    assert ra <= rp and a["pgd_only"] == 0  # "fools every digit PGD fools"
    assert not differ(ra, n, rp, n)  # "the intervals overlap"
    assert (f"`mnist-cnn` and {n} test digits at L∞ eps {a['eps']:g} it leaves {ra} digits robust "
            f"where PGD with 100 steps leaves {rp}: robust accuracy {rate_text(ra, n)}, "
            f"{_pct(ra, n)}, against {rate_text(rp, n)}, {_pct(rp, n)}. The intervals overlap, "
            f"but APGD fools every digit PGD fools and {a['apgd_only']} more (`APGD()` and "
            "`PGD(steps=100)`, seed 0; made by `OMP_NUM_THREADS=1 python "
            "bench/minnorm_table.py`, section `apgd` of `bench/results/minnorm_table.json`)") in DOC
