"""The evaluation report (hoodwink.evaluation.render) and ``hoodwink report``.

The record is built here from a fake run (:func:`make_record`: 20 samples, 3 eps,
4 attack stages, 2 flags) following the shared contract, so these tests do not
depend on the evaluation runner. Every number on the HTML page is compared with
the record through its ``data-key``/``data-value`` element (:func:`page_numbers`,
:func:`check_numbers`), which tests/test_report_browser.py reuses on the DOM that
Chromium renders.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from hoodwink.attacks._store import write_pair
from hoodwink.errors import ConfigError, InputError
from hoodwink.evaluation.render import (
    SCHEMA,
    load_record,
    render_figures,
    to_html,
    to_markdown,
    write_report,
)
from hoodwink.stats import wilson

#: Class names a user could give: markup and Markdown must come out as text.
#: The leading "$\\q$" would be a mathtext error in a matplotlib title if not escaped.
HOSTILE = '$\\q$ <img src=x onerror="alert(1)"> cat | *dog* & [x](http://e.vil)'


# ---------------------------------------------------------------------------- the fixture
def make_record(n: int = 20, eps: tuple[float, ...] = (0.05, 0.1, 0.2), seed: int = 0,
                shape: tuple[int, ...] = (1, 6, 5), k: int = 3) -> dict[str, Any]:
    """A valid ``hoodwink.evaluation/1`` record of a fake run.

    ``n`` samples of 10 classes; three are misclassified clean, two resist every
    attack; the rest have a minimal norm found by a minimum-norm stage ("fmn") or
    by PGD at a grid eps. Stages: fmn (all samples), then PGD at each eps (4 rows
    for 3 eps). Every derived number follows the contract's definitions.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    wrong = set(rng.choice(n, 3, replace=False).tolist())
    safe = set(rng.choice([i for i in range(n) if i not in wrong], 2, replace=False).tolist())
    fmn_norm = np.round(rng.uniform(0.01, 0.35, n), 6)
    pgd_gain = rng.uniform(0, 1, n) < 0.3  # PGD finds a smaller norm than FMN for these
    samples = []
    for i in range(n):
        cc = i not in wrong
        label = int(labels[i])
        if not cc:
            mn, by, pred_adv = 0.0, None, int((label + 1) % 10)
        elif i in safe:
            mn, by, pred_adv = None, None, None
        else:
            mn, by = float(fmn_norm[i]), "fmn"
            if pgd_gain[i]:
                # PGD broke it at the smallest grid eps at or above half of FMN's norm.
                better = [e for e in eps if e >= mn / 2]
                if better and better[0] < mn:
                    mn, by = float(better[0]), "pgd"
            pred_adv = int((label + 3) % 10)
        samples.append({
            "index": i, "label": label, "pred_clean": label if cc else int((label + 1) % 10),
            "clean_correct": cc, "min_norm": mn, "broken_by": by, "pred_adv": pred_adv,
            "robust": [bool(cc and (mn is None or mn > e)) for e in eps],
            "queries": int(rng.integers(50, 500)) if cc else 0,
        })
    clean = sum(s["clean_correct"] for s in samples)

    def robust_at(e: float) -> int:
        return sum(bool(s["clean_correct"] and (s["min_norm"] is None or s["min_norm"] > e))
                   for s in samples)

    finite = sorted(s["min_norm"] for s in samples
                    if s["clean_correct"] and s["min_norm"] is not None)
    points = sorted({0.0, *finite, *eps})
    curve = [{"eps": e, "robust_accuracy": robust_at(e) / n} for e in points]
    robust = []
    for e in eps:
        r = robust_at(e)
        robust.append({"eps": e, "robust": r, "robust_accuracy": r / n,
                       "ci95": list(wilson(r, n))})
    fmn_broke = sum(1 for s in samples if s["broken_by"] == "fmn" and s["min_norm"] <= eps[-1])
    stages = [{"name": "fmn", "eps": None, "attacked": clean, "broke": fmn_broke,
               "robust_after": clean - fmn_broke, "time_s": 1.25, "queries": 9800,
               "threat": "white-box"}]
    for j, e in enumerate(eps):
        after_fmn = sum(1 for s in samples if s["clean_correct"] and not (
            s["broken_by"] == "fmn" and s["min_norm"] <= e))
        r = robust_at(e)
        stages.append({"name": "pgd", "eps": e, "attacked": after_fmn, "broke": after_fmn - r,
                       "robust_after": r, "time_s": 0.5 + 0.25 * j, "queries": 1234 + j,
                       "threat": "white-box"})
    median = float(np.median(finite)) if finite else None
    examples = [i for i in (0, 5, 9, 13, 2, 7)[:k] if i < n]
    return {
        "schema": SCHEMA,
        "created": "2026-11-30T20:01:02Z",
        "hoodwink_version": "0.1.0",
        "environment": {"hoodwink": "0.1.0", "torch": "2.13.0", "numpy": "2.4",
                        "python": "3.12.1", "platform": "Linux-test"},
        "model": {"name": "toy-cnn", "num_classes": 10, "input_shape": list(shape),
                  "bounds": [0.0, 1.0], "levels": 256, "output": "logits",
                  "class_names": [HOSTILE if c == 3 else f"class {c}" for c in range(10)]},
        "data": {"name": "toy <digits>", "n": n, "fingerprint": "ab" * 32},
        "config": {"norm": "linf", "eps": list(eps),
                   "attacks": [
                       {"name": "fmn", "repr": "FMN(norm='linf', steps=100, seed=0)",
                        "threat": "white-box", "minimum_norm": True},
                       {"name": "pgd", "repr": "PGD(norm='linf', steps=40, seed=0) <|>",
                        "threat": "white-box", "minimum_norm": False}],
                   "seed": 0, "batch_size": 100, "max_queries": 5000, "checks": True},
        "summary": {"n": n, "clean_correct": clean, "clean_accuracy": clean / n,
                    "robust": robust, "median_min_norm": median, "time_s": 12.3},
        "curve": curve,
        "attacks": stages,
        "flags": [
            {"code": "zero-gradients", "severity": "warning", "title": "Zero gradients",
             "message": f"3 of {clean} samples have an exactly zero loss gradient <b>x</b>",
             "evidence": {"zero": 3, "n": clean, "fraction": 3 / clean},
             "doc": "docs/evaluate.md#zero-gradients"},
            {"code": "small-n", "severity": "info", "title": "Few samples",
             "message": "Only 20 samples | intervals are wide & *wide*",
             "evidence": {"n": n}, "doc": "javascript:alert(1)"},
        ],
        "samples": samples,
        "examples": examples,
        "timings": {"total_s": 12.3, "checks_s": 0.8, "attacks_s": 11.5},
    }


