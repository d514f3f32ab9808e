"""Every figure quoted in docs/forests.md is re-read from docs/records/forests.json.

The page quotes the verdict the study generated, tables of success rates,
clean accuracies, probe counts, check counts and timings. Each test parses a
part of the page and rebuilds it from the committed record, so a rerun
without updating the page (or an edit of the page alone) fails. Rates over
fewer than 100 inputs must carry their n and Wilson 95% interval
(:func:`hoodwink.stats.rate_text`); the only sentences that compare two rates
are in the verdict, which is regenerated from the record here and compared
word for word (it says "intervals disjoint" only where
:func:`hoodwink.stats.differ` holds).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hoodwink.stats import rate_text
from hoodwink.studies.forests.report import (
    DATASET_LABELS,
    _budget,
    cells,
    rate_at,
    verdict,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "forests.md").read_text(encoding="utf-8")
RECORD: dict[str, Any] = json.loads(
    (ROOT / "docs" / "records" / "forests.json").read_text(encoding="utf-8"))
README = (ROOT / "docs" / "records" / "README.md").read_text(encoding="utf-8")

#: A quoted rate: "43% (3/7, 95% CI 16–75%)" or "33.6% (151/450)".
RATE = re.compile(r"(?:\d+(?:\.\d+)?%|–) \((\d+)/(\d+)(?:, 95% CI \d+–\d+%)?\)")
NORMS = {"L∞": "linf", "L2": "l2"}
LABEL_TO_DATASET = {v: k for k, v in DATASET_LABELS.items()}
COMMAND = "hoodwink forests --out out/records/forests --json > docs/records/forests.json"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _section(start: str, end: str | None = "\n## ") -> str:
    i = DOC.index(start)
    j = DOC.find(end, i + len(start)) if end is not None else -1
    return DOC[i:j] if j >= 0 else DOC[i:]


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``: rows of stripped cells, separator rows dropped."""
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            cellz = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cellz):
                current.append(cellz)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _model(dataset: str, model: str) -> dict[str, Any]:
    return next(m for m in RECORD["models"] if m["dataset"] == dataset and m["model"] == model)


# --------------------------------------------------------------------------- provenance
def test_record_comes_from_the_documented_command() -> None:
    block = _section("## Reproducing")
    assert COMMAND in _flat(block)
    assert f"| `forests.json` | `{COMMAND}`" in README
    assert RECORD["schema"] == "hoodwink.forests/1" and RECORD["profile"] == "full"
    assert RECORD["config"]["seed"] == 0
    # --json leaves the per-input arrays in out/records/forests/forests.json.
    assert all("samples" not in c for c in RECORD["cells"])


def test_verdict_is_the_record_s_own_and_regenerates() -> None:
    assert RECORD["verdict"] == verdict(RECORD)
    assert _flat(RECORD["verdict"]) in _flat(_section("## Verdict"))


def test_every_quoted_rate_is_written_as_rate_text_and_is_in_the_record() -> None:
    pairs = set()
    for c in RECORD["cells"]:
        for r in c.get("rates") or []:
            pairs.add((r["k"], r["n"]))
        if "unchanged" in c:
            pairs.add((c["unchanged"], c["n"]))
    for m in RECORD["models"]:
        pairs.add((m["test_correct"], m["test_n"]))
    for p in RECORD["probes"]:
        pairs.add((p["zero_estimates"], p["n"]))
        pairs.add((p["identical_pairs"], p["pairs_total"]))
    # The verdict is checked word for word above; everything else must be a record count.
    rest = DOC.replace(_section("## Verdict"), "")
    quoted = [(m.group(0), int(m.group(1)), int(m.group(2))) for m in RATE.finditer(rest)]
    assert quoted, "the page quotes no rate"
    for text, k, n in quoted:
        assert text == rate_text(k, n), f"{text!r} should read {rate_text(k, n)!r}"
        assert (k, n) in pairs, f"{text!r} is no count of docs/records/forests.json"


