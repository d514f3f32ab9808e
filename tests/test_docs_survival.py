"""README.md, docs/survival.md and docs/serve.md show the benchmarks as their records say."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from _helpers import load_bench

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "bench" / "results" / "survival.json"


def _bench() -> ModuleType:
    mod: ModuleType = load_bench("survival")
    return mod


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    rec: dict[str, Any] = json.loads(RECORD.read_text())
    return rec


@pytest.fixture(scope="module")
def tables(record: dict[str, Any]) -> str:
    text: str = _bench().markdown(record)
    return text


def test_summary_is_recomputed_from_the_rows(record: dict[str, Any]) -> None:
    """The stored summary is what the rows give (no hand-edited rates)."""
    bench = _bench()
    eps = [e / 255 for e in record["config"]["eps_255"]]
    again = bench.summarise(record["rows"], ["plain", "robust"], eps)
    assert again == record["summary"]
    # Every run re-read its PNG independently: within eps, right size, the target on re-read.
    for row in record["rows"]:
        if row["success"]:
            c = row["check"]
            assert c["size_ok"] and c["eps_ok"] and c["reread_is_target"]
            assert c["max_change_255"] <= row["eps_255"]


def test_docs_carry_both_tables_verbatim(tables: str) -> None:
    docs = (ROOT / "docs" / "survival.md").read_text()
    assert tables in docs


def test_readme_carries_the_summary_table(tables: str) -> None:
    summary = tables.split("\n\n")[0]
    assert summary.count("\n") == 5  # header, rule, four rows
    assert summary in (ROOT / "README.md").read_text()


def test_readme_claims_match_the_record(record: dict[str, Any]) -> None:
    """The README's sentence on the targets says what the record holds."""
    by = {(r["mode"], r["eps_255"]): r for r in record["summary"]}
    r4, r8 = by[("robust", 4.0)], by[("robust", 8.0)]
    met = (r8["jpeg75"]["rate"] >= 0.95 and r4["jpeg75"]["rate"] >= 0.80
           and r8["heldout_draws"]["rate"] >= 0.90
           and max(r4["seconds_max"], r8["seconds_max"]) <= 60)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Photos that survive", 1)[1].split("\n## ", 1)[0]
    claim = re.search(r"The targets[^.]*\. ", section.replace("\n", " "))
    assert claim is not None, "the README's survival section states whether the targets hold"
    assert ("are met" in claim.group(0)) == met
    slowest = max(r4["seconds_max"], r8["seconds_max"])
    assert f"{slowest:.1f} s" in section.replace("\n", " ")


def test_serve_doc_timings_match_the_serve_record() -> None:
    rec = json.loads((ROOT / "bench" / "results" / "serve.json").read_text())
    doc = " ".join((ROOT / "docs" / "serve.md").read_text().split())
    assert (f"median {rec['median_s']:.1f} s, slowest {rec['max_s']:.1f} s over "
            f"{rec['n']} runs") in doc
    assert rec["within_target"] == rec["n"] == rec["fooled"]
    assert ("all within the 5 s target" in doc) == (rec["max_s"] <= rec["target_s"])


def test_serve_doc_setup_matches_the_serve_record() -> None:
    """'the bundled cat (451×300, plain mode, 2/255 ...) ... 10 runs of 5 targets'."""
    rec = json.loads((ROOT / "bench" / "results" / "serve.json").read_text())
    doc = " ".join((ROOT / "docs" / "serve.md").read_text().split())
    targets = {r["target"] for r in rec["runs"]}
    assert len(rec["runs"]) == rec["n"]
    assert f"over {rec['n']} runs of {len(targets)} targets, all within the " \
        f"{rec['target_s']:g} s target" in doc
    size = re.search(r"bundled cat \((\d+)x(\d+)\), plain mode, (\d+/255)", rec["bench"])
    assert size is not None, rec["bench"]
    assert f"bundled cat ({size[1]}×{size[2]}, plain mode, {size[3]}," in doc
    machine = rec["machine"]
    assert machine["omp_num_threads"] == "1"
    assert f"on this {machine['cpu_count']}-core CPU with one torch thread" in doc
    # The test-suite timing is not recorded anywhere, so the page quotes none.
    tests = doc[doc.index("## Tests"):]
    assert "`tests/test_serve.py` (TestClient):" in tests
    assert not re.search(r"\d+ s\b", tests)