def make_tensors(record: Mapping[str, Any], seed: int = 1) -> dict[str, torch.Tensor]:
    """Example tensors for ``record["examples"]``: x in [0, 1] and a bounded x_adv."""
    g = torch.Generator().manual_seed(seed)
    shape = tuple(record["model"]["input_shape"])
    idx = torch.tensor(record["examples"], dtype=torch.int64)
    x = torch.rand((len(idx), *shape), generator=g)
    step = (torch.rand(x.shape, generator=g) - 0.5).sign() * 0.05
    return {"x": x, "x_adv": (x + step).clamp(0, 1), "index": idx}


def save(tmp: Path, record: dict[str, Any], tensors: dict[str, torch.Tensor] | None) -> Path:
    """Write report.json (and report.safetensors) as Evaluation.save does."""
    path = tmp / "report.json"
    if tensors is None:
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")
        return path
    return write_pair(path, record, tensors, what="Evaluation")


# ---------------------------------------------------------------------------- page reading
class _Numbers(HTMLParser):
    """Collects every ``data-key`` element (key, value, format, text) and every image."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[dict[str, Any]] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.scripts = 0
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self.scripts += 1
        if tag == "a" and a.get("href") is not None:
            self.links.append(str(a["href"]))
        if "data-key" in a:
            entry = {"key": a["data-key"], "value": a.get("data-value"),
                     "format": a.get("data-format"), "text": ""}
            self.numbers.append(entry)
            self._open.append(entry)
        elif self._open:
            self._open.append({})

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("span", "td", "a", "b", "code"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1]:
            self._open[-1]["text"] += data


def page_numbers(page: str) -> _Numbers:
    """Parse a report page: its numbers, images, links and scripts."""
    p = _Numbers()
    p.feed(page)
    p.close()
    return p


def resolve(record: Any, key: str) -> Any:
    """The value at a dotted path of the record (list positions as numbers)."""
    obj = record
    for part in key.split("."):
        if isinstance(obj, list):
            obj = obj[int(part)]
        elif isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
        else:
            raise KeyError(f"{key!r} is not in the record (at {part!r})")
    return obj


def derived_values(record: Mapping[str, Any],
                   tensors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the page computes, computed here independently of the renderer."""
    s = record["summary"]
    lo, hi = wilson(s["clean_correct"], s["n"])
    cc = [x for x in record["samples"] if x["clean_correct"]]
    out: dict[str, Any] = {
        "derived.clean_ci95.0": lo, "derived.clean_ci95.1": hi,
        "derived.finite_norms": sum(x["min_norm"] is not None for x in cc),
        "derived.no_adversarial": sum(x["min_norm"] is None for x in cc),
        "derived.curve_points": len(record["curve"]),
    }
    if tensors is not None:
        x = np.asarray(tensors["x"], dtype=np.float64).reshape(len(tensors["index"]), -1)
        xa = np.asarray(tensors["x_adv"], dtype=np.float64).reshape(len(tensors["index"]), -1)
        for r in range(x.shape[0]):
            for f in range(x.shape[1]):
                out[f"tensors.x.{r}.{f}"] = float(x[r, f])
                out[f"tensors.x_adv.{r}.{f}"] = float(xa[r, f])
                out[f"derived.change.{r}.{f}"] = float(xa[r, f] - x[r, f])
    return out