# --------------------------------------------------------------------------- tables
def test_data_and_models_table_is_the_record() -> None:
    (table,) = _tables(_section("### Data and models", "\n### "))
    header, body = table[0], table[1:]
    assert header == ["dataset", "model", "estimator", "trained on", "clean accuracy",
                      "attacked"]
    assert len(body) == len(RECORD["models"])
    for row, m in zip(body, RECORD["models"], strict=True):
        assert row[0] == DATASET_LABELS[m["dataset"]] and row[1] == m["model"]
        assert row[2] == f"`{m['description']}`"
        assert row[3] == f"{m['train_n']:,}"
        assert row[4] == rate_text(m["test_correct"], m["test_n"])
        assert row[5] == str(m["n_attacked"])


_HEADING = re.compile(r"^### (.+), (L∞|L2) eps ([\d.]+)", re.M)


def test_result_tables_are_the_record() -> None:
    results = _section("## Results")
    seen = set()
    for h in _HEADING.finditer(results):
        dataset = LABEL_TO_DATASET[h.group(1)]
        norm, eps = NORMS[h.group(2)], float(h.group(3))
        nxt = results.find("\n### ", h.end())
        end = nxt if nxt >= 0 else len(results)
        (table,) = _tables(results[h.end():end])
        header, body = table[0], table[1:]
        models = header[2:]
        assert models == [m["model"] for m in RECORD["models"] if m["dataset"] == dataset]
        budget = _budget(RECORD, norm)
        assert f"within {budget:,} queries" in _flat(results[h.start():end])
        attacks = []
        for row in body:
            attack = row[0]
            attacks.append(attack)
            for text, model in zip(row[2:], models, strict=True):
                found = cells(RECORD, dataset=dataset, model=model, attack=attack, norm=norm,
                              eps=eps)
                if not found or found[0]["status"] != "ok":
                    assert text == "–", (dataset, model, attack)
                    continue
                assert row[1] == found[0]["threat"]
                r = rate_at(found[0])
                assert r is not None and r["budget"] == budget
                assert text == rate_text(r["k"], r["n"]), (dataset, norm, model, attack)
        # Every attack of the record on this dataset and budget has its row.
        assert set(attacks) == {c["attack"] for c in cells(RECORD, dataset=dataset, norm=norm,
                                                           eps=eps)}
        seen.add((dataset, norm, eps))
    assert seen == {(d["name"], n, float(e)) for d in RECORD["datasets"]
                    for n, es in d["eps"].items() for e in es}


def test_budget_curve_table_is_the_record() -> None:
    (table,) = _tables(_section("### Success against queries", "\n### "))
    header, body = table[0], table[1:]
    budgets = RECORD["config"]["norm_budgets"]["linf"]
    assert header == ["dataset", "model", "attack", *[f"≤ {b:,}" for b in budgets]]
    assert body
    for row in body:
        dataset = LABEL_TO_DATASET[row[0]]
        d = next(d for d in RECORD["datasets"] if d["name"] == dataset)
        (c,) = cells(RECORD, dataset=dataset, model=row[1], attack=row[2], norm="linf",
                     eps=float(max(d["eps"]["linf"])))
        for text, b in zip(row[3:], budgets, strict=True):
            r = rate_at(c, b)
            assert r is not None and text == rate_text(r["k"], r["n"]), row


def test_probe_and_watch_tables_are_the_record() -> None:
    probe_table, watch_table = _tables(_section("## Why attacks fail"))
    assert probe_table[0] == ["dataset", "model", "estimator", "sigma", "zero estimates",
                              "identical probe pairs"]
    assert len(probe_table) - 1 == len(RECORD["probes"])
    for row, p in zip(probe_table[1:], RECORD["probes"], strict=True):
        assert row[:3] == [DATASET_LABELS[p["dataset"]], p["model"], p["estimator"]]
        assert float(row[3]) == pytest.approx(p["sigma"], rel=1e-3)
        assert row[4] == rate_text(p["zero_estimates"], p["n"])
        assert row[5] == rate_text(p["identical_pairs"], p["pairs_total"])
    assert watch_table[0] == ["dataset", "model", "attack", "norm", "scores never changed"]
    # The gradient estimators' runs on the piecewise-constant models, every one of them.
    watched = [c for c in RECORD["cells"] if c["status"] == "ok" and "unchanged" in c
               and c["attack"] in ("nes", "fd")]
    assert len(watch_table) - 1 == len(watched) > 0
    for row, c in zip(watch_table[1:], watched, strict=True):
        assert row[:4] == [DATASET_LABELS[c["dataset"]], c["model"], c["attack"], c["norm"]]
        assert row[4] == rate_text(c["unchanged"], c["n"])


