"""docs/speech.md's measured tables are what bench/speech.py's committed records say."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from _helpers import load_bench

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "speech.md").read_text(encoding="utf-8")


def _bench() -> ModuleType:
    mod: ModuleType = load_bench("speech")
    return mod


def _json(name: str) -> dict[str, Any]:
    path = ROOT / "bench" / "results" / name
    if not path.exists():
        pytest.fail(f"{path} is not committed")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_white_box_table_and_summary_are_the_record() -> None:
    bench, rec = _bench(), _json("speech.json")
    rows = bench.clip_rows(rec["rows"], "pgd", -40.0)
    assert len(rows) == 10
    for row in rows + bench.markdown_rows(rec["summary"]):
        assert row in DOC, row


def test_square_at_minus_20_db_table_is_its_record() -> None:
    bench, rec = _bench(), _json("speech-square-20db.json")
    rows = bench.clip_rows(rec["rows"], "square", -20.0)
    assert len(rows) == 10
    for row in rows:
        assert row in DOC, row


def test_clip_facts_in_the_prose() -> None:
    clips = [c for c in _json("speech.json")["clips"] if c["name"].startswith("speech-")]
    secs = [c["seconds"] for c in clips]
    dims = [c["samples"] for c in clips]
    text = " ".join(DOC.split())
    assert "2.1–3.2 s each" in text and (f"{min(secs):.1f}", f"{max(secs):.1f}") == ("2.1", "3.2")
    assert min(dims) >= 34_000 and max(dims) <= 52_000 and "34,000–52,000" in text