def _text_matches(fmt: str, value: Any, text: str) -> bool:
    """Whether the shown text is the value in its declared format."""
    if value is None:
        return text == "–"
    if fmt == "bool":
        return text == ("yes" if value else "no")
    if fmt == "int":
        return re.fullmatch(r"-?[0-9]{1,3}(,[0-9]{3})*", text) is not None \
            and int(text.replace(",", "")) == value
    if fmt == "pct":
        assert text.endswith("%"), text
        return abs(float(text[:-1]) / 100 - value) <= 0.0005 + 1e-12
    shown = float(text)
    return shown == value or abs(shown - value) <= 5e-4 * abs(value)


def check_numbers(numbers: list[dict[str, Any]], record: Mapping[str, Any],
                  tensors: Mapping[str, Any] | None = None) -> set[str]:
    """Assert every keyed number equals the record's (or the independent derivation);
    return the keys seen."""
    derived = derived_values(record, tensors)
    seen = set()
    for num in numbers:
        key = num["key"]
        value = json.loads(num["value"])
        expected = derived[key] if key in derived else resolve(record, key)
        assert not isinstance(expected, dict | list), key
        assert value == expected and type(value) is type(expected) or (
            isinstance(expected, float) and isinstance(value, int | float)
            and float(value) == expected), (key, value, expected)
        assert _text_matches(num["format"], expected, num["text"].strip()), \
            (key, num["format"], expected, num["text"])
        seen.add(key)
    return seen


def required_keys(record: Mapping[str, Any]) -> set[str]:
    """The numbers a page must show: headline, stages, timings, flags' evidence."""
    keys = {"summary.n", "summary.clean_correct", "summary.clean_accuracy",
            "summary.median_min_norm", "summary.time_s", "derived.clean_ci95.0",
            "derived.clean_ci95.1", "derived.finite_norms", "derived.no_adversarial",
            "config.seed", "config.batch_size", "config.max_queries", "model.num_classes"}
    for i, _ in enumerate(record["summary"]["robust"]):
        keys |= {f"summary.robust.{i}.{f}" for f in
                 ("eps", "robust", "robust_accuracy", "ci95.0", "ci95.1")}
        keys.add(f"config.eps.{i}")
    for i, a in enumerate(record["attacks"]):
        keys |= {f"attacks.{i}.{f}" for f in
                 ("attacked", "broke", "robust_after", "time_s", "queries")}
        if a["eps"] is not None:
            keys.add(f"attacks.{i}.eps")
    keys |= {f"timings.{k}" for k in record["timings"]}
    for i, f in enumerate(record["flags"]):
        keys |= {f"flags.{i}.evidence.{k}" for k in f["evidence"]}
    return keys


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        return im.size


def _images(page: str) -> dict[str, bytes]:
    import base64

    out = {}
    for img in page_numbers(page).images:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,"), src[:60]
        out[str(img["data-figure"])] = base64.b64decode(src.split(",", 1)[1], validate=True)
    return out


# ---------------------------------------------------------------------------- HTML
def test_every_number_on_the_page_is_the_records() -> None:
    rec = make_record()
    tensors = make_tensors(rec)
    nums = page_numbers(to_html(rec, tensors=tensors))
    seen = check_numbers(nums.numbers, rec, tensors)
    missing = required_keys(rec) - seen
    assert not missing, sorted(missing)


