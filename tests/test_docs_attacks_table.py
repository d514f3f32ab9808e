"""docs/attacks.md's minimum-norm table and prose are what their committed records say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = " ".join((ROOT / "docs" / "attacks.md").read_text(encoding="utf-8").split())


def _json(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return data


def _markdown(rec: dict[str, Any]) -> str:
    spec = importlib.util.spec_from_file_location("bench_minnorm_table",
                                                  ROOT / "bench" / "minnorm_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text: str = mod.markdown(rec)
    return text


def test_table_is_the_record() -> None:
    rec = _json("bench/results/minnorm_table.json")
    doc = (ROOT / "docs" / "attacks.md").read_text(encoding="utf-8")
    assert _markdown(rec) in doc
    # The record is self-consistent: every success is among the correctly classified digits.
    for r in rec["rows"]:
        assert 0 <= r["fooled"] <= r["correct"] <= rec["n"]


def test_prose_is_the_records() -> None:
    rows = {(r["model"], r["label"]): r for r in _json("bench/results/minnorm_table.json")["rows"]}
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
