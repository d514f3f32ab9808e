"""Every figure quoted in the study docs is re-read from its committed JSON record.

docs/transfer.md, docs/dream_and_background.md and README.md's "What the data
says" quote figures that a documented command wrote into ``docs/records/*.json``
(or ``bench/results/*.json``). Each test parses the figures out of the doc's
text and compares them with the record, or rebuilds the figure from the record
with the doc's rounding and finds it in the doc, so a rerun without updating the
doc (or an edit of the doc alone) fails. A rate over fewer than 100 samples must
be quoted with its n and Wilson 95% interval (:func:`hoodwink.stats.rate_text`),
and a sentence that says two rates differ must be backed by disjoint intervals.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from hoodwink.stats import differ, rate_text
from hoodwink.studies.transfer import TransferStudy, format_eps

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "records"
TRANSFER_MD = (ROOT / "docs" / "transfer.md").read_text(encoding="utf-8")
DREAM_MD = (ROOT / "docs" / "dream_and_background.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
DATA_SAYS = README[README.index("## What the data says"):README.index("## Benchmarks")]

#: A quoted rate: "43% (3/7, 95% CI 16–75%)" or "33.6% (151/450)".
RATE = re.compile(r"(?:\d+(?:\.\d+)?%|–) \((\d+)/(\d+)(?:, 95% CI \d+–\d+%)?\)")


def _record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _section(text: str, start: str, end: str | None = "\n#") -> str:
    i = text.index(start)
    j = text.find(end, i + len(start)) if end is not None else -1
    return text[i:j] if j >= 0 else text[i:]


def _command_next_to(section: str, record: str) -> str:
    """The documented command that writes ``record`` (in the section's bash block)."""
    block = section[section.index("```bash"):]
    block = block[:block.index("```", 3)].replace("\\\n", " ")
    lines = [ln for ln in block.splitlines() if f"> {record}" in ln]
    assert lines, f"no command writing {record} next to the figures it backs"
    return " ".join(lines[0].split())


def _quoted_rates(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), int(m.group(1)), int(m.group(2))) for m in RATE.finditer(text)]


def _check_rate_text(text: str) -> None:
    """Every quoted rate is written as rate_text writes it: n always, the interval below 100."""
    for quoted, k, n in _quoted_rates(text):
        assert quoted == rate_text(k, n), f"{quoted!r} should read {rate_text(k, n)!r}"


# --------------------------------------------------------------------------- transfer
_TRANSFER = {
    "### MNIST, CNN → linear": "transfer-cnn-to-linear",
    "### MNIST, linear → CNN": "transfer-linear-to-cnn",
    "### ImageNet, EfficientNet-Lite0": "transfer-lite0",
}
MEASURED = _section(TRANSFER_MD, "## Measured", "### Reproducing")
REPRODUCING = _section(TRANSFER_MD, "### Reproducing", None)


def _flat(text: str) -> str:
    """Text with line breaks folded, for finding a figure that wraps across lines."""
    return " ".join(text.split())


MEASURED_FLAT = _flat(MEASURED)


def _study(name: str) -> TransferStudy:
    return TransferStudy.from_dict(_record(name))


def _eps(text: str) -> float:
    if "/" in text:
        a, b = text.split("/")
        return int(a) / int(b)
    return float(text)


def _label(model: str) -> str:
    return model.replace("efficientnet-lite", "Lite")