def test_anytime_table_is_the_record() -> None:
    (table,) = _tables(_section("## Anytime check"))
    assert table[0] == ["attack", "inputs", "same outcome", "direct successes",
                        "derived successes"]
    totals: dict[str, list[int]] = {}
    for c in RECORD["cells"]:
        for ch in c.get("checks") or []:
            t = totals.setdefault(c["attack"], [0, 0, 0, 0])
            t[0] += ch["n"]
            t[1] += ch["agree"]
            t[2] += ch["k"]
            t[3] += ch["derived_k"]
    assert [r[0] for r in table[1:]] == list(totals)
    for row in table[1:]:
        n, agree, k, derived = totals[row[0]]
        assert row[1:] == [f"{n:,}", f"{agree:,}", f"{k:,}", f"{derived:,}"]


def test_cost_figures_are_the_record() -> None:
    cost = _flat(_section("## Cost"))
    assert (f"{RECORD['cpu_s'] / 60:.1f} minutes of CPU time ({RECORD['time_s'] / 60:.1f} "
            "minutes of wall time") in cost
    (table,) = _tables(_section("## Cost"))
    assert table[0] == ["dataset", "model", "training s", "attacks s (wall)"]
    for row, m in zip(table[1:], RECORD["models"], strict=True):
        assert row == [DATASET_LABELS[m["dataset"]], m["model"], f"{m['fit_s']:.1f}",
                       f"{m['attack_s']:.0f}"]
    cfg = RECORD["config"]
    assert f"{cfg['trees']} trees" in cost and f"{cfg['boosting_rounds']} boosting rounds" in cost
    assert f"L2 cells to {_budget(RECORD, 'l2'):,} queries" in cost


def test_figures_exist() -> None:
    for name in RECORD["figures"]:
        assert f"images/{name}" in DOC
        assert (ROOT / "docs" / "images" / name).is_file()


# --------------------------------------------------------------------------- the reading
def _best(dataset: str, model: str, norm: str, threats: tuple[str, ...]) -> tuple[int, int]:
    found = [rate_at(c) for c in cells(RECORD, dataset=dataset, model=model, norm=norm,
                                       status="ok") if c["threat"] in threats]
    r = max((f for f in found if f is not None), key=lambda f: f["k"])
    return r["k"], r["n"]


def _kn(dataset: str, model: str, attack: str, norm: str = "linf") -> tuple[int, int]:
    (c,) = cells(RECORD, dataset=dataset, model=model, attack=attack, norm=norm)
    r = rate_at(c)
    assert r is not None
    return r["k"], r["n"]


def _probe(dataset: str, model: str, estimator: str) -> tuple[int, int]:
    (p,) = [p for p in RECORD["probes"] if (p["dataset"], p["model"], p["estimator"]) == (
        dataset, model, estimator)]
    return p["zero_estimates"], p["n"]


def test_comparisons_in_the_reading_are_allowed_by_the_intervals() -> None:
    from hoodwink.stats import differ

    flat = _flat(DOC)
    forest = _kn("mnist", "forest", "nes")
    assert forest == _kn("mnist", "forest", "square") == (30, 30)
    cnn = _best("mnist", "cnn", "linf", ("scores", "labels"))
    assert differ(*forest, *cnn) and cnn[0] <= _kn("mnist", "cnn", "pgd")[0]
    assert (f"NES and square fooled it on {rate_text(*forest)} of the digits, while the same "
            f"black-box attacks reached at most {rate_text(*cnn)} on the ConvNet (the two "
            "intervals are disjoint)") in flat
    fd = _kn("mnist", "forest", "fd")
    assert differ(*fd, *forest)
    assert f"FD fooled that forest on {rate_text(*fd)} where NES fooled it on" in flat
    nes, square = _kn("breast-cancer", "forest", "nes"), _kn("breast-cancer", "forest", "square")
    assert differ(*nes, *square)
    assert f"NES then fooled it on {rate_text(*nes)}, where square" in flat