def test_page_is_self_contained_without_script_and_figures_are_pngs() -> None:
    rec = make_record()
    page = to_html(rec, tensors=make_tensors(rec))
    parsed = page_numbers(page)
    assert parsed.scripts == 0
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|javascript:)""", page, re.I)
    figs = _images(page)
    assert sorted(figs) == ["curve", "examples", "norms"]
    for name, data in figs.items():
        w, h = _png_size(data)
        assert w > 100 and h > 100, (name, w, h)
    # Three triptych rows: the examples figure is taller than wide.
    w, h = _png_size(figs["examples"])
    assert h > w


def test_strings_from_the_record_are_escaped() -> None:
    rec = make_record()
    page = to_html(rec, tensors=make_tensors(rec))
    parsed = page_numbers(page)
    assert len(parsed.images) == 3  # the class name's <img> is text, not a tag
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "toy &lt;digits&gt;" in page
    # A flag's doc that is not a plain relative path is replaced by the docs anchor.
    assert sorted(parsed.links) == ["docs/evaluate.md#small-n", "docs/evaluate.md#zero-gradients"]


def test_flags_show_severity_message_and_doc_link() -> None:
    rec = make_record()
    page = to_html(rec)
    assert '<td class="sev-warning">warning</td>' in page
    assert '<td class="sev-info">info</td>' in page
    assert '<a href="docs/evaluate.md#zero-gradients">zero-gradients</a>' in page
    assert "Zero gradients" in page and "Few samples" in page


def test_small_n_rates_show_n_and_interval() -> None:
    rec = make_record(n=20)
    nums = page_numbers(to_html(rec)).numbers
    by_key: dict[str, list[str]] = {}
    for num in nums:
        by_key.setdefault(num["key"], []).append(num["text"])
    for i, r in enumerate(rec["summary"]["robust"]):
        lo, hi = wilson(r["robust"], 20)
        assert by_key[f"summary.robust.{i}.ci95.0"] == [f"{lo * 100:.1f}%"]
        assert by_key[f"summary.robust.{i}.ci95.1"] == [f"{hi * 100:.1f}%"]
    assert "20" in by_key["summary.n"]
    assert "Fewer than 100 samples" in to_html(rec)
    assert "Fewer than 100 samples" not in to_html(make_record(n=120))


def test_clean_interval_is_wilson_closed_form() -> None:
    rec = make_record(n=20)
    k = rec["summary"]["clean_correct"]
    z = 1.96
    p = k / 20
    centre = (p + z * z / 40) / (1 + z * z / 20)
    half = z / (1 + z * z / 20) * math.sqrt(p * (1 - p) / 20 + z * z / 1600)
    nums = {n["key"]: json.loads(n["value"]) for n in page_numbers(to_html(rec)).numbers}
    assert nums["derived.clean_ci95.0"] == pytest.approx(centre - half, abs=1e-12)
    assert nums["derived.clean_ci95.1"] == pytest.approx(centre + half, abs=1e-12)


def test_without_tensors_examples_are_listed_from_the_record() -> None:
    rec = make_record()
    page = to_html(rec)
    assert sorted(_images(page)) == ["curve", "norms"]
    assert "were not available" in page
    keys = {n["key"] for n in page_numbers(page).numbers}
    for idx in rec["examples"]:
        assert f"samples.{idx}.index" in keys and f"samples.{idx}.min_norm" in keys
    check_numbers(page_numbers(page).numbers, rec)


def test_tabular_examples_are_tables_of_the_most_changed_features() -> None:
    rec = make_record(shape=(40,))
    tensors = make_tensors(rec)
    page = to_html(rec, tensors=tensors)
    assert sorted(_images(page)) == ["curve", "norms"]
    nums = page_numbers(page).numbers
    check_numbers(nums, rec, tensors)
    delta = (tensors["x_adv"] - tensors["x"]).abs()
    for row in range(len(rec["examples"])):
        shown = {int(n["key"].rsplit(".", 1)[1]) for n in nums
                 if n["key"].startswith(f"derived.change.{row}.")}
        assert len(shown) == 32
        # Every feature left out changed no more than any feature shown.
        left_out = set(range(40)) - shown
        assert max(delta[row, f] for f in left_out) <= min(delta[row, f] for f in shown)


def test_rgb_and_eight_bit_budgets() -> None:
    rec = make_record(shape=(3, 7, 9), eps=(4 / 255, 8 / 255))
    page = to_html(rec, tensors=make_tensors(rec))
    assert "(8/255)" in page and "(4/255)" in page
    assert sorted(_images(page)) == ["curve", "examples", "norms"]


def test_same_record_same_page() -> None:
    rec = make_record()
    assert to_html(rec, tensors=make_tensors(rec)) == to_html(copy.deepcopy(rec),
                                                               tensors=make_tensors(rec))


def test_an_evaluation_renders_like_its_record_and_tensors(tmp_path: Path) -> None:
    from hoodwink.evaluation import Evaluation

    rec = make_record()
    tensors = make_tensors(rec)
    ev = Evaluation.from_dict(copy.deepcopy(rec), x_examples=tensors["x"],
                              x_adv_examples=tensors["x_adv"])
    expected = to_html(rec, tensors=tensors)
    assert to_html(ev) == expected
    assert to_markdown(ev) == to_markdown(rec, tensors=tensors)
    # Evaluation.save writes the pair write_report reads.
    page = write_report(ev.save(tmp_path / "report.json")).read_text(encoding="utf-8")
    assert page == expected
    # Saved without example inputs, the companion holds only the indices: no triptychs.
    bare = Evaluation.from_dict(copy.deepcopy(rec)).save(tmp_path / "bare" / "report.json")
    assert sorted(_images(write_report(bare).read_text(encoding="utf-8"))) == [
        "curve", "norms"]


def test_render_figures_names() -> None:
    rec = make_record()
    assert sorted(render_figures(rec)) == ["curve", "norms"]
    assert sorted(render_figures(rec, tensors=make_tensors(rec))) == [
        "curve", "examples", "norms"]
    rec["curve"] = []
    for s in rec["samples"]:
        s["min_norm"] = None
    assert sorted(render_figures(rec)) == ["curve"]  # grid points only


# ---------------------------------------------------------------------------- Markdown
def test_markdown_has_the_numbers_and_no_images() -> None:
    rec = make_record()
    md = to_markdown(rec)
    assert "![" not in md and "data:image" not in md
    s = rec["summary"]
    for r in s["robust"]:
        lo, hi = r["ci95"]
        fraction = f" ({round(r['eps'] * 255)}/255)" if r["eps"] == 0.2 else ""  # 51/255
        row = (f"| eps {r['eps']:.4g}{fraction} | {r['robust']} | {s['n']} | "
               f"{r['robust_accuracy'] * 100:.1f}% | {lo * 100:.1f}%–{hi * 100:.1f}% |")
        assert row in md, row
    for a in rec["attacks"]:
        assert f"| {a['queries']:,} |" in md
    assert "[zero-gradients](docs/evaluate.md#zero-gradients)" in md


def test_markdown_escapes_record_strings() -> None:
    md = to_markdown(make_record())
    assert not re.search(r"(?<!\\)<img", md)
    assert "\\<img src=x onerror=\"alert(1)\"\\>" in md
    assert not re.search(r"(?<!\\)\*dog", md) and "\\*dog\\*" in md
    assert not re.search(r"(?<!\\)\[x", md)  # no link of the user's making
    # A '|' in a class name or message never opens a table column: every row of a
    # table has as many unescaped bars as its header.
    bars = None
    for line in md.splitlines():
        if not line.startswith("|"):
            bars = None
            continue
        count = len(re.findall(r"(?<!\\)\|", line))
        bars = count if bars is None else bars
        assert count == bars, line


def test_markdown_figure_links_are_checked() -> None:
    rec = make_record()
    md = to_markdown(rec, figures={"curve": "r-curve.png"})
    assert "![Robust accuracy against eps" in md and "(r-curve.png)" in md
    with pytest.raises(ConfigError, match="figures"):
        to_markdown(rec, figures={"curve": "http://x/y.png"})
    with pytest.raises(ConfigError, match="figures"):
        to_markdown(rec, figures={"nope": "a.png"})


# ---------------------------------------------------------------------------- files
def test_write_report_html_with_companion(tmp_path: Path) -> None:
    rec = make_record()
    tensors = make_tensors(rec)
    path = save(tmp_path, rec, tensors)
    out = write_report(path)
    assert out == tmp_path / "report.html"
    page = out.read_text(encoding="utf-8")
    assert sorted(_images(page)) == ["curve", "examples", "norms"]
    check_numbers(page_numbers(page).numbers, json.loads(path.read_text()), tensors)


def test_write_report_markdown_writes_linked_figures(tmp_path: Path) -> None:
    rec = make_record()
    path = save(tmp_path, rec, make_tensors(rec))
    out = write_report(path, format="md", out=tmp_path / "pages" / "eval.md")
    md = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == ["eval-curve.png", "eval-norms.png", "eval-examples.png"]
    for link in links:
        assert _png_size((out.parent / link).read_bytes())[0] > 100


def test_json_alone_renders_without_triptychs(tmp_path: Path) -> None:
    rec = make_record()
    path = save(tmp_path, rec, make_tensors(rec))
    (tmp_path / "report.safetensors").unlink()
    page = write_report(path).read_text(encoding="utf-8")
    assert sorted(_images(page)) == ["curve", "norms"]
    assert load_record(path)[1] is None


def test_changed_companion_is_refused(tmp_path: Path) -> None:
    rec = make_record()
    path = save(tmp_path, rec, make_tensors(rec))
    other = tmp_path / "other"
    save(other if other.mkdir() is None else other, rec, make_tensors(rec, seed=7))
    (tmp_path / "report.safetensors").write_bytes((other / "report.safetensors").read_bytes())
    with pytest.raises(InputError, match="sha256"):
        write_report(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: r.update(schema="hoodwink.attack/2"), "is not an evaluation record"),
        (lambda r: r.update(schema="hoodwink.evaluation/2"), "newer than this version"),
        (lambda r: r.update(schema=None), "is not an evaluation record"),
        (lambda r: r["summary"]["robust"].pop(), "one entry per budget"),
        (lambda r: r.pop("samples"), "'samples' is missing"),
        (lambda r: r["summary"].update(clean_correct=True), "summary.clean_correct"),
        (lambda r: r["samples"][0].update(min_norm="0.1"), "samples.0.min_norm"),
        (lambda r: r["curve"].append({"eps": 1}), r"'curve\.\d+' must be"),
    ],
)
def test_bad_records_are_refused_with_a_clear_message(tmp_path: Path, change: Any,
                                                      match: str) -> None:
    rec = make_record()
    change(rec)
    path = save(tmp_path, rec, None)
    with pytest.raises(InputError, match=match):
        write_report(path)
    with pytest.raises(InputError, match=match):
        to_html(rec)
    assert not (tmp_path / "report.html").exists()


def test_missing_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON file"):
        write_report(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="'format'"):
        write_report(tmp_path / "bad.json", format="pdf")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="record"):
        to_html([1, 2])


def test_output_checks(tmp_path: Path) -> None:
    path = save(tmp_path, make_record(), None)
    with pytest.raises(ConfigError, match="other than the record"):
        write_report(path, out=path)
    (tmp_path / "folder.html").mkdir()
    with pytest.raises(ConfigError, match="it is a folder"):
        write_report(path, out=tmp_path / "folder.html")


# ---------------------------------------------------------------------------- CLI
def _cli() -> typer.Typer:
    from hoodwink.cli.report import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root: keeps `report` a subcommand, as in `hoodwink`."""

    register(app)
    return app