@pytest.mark.parametrize(("heading", "name"), _TRANSFER.items())
def test_transfer_table_is_its_record(heading: str, name: str) -> None:
    sec = _section(TRANSFER_MD, heading, "\n### ")
    command = _command_next_to(sec, f"docs/records/{name}.json")
    study = _study(name)
    cfg = _record(name)["config"]
    assert f"--source {study.source} " in command
    assert f"--to {','.join(cfg['targets'])} " in command
    assert f"--eps {','.join(format_eps(e) for e in study.eps)} " in command
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in sec.splitlines() if ln.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert len(header) == 2 + len(study.models)
    for col, model in zip(header[2:], study.models, strict=True):
        assert _label(model) in col, (col, model)
    seen = set()
    mode, eps = "", 0.0
    for row in body:
        if row[0]:
            m, e = row[0].split(", ")
            mode, eps = m, _eps(e)
        attack = row[1]
        seen.add((mode, eps, attack))
        for text, model in zip(row[2:], study.models, strict=True):
            cell = study.cell(mode, eps, attack, model)  # type: ignore[arg-type]
            assert text == rate_text(cell.n_fooled, cell.n_eligible), (mode, eps, attack, model)
    assert seen == {(m, e, r) for m in study.modes for e in study.eps for r in study.rows}


def _pairs(name: str) -> set[tuple[int, int]]:
    """(k, n) of every rate in the record: conditional and unconditional."""
    out = set()
    for c in _study(name).cells:
        out.add((c.n_fooled, c.n_eligible))
        if c.rate_unconditional is not None:
            out.add((round(c.rate_unconditional * c.n_pool), c.n_pool))
    return out


@pytest.mark.parametrize(("heading", "name"), _TRANSFER.items())
def test_transfer_reading_quotes_only_its_record(heading: str, name: str) -> None:
    sec = _section(MEASURED, heading, "\n### ")
    _check_rate_text(sec)
    # The MNIST reading compares both directions; the photos' only its own record.
    pairs = _pairs(name) if "lite" in name else (
        _pairs("transfer-cnn-to-linear") | _pairs("transfer-linear-to-cnn"))
    for quoted, k, n in _quoted_rates(sec):
        assert (k, n) in pairs, f"{quoted!r} is in no cell of docs/records/{name}.json"


def test_transfer_clean_accuracy_is_the_record() -> None:
    clean = _study("transfer-cnn-to-linear").clean
    assert (f"clean accuracy CNN {clean['mnist-cnn']['accuracy']:.1%}, linear "
            f"{clean['mnist-linear']['accuracy']:.1%}") in MEASURED_FLAT


def _cell(name: str, mode: str, eps: float, attack: str, model: str) -> tuple[int, int]:
    c = _study(name).cell(mode, eps, attack, model)  # type: ignore[arg-type]
    return c.n_fooled, c.n_eligible


def test_transfer_conclusions_are_allowed_by_the_intervals() -> None:
    cnn, lin, lite = "transfer-cnn-to-linear", "transfer-linear-to-cnn", "transfer-lite0"
    # "intervals apart" / "which they can": the two rates must differ.
    pgd = _cell(cnn, "untargeted", 0.2, "pgd", "mnist-linear")
    noise = _cell(cnn, "untargeted", 0.2, "noise", "mnist-linear")
    assert differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} against {rate_text(*noise)} for noise" in MEASURED_FLAT
    pgd = _cell(lin, "untargeted", 0.2, "pgd", "mnist-cnn")
    noise = _cell(lin, "untargeted", 0.2, "noise", "mnist-cnn")
    assert differ(*pgd, *noise)
    assert f"at 0.2, {rate_text(*pgd)} against {rate_text(*noise)}, which they can" in MEASURED_FLAT
    # "cannot tell apart" / "intervals overlap": they must not.
    pgd = _cell(lin, "untargeted", 0.1, "pgd", "mnist-cnn")
    noise = _cell(lin, "untargeted", 0.1, "noise", "mnist-cnn")
    assert not differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} against {rate_text(*noise)} for noise, which these" in MEASURED_FLAT
    for e in (0.1, 0.2):
        f, p = (_cell(cnn, "untargeted", e, a, "mnist-linear") for a in ("fgsm", "pgd"))
        assert not differ(*f, *p)
        assert f"{rate_text(*f)} against {rate_text(*p)}" in MEASURED_FLAT
    pgd = _cell(lite, "untargeted", 8 / 255, "pgd", "efficientnet-lite1")
    noise = _cell(lite, "untargeted", 8 / 255, "noise", "efficientnet-lite1")
    assert not differ(*pgd, *noise)
    assert f"{rate_text(*pgd)} of the photos against {rate_text(*noise)} for noise" in MEASURED_FLAT
    # No targeted transfer on the photos: every targeted transfer count is 0.
    for c in _study(lite).cells:
        if c.mode == "targeted" and c.kind == "transfer":
            assert c.n_fooled == 0