def test_qualitative_claims_of_the_reading_hold() -> None:
    # "On the images, 5-NN held against every attack ..., and so did the RBF SVM": every
    # rate below half; "the label-only attacks ... did no better".
    for dataset in ("digits8", "mnist"):
        for model in ("knn", "svm"):
            for norm in ("linf", "l2"):
                scores = _best(dataset, model, norm, ("scores",))
                labels = _best(dataset, model, norm, ("labels",))
                assert 2 * scores[0] < scores[1] and 2 * labels[0] < labels[1]
                assert labels[0] <= scores[0]
        # "5-NN is the flattest model ... while the SVM's never were"
        assert _probe(dataset, "svm", "nes")[0] == 0
    assert _probe("digits8", "knn", "nes") == (17, 20)
    assert _probe("mnist", "knn", "nes") == (10, 10)
    # "On the smooth models no estimate was ever zero"; "the trees' NES estimates were never
    # zero" on the image grids.
    for p in RECORD["probes"]:
        if p["model"] in ("svm", "logistic", "cnn"):
            assert p["zero_estimates"] == 0
        if p["dataset"] != "breast-cancer" and p["model"] in ("forest", "boosting") and (
                p["estimator"] == "nes"):
            assert p["zero_estimates"] == 0
    # The anytime reading: exact for the fixed-eps attacks; the minimum-norm attacks' direct
    # runs succeed more often.
    for c in RECORD["cells"]:
        for ch in c.get("checks") or []:
            if c["attack"] in ("hopskipjump", "boundary-walk"):
                assert ch["k"] >= ch["derived_k"]
            else:
                assert ch["agree"] == ch["n"]


def test_readme_quotes_the_forests_verdict() -> None:
    """README's "What the data says" bullet quotes only rates the record's verdict states."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    says = readme[readme.index("## What the data says"):readme.index("## Benchmarks")]
    bullet = " ".join(says[says.index("**Random forests are not safe"):
                           says.index("* **The background-class")].split())
    verdict = " ".join(str(RECORD["verdict"]).split())
    rates = re.findall(r"\d+% \(\d+/\d+, 95% CI \d+–\d+%\)", bullet)
    assert len(rates) == 5
    for r in rates:
        assert r in verdict, r
    assert "hoodwink forests --out out/records/forests --json > docs/records/forests.json" in bullet


# --------------------------------------------------------------------------- what was run
def test_data_sizes_are_the_record() -> None:
    """The split sizes, feature count and dropped rows of "What was run" are the record's."""
    data = _flat(_section("## What was run"))
    d = {x["name"]: x for x in RECORD["datasets"]}
    digits, mnist, table = d["digits8"], d["mnist"], d["breast-cancer"]
    assert (f"(bounds (0, {digits['levels'] - 1}), {digits['levels']} levels; the fixed split of "
            f"`hoodwink.data.load_digits8x8`: {digits['n_train']:,} train / "
            f"{digits['n_test']:,} test)") in data
    assert digits["dropped_test"] == mnist["dropped_test"] == 0
    assert f"({mnist['n_train']:,} train / {mnist['n_test']:,} test)" in data
    assert f"The breast-cancer table ({table['features']} features)" in data
    assert f"The {table['dropped_test']} test rows outside the training range are left out" in data
    # "the table's budget is 0.1 of each feature's range"
    (eps,) = table["eps"]["linf"]
    assert f"so the table's budget is {eps:g} of each feature's range" in _flat(DOC)


def test_rerun_of_the_table_names_the_record_s_cell_count() -> None:
    """"gave the same 80 cells and probes as the record": the record's breast-cancer cells."""
    n = sum(c["dataset"] == "breast-cancer" for c in RECORD["cells"])
    assert (f"rerunning the breast-cancer part alone (`--datasets breast-cancer`) gave the same "
            f"{n} cells and probes as the record") in _flat(_section("## Reproducing", None))


def test_unrecorded_warnings_and_pilot_carry_no_counts() -> None:
    """The model-disagreement warnings and the pilot are not in the record: no figures."""
    flat = _flat(DOC)
    i = flat.index("The run printed hoodwink's \"model gave different answers")
    warning = flat[i:flat.index("5-NN's `predict_proba`", i)]
    assert not re.findall(r"\d", warning), warning
    j = flat.index("A first version with two budgets per norm")
    pilot = flat[j:flat.index("so the table's budget", j)]
    assert not re.findall(r"\d", pilot), pilot