def test_cli_report_writes_beside_the_record_and_prints_the_path(tmp_path: Path) -> None:
    rec = make_record()
    path = save(tmp_path, rec, make_tensors(rec))
    r = CliRunner().invoke(_cli(), ["report", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "report.html")
    assert sorted(_images((tmp_path / "report.html").read_text())) == [
        "curve", "examples", "norms"]
    r = CliRunner().invoke(_cli(), ["report", str(path), "--format", "md", "--out",
                                    str(tmp_path / "x" / "page.md")])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "x" / "page.md")
    assert (tmp_path / "x" / "page-curve.png").is_file()


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        (lambda d: None, ["nope.json"], "does not exist"),
        (lambda d: (d / "r.json").write_text('{"schema": "hoodwink.curve/1"}'), ["r.json"],
         "not an evaluation record"),
        (lambda d: (d / "r.json").write_text('{"schema": "hoodwink.evaluation/3"}'),
         ["r.json"], "newer than this version"),
        (lambda d: (d / "r.json").write_text("{}"), ["r.json", "--format", "pdf"], "format"),
    ],
)
def test_cli_report_errors_exit_2(tmp_path: Path, setup: Any, args: list[str],
                                  needle: str) -> None:
    setup(tmp_path)
    args = [str(tmp_path / args[0]), *args[1:]]
    r = CliRunner().invoke(_cli(), ["report", *args])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and needle in r.output
    assert "Traceback" not in r.output