def test_transfer_unconditional_rate_is_the_record() -> None:
    c = _study("transfer-cnn-to-linear").cell("untargeted", 0.2, "pgd", "mnist-linear")
    assert c.rate_unconditional is not None
    k = round(c.rate_unconditional * c.n_pool)
    assert f"over all {c.n_pool} digits both models get right, is {rate_text(k, c.n_pool)}" in (
        MEASURED_FLAT)


def test_reproducing_section_quotes_the_records() -> None:
    """The figures that did not reproduce are named, and the record's are quoted beside them."""
    w = _cell("transfer-cnn-to-linear", "untargeted", 0.2, "fgsm", "mnist-cnn")
    t = _cell("transfer-cnn-to-linear", "untargeted", 0.2, "fgsm", "mnist-linear")
    assert f"every run gives {w[0]}/{w[1]} and {t[0]}/{t[1]}, the record's figures" in _flat(
        REPRODUCING)
    k, n = _cell("transfer-lite0", "untargeted", 8 / 255, "pgd", "efficientnet-lite1")
    assert f"gives {k}/{n} with the command above" in _flat(REPRODUCING)


# --------------------------------------------------------------------------- dream
DREAM_MEASURED = _flat(_section(DREAM_MD, "### Measured", "## `defend background`"))


def test_dream_commands_are_next_to_their_figures() -> None:
    sec = _section(DREAM_MD, "### Measured", "## `defend background`")
    lite = _command_next_to(sec, "docs/records/dream-lite0.json")
    targets = '"king penguin,goldfish,school bus,pizza,volcano"'
    assert f"--model efficientnet-lite0 --target {targets}" in lite
    mnist = _command_next_to(sec[sec.index("`mnist-cnn`"):], "docs/records/dream-mnist.json")
    assert "--model mnist-cnn --target 0,1,2,3,4,5,6,7,8,9 " in mnist


def test_dream_lite0_table_is_its_record() -> None:
    rec = _record("dream-lite0")
    sec = _section(DREAM_MD, "### Measured", "`mnist-cnn`, all ten")
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in sec.splitlines() if ln.startswith("| ")][1:]
    assert rows == [[e["name"], str(e["steps_used"]), f"{e['confidence_png']:.4f}"]
                    for e in rec["images"]]


def _dream_figures(name: str) -> tuple[int, int, list[int], float]:
    rec = _record(name)
    images = rec["images"]
    k = sum(bool(e["success_png"]) for e in images)
    return k, len(images), [int(e["steps_used"]) for e in images], rec["summary"]["time_s"]


def test_dream_sentences_are_the_records() -> None:
    k, n, steps, t = _dream_figures("dream-lite0")
    assert (f"reach the 0.996 threshold, {rate_text(k, n)}, in {min(steps)} to {max(steps)} "
            f"steps; the batch took {t:.1f} s") in DREAM_MEASURED
    k, n, steps, t = _dream_figures("dream-mnist")
    rec = _record("dream-mnist")
    assert all(e["confidence_png"] >= 0.996 for e in rec["images"] if e["success_png"])
    assert (f"{rate_text(k, n)} reach ≥ 99.60 % read back from the PNG, in {min(steps)} to "
            f"{max(steps)} steps (median {statistics.median(steps):g}), {t:.2f} s for the batch"
            ) in DREAM_MEASURED
    eight = rec["images"][8]
    assert eight["target"] == 8
    assert f"The digit 8 takes {eight['steps_used']} steps" in DREAM_MEASURED
